//! The connection settings every vendor section of the config shares.

use std::time::Duration;

use url::Url;

use crate::budget::RateLimit;
use crate::client::{Shared, UpstreamOptions};

/// A connection's timeout overrides, in seconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timeouts {
    /// One request, retries included (default 15).
    pub total_secs: Option<u64>,
    /// Establishing a connection (default 5).
    pub connect_secs: Option<u64>,
}

/// Builds a connection's upstream options from its config overrides and the vendor's defaults.
pub fn options(
    base_url: Option<&Url>,
    default_base_url: &str,
    rate_limit: Option<RateLimit>,
    default_rate_limit: Option<RateLimit>,
    timeouts: Timeouts,
    shared: &Shared,
) -> Result<UpstreamOptions, url::ParseError> {
    let base = match base_url {
        Some(u) => u.clone(),
        None => Url::parse(default_base_url)?,
    };
    let mut options = UpstreamOptions::new(base, shared.clone());
    options.rate_limit = rate_limit.or(default_rate_limit);
    if let Some(secs) = timeouts.total_secs {
        options.deadline = Duration::from_secs(secs.max(1));
    }
    if let Some(secs) = timeouts.connect_secs {
        options.connect_timeout = Duration::from_secs(secs.max(1));
    }
    Ok(options)
}
