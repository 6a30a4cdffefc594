//! The `[[connections]]` section of a PingBack connection.

use serde::Deserialize;
use switchboard_upstream::{ConnectionSettings, Secret};

/// A PingBack connection's settings (`provider = "pingback"`). PingBack has no API key: the
/// gateway logs in as a team member, whose role decides what it may do (assigning needs an
/// owner or admin). PingBack documents no request quota, so none is applied unless configured.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The login e-mail of the PingBack user the gateway acts as.
    pub email: String,
    /// That user's password.
    pub password: Secret,
    /// `base_url`, `rate_limit` (none is documented, so none by default), `timeout_secs`,
    /// `connect_timeout_secs`.
    #[serde(flatten)]
    pub connection: ConnectionSettings,
}
