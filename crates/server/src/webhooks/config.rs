//! `[[webhooks]]`: the endpoints events are delivered to.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::bail;
use serde::Deserialize;
use switchboard_core::ids::is_valid_connection_id;
use switchboard_upstream::Secret;
use url::Url;

use super::policy::RetrySchedule;
use super::signing::WebhookSecret;
use super::target;

/// The per-attempt timeout when `timeout_secs` is not set (the spec recommends 15 to 30 s).
pub const DEFAULT_TIMEOUT_SECS: f64 = 15.0;

/// `[[webhooks]]`: one receiver.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The operator-chosen id (`[a-z0-9][a-z0-9_-]{0,62}`), in `/v1/webhooks/{id}`.
    pub id: String,
    /// Where events are POSTed (`http` or `https`).
    pub url: Url,
    /// The signing secret, `whsec_<base64 of 24 to 64 bytes>`, literal or `{ env = "NAME" }`.
    pub secret: Secret,
    /// The event types delivered (omitted: all).
    pub events: Option<Vec<String>>,
    /// The connections whose events are delivered (omitted: all).
    pub connections: Option<Vec<String>>,
    /// Overrides `[server] allow_private_targets` for this endpoint.
    pub allow_private_targets: Option<bool>,
    /// Seconds one attempt may take, connecting and the receiver's answer included.
    pub timeout_secs: Option<f64>,
    /// Seconds to wait before each attempt of one event (default: the Standard Webhooks
    /// schedule `[0, 5, 300, 1800, 7200, 18000, 36000, 36000]`); each delay moves by up to 10%.
    pub retry_schedule_secs: Option<Vec<f64>>,
}

impl WebhookConfig {
    /// The signing key (validated by [`WebhookConfig::validate`]).
    pub fn signing_secret(&self) -> anyhow::Result<WebhookSecret> {
        WebhookSecret::parse(self.secret.expose())
            .map_err(|why| anyhow::anyhow!("[[webhooks]] `{}`: `secret` {why}", self.id))
    }

    /// Whether internal targets are allowed, given the `[server]` default.
    pub fn allows_private_targets(&self, server_default: bool) -> bool {
        self.allow_private_targets.unwrap_or(server_default)
    }

    /// The per-attempt timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS))
    }

    /// The retry schedule.
    pub fn schedule(&self) -> RetrySchedule {
        self.retry_schedule_secs
            .as_ref()
            .and_then(|delays| {
                RetrySchedule::new(delays.iter().map(|s| Duration::from_secs_f64(*s)).collect())
            })
            .unwrap_or_default()
    }

    /// Checks the endpoint against the spec and the rest of the config; the message names the
    /// key and the fix.
    pub fn validate(
        &self,
        allow_private_default: bool,
        connection_ids: &BTreeSet<&str>,
        event_types: &[&str],
    ) -> anyhow::Result<()> {
        let who = format!("[[webhooks]] `{}`", self.id);
        if !is_valid_connection_id(&self.id) {
            bail!(
                "{who}: the id is invalid: use 1-63 of a-z, 0-9, `_`, `-`, starting with a letter or digit"
            );
        }
        target::check_url(
            &self.url,
            self.allows_private_targets(allow_private_default),
        )
        .map_err(|why| anyhow::anyhow!("{who}: `url` {}: {why}", self.url))?;
        self.signing_secret()?;
        if let Some(events) = &self.events {
            if events.is_empty() {
                bail!("{who}: `events` is empty; omit it to deliver every event type");
            }
            for event in events {
                if !event_types.contains(&event.as_str()) {
                    bail!(
                        "{who}: `events` names `{event}`; expected some of {}",
                        event_types.join(", ")
                    );
                }
            }
        }
        if let Some(connections) = &self.connections {
            if connections.is_empty() {
                bail!(
                    "{who}: `connections` is empty; omit it to deliver every connection's events"
                );
            }
            for connection in connections {
                if !connection_ids.contains(connection.as_str()) {
                    bail!(
                        "{who}: `connections` names `{connection}`, which is not a [[connections]] id"
                    );
                }
            }
        }
        let timeout = self.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS);
        if !(timeout.is_finite() && timeout > 0.0 && timeout <= 300.0) {
            bail!("{who}: `timeout_secs` must be above 0 and at most 300");
        }
        if let Some(delays) = &self.retry_schedule_secs {
            if delays.is_empty() {
                bail!(
                    "{who}: `retry_schedule_secs` is empty; omit it for the Standard Webhooks schedule"
                );
            }
            if delays
                .iter()
                .any(|d| !(d.is_finite() && *d >= 0.0 && *d <= 7.0 * 86400.0))
            {
                bail!("{who}: `retry_schedule_secs` holds delays from 0 to 604800 seconds");
            }
        }
        Ok(())
    }
}

/// Checks every endpoint, and that ids are unique.
pub fn validate_all(
    webhooks: &[WebhookConfig],
    allow_private_default: bool,
    connection_ids: &BTreeSet<&str>,
    event_types: &[&str],
) -> anyhow::Result<()> {
    let mut ids = BTreeSet::new();
    for webhook in webhooks {
        if !ids.insert(webhook.id.as_str()) {
            bail!(
                "[[webhooks]]: the id `{}` is used twice; webhook ids must be unique",
                webhook.id
            );
        }
        webhook.validate(allow_private_default, connection_ids, event_types)?;
    }
    Ok(())
}
