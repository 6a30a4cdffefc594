//! Webhooks: every event delivered to each configured endpoint, signed per the Standard Webhooks
//! spec, at least once and in order per endpoint, with retries on the spec's schedule.
//!
//! - `config`: `[[webhooks]]`;
//! - `signing`: `webhook-id` / `webhook-timestamp` / `webhook-signature`;
//! - `policy`: the retry schedule and what each receiver answer means;
//! - `target`: which addresses webhooks may go to;
//! - `receiver`: the bounded HTTP client that makes one attempt.

pub mod config;
pub mod policy;
pub mod receiver;
pub mod signing;
pub mod target;

pub use config::WebhookConfig;
pub use policy::{Outcome, RetrySchedule};
pub use receiver::Receiver;
pub use signing::WebhookSecret;

/// The event types an endpoint may subscribe to.
pub const EVENT_TYPES: &[&str] = &[
    "conversation.created",
    "conversation.updated",
    "message.created",
];
