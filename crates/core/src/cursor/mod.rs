//! The inbox cursor, in one place: its shape ([`shape`]: what it carries per connection and
//! for the traversal) and its codec ([`codec`]: opaque, versioned, signed with the server's
//! secret and bound to the caller and the filters, so it cannot be forged nor replayed by
//! another caller or with other filters).

pub mod codec;
pub mod shape;

pub use codec::*;
pub use shape::{InboxCursor, LaneState, MergeState, SortKey, id_cmp};
