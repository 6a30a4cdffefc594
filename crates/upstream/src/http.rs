//! The HTTP clients a gateway's connections share: one per connect timeout (a gateway whose
//! connections all keep the default has one).
//!
//! A `reqwest::Client` holds the TLS roots (loading the system's costs about 19 million
//! instructions and keeps about 50 KB) and a pool of keep-alive connections. One per connection
//! made a gateway of 64 connections load the roots 64 times at start and keep a pool per
//! connection, so connections to the same vendor host could not reuse each other's idle sockets.
//! Nothing of a connection lives in the shared client: its credentials go on each of its
//! requests ([`crate::Upstream`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_core::{Error, ErrorKind, Result};

use crate::lock;

/// The shared clients, built on first use. Cloning shares them.
#[derive(Debug, Clone, Default)]
pub struct HttpClients {
    built: Arc<Mutex<Vec<(Duration, reqwest::Client)>>>,
}

impl HttpClients {
    /// The client for connections that connect within `connect_timeout`.
    pub fn client(&self, connect_timeout: Duration) -> Result<reqwest::Client> {
        let mut built = lock(&self.built);
        if let Some((_, client)) = built.iter().find(|(t, _)| *t == connect_timeout) {
            return Ok(client.clone());
        }
        let client = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            // A vendor API answers where it is asked; a redirect is an answer to report, not
            // to follow with the connection's credentials.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                Error::new(ErrorKind::Config, "could not build the HTTP client").with_source(e)
            })?;
        built.push((connect_timeout, client.clone()));
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_with_the_same_connect_timeout_share_one_client() {
        let clients = HttpClients::default();
        let shared = clients.clone();
        clients.client(Duration::from_secs(5)).expect("builds");
        shared.client(Duration::from_secs(5)).expect("builds");
        shared.client(Duration::from_secs(2)).expect("builds");
        let timeouts: Vec<Duration> = lock(&clients.built).iter().map(|(t, _)| *t).collect();
        assert_eq!(
            timeouts,
            [Duration::from_secs(5), Duration::from_secs(2)],
            "one client per connect timeout, shared by the clones"
        );
    }
}
