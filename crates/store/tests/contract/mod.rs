//! The store contract's cases, by kind of state; `tests/store_contract.rs` runs them against
//! each backend.
#![allow(dead_code, unused_imports)]

pub mod claims;
pub mod logs;

use std::sync::Arc;

use switchboard_store::Store;

/// Handles onto one store: for Redis each a separate client, as separate replicas would have.
pub type Handles = Arc<dyn Fn() -> Arc<dyn Store> + Send + Sync>;
