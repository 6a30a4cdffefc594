//! Callers of the gateway: bearer tokens, scopes and the connections each may see.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use switchboard_core::{Error, ErrorKind};

use crate::config::{ClientConfig, Scope};
use crate::problem::ApiError;
use crate::state::AppState;

/// An authenticated caller.
#[derive(Debug)]
pub struct Caller {
    /// The client's name from the config.
    pub name: String,
    scopes: BTreeSet<Scope>,
    connections: Option<BTreeSet<String>>,
}

impl Caller {
    /// Fails with 403 unless the caller has `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes.contains(&scope) {
            Ok(())
        } else {
            let what = match scope {
                Scope::Read => "read",
                Scope::Write => "write",
            };
            Err(Error::new(
                ErrorKind::Forbidden,
                format!("this token lacks the `{what}` scope"),
            )
            .into())
        }
    }

    /// Whether the caller may see `connection`.
    pub fn can_see(&self, connection: &str) -> bool {
        self.connections
            .as_ref()
            .is_none_or(|allowed| allowed.contains(connection))
    }
}

/// Every client, by the SHA-256 of its token.
#[derive(Debug, Default)]
pub struct Clients {
    by_token_hash: HashMap<[u8; 32], Arc<Caller>>,
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl Clients {
    /// From the config's `[[clients]]` (validated: each has exactly one of token / token_sha256).
    pub fn from_config(clients: &[ClientConfig]) -> Clients {
        let mut by_token_hash = HashMap::new();
        for c in clients {
            let hash = match (&c.token_sha256, &c.token) {
                (Some(hex_hash), _) => {
                    let mut h = [0u8; 32];
                    if hex::decode_to_slice(hex_hash, &mut h).is_err() {
                        continue;
                    }
                    h
                }
                (None, Some(token)) => sha256(token.expose().as_bytes()),
                (None, None) => continue,
            };
            by_token_hash.insert(
                hash,
                Arc::new(Caller {
                    name: c.name.clone(),
                    scopes: c.scopes.iter().copied().collect(),
                    connections: c.connections.as_ref().map(|v| v.iter().cloned().collect()),
                }),
            );
        }
        Clients { by_token_hash }
    }

    /// The caller holding `token`.
    pub fn authenticate(&self, token: &str) -> Option<Arc<Caller>> {
        self.by_token_hash.get(&sha256(token.as_bytes())).cloned()
    }
}

fn unauthenticated(message: &str) -> ApiError {
    Error::new(ErrorKind::Unauthenticated, message).into()
}

/// The authenticated caller of a request (an extractor).
#[derive(Debug, Clone)]
pub struct Authenticated(pub Arc<Caller>);

impl std::ops::Deref for Authenticated {
    type Target = Caller;

    fn deref(&self) -> &Caller {
        &self.0
    }
}

impl FromRequestParts<Arc<AppState>> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| unauthenticated("send `Authorization: Bearer <token>`"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthenticated("the Authorization header must be `Bearer <token>`"))?;
        state
            .clients
            .authenticate(token)
            .map(Authenticated)
            .ok_or_else(|| unauthenticated("the bearer token is not valid"))
    }
}
