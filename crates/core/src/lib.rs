//! Switchboard's core: the normalized model, the `Provider` trait every vendor adapter implements,
//! `Capabilities`, the one error type, and the merge/pagination engine with its signed cursor.
//!
//! Nothing here does I/O of its own; the engine is driven through the `Provider` trait, so it can
//! be tested with in-memory providers.
#![deny(missing_docs)]

pub mod capabilities;
pub mod checked;
pub mod codes;
pub mod cursor;
pub mod deadline;
pub mod error;
pub mod event;
pub mod ids;
pub mod inbox;
pub mod lanes;
pub mod merge;
pub mod model;
pub mod origin;
pub mod provider;
pub mod quota_state;
pub mod rfc3339;
pub mod text;
pub mod tolerant;

pub use capabilities::{Capabilities, NativeFilters, Operation, PagingStyle};
pub use checked::Checked;
pub use error::{Error, ErrorKind, Result};
pub use event::{Event, EventData, EventType, PerformedBy};
pub use model::*;
pub use origin::{MessageContext, Origin};
pub use provider::{
    Assignment, ConversationFilter, ListQuery, MessageQuery, NewMessage, Page, PassthroughAnswer,
    PassthroughRequest, Provider, ProviderInfo, UpstreamPage,
};
