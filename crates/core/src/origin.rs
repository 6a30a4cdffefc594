//! Where an adapter's mapped items come from: what every agent, conversation and message repeats
//! about its connection (the gateway id, the connection, the vendor), built in one place.

use chrono::{DateTime, Utc};

use crate::ids;
use crate::model::{Agent, Author, Direction, Message, ProviderKind};
use crate::provider::ProviderInfo;

/// A connection of a vendor, as an adapter's mapping sees it.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// The vendor.
    pub provider: &'a ProviderKind,
    /// The connection id.
    pub connection: &'a str,
}

impl<'a> Origin<'a> {
    /// Connection `connection` of vendor `provider`.
    pub const fn new(provider: &'a ProviderKind, connection: &'a str) -> Origin<'a> {
        Origin {
            provider,
            connection,
        }
    }

    /// The gateway id of the connection's item `native_id`: `"{connection}:{native_id}"`.
    pub fn id(&self, native_id: &str) -> String {
        ids::join(self.connection, native_id)
    }

    /// An agent the vendor names by its id alone.
    pub fn agent(&self, native_id: &str) -> Agent {
        Agent {
            id: self.id(native_id),
            connection: self.connection.to_owned(),
            provider: self.provider.clone(),
            native_id: native_id.to_owned(),
            name: None,
            email: None,
            avatar_url: None,
        }
    }

    /// Where the messages of conversation `conversation` (its native id) are mapped; one the
    /// vendor sends without a readable time takes `fallback_time`.
    pub fn in_conversation(
        &self,
        conversation: &'a str,
        fallback_time: DateTime<Utc>,
    ) -> MessageContext<'a> {
        MessageContext {
            origin: *self,
            conversation,
            fallback_time,
        }
    }
}

impl ProviderInfo {
    /// This connection, as its adapter's mapping sees it.
    pub fn origin(&self) -> Origin<'_> {
        Origin::new(&self.kind, &self.connection)
    }
}

/// The conversation a vendor's messages are mapped in: see [`Origin::in_conversation`].
#[derive(Debug, Clone, Copy)]
pub struct MessageContext<'a> {
    /// The connection.
    pub origin: Origin<'a>,
    /// The conversation's native id.
    pub conversation: &'a str,
    /// The time of a message the vendor sends without a readable one.
    pub fallback_time: DateTime<Utc>,
}

impl MessageContext<'_> {
    /// Message `native_id` of the conversation: written by `author`, going `direction`, saying
    /// `text`, sent at `created_at` (else the fallback time). It has no sender, HTML, attachments,
    /// delivery status or vendor JSON: the mapping adds those it has
    /// (`Message { sender, ..at.message(…) }`).
    pub fn message(
        &self,
        native_id: String,
        author: Author,
        direction: Direction,
        text: String,
        created_at: Option<DateTime<Utc>>,
    ) -> Message {
        Message {
            id: self.origin.id(&native_id),
            conversation_id: self.origin.id(self.conversation),
            connection: self.origin.connection.to_owned(),
            provider: self.origin.provider.clone(),
            native_id,
            author,
            sender: None,
            text,
            html: None,
            attachments: Vec::new(),
            created_at: created_at.unwrap_or(self.fallback_time),
            direction,
            delivery_status: None,
            raw: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_carry_their_connection_and_gateway_ids() {
        let kind = ProviderKind::new("acme");
        let shop = Origin::new(&kind, "shop");
        let agent = shop.agent("7");
        assert_eq!(
            (
                agent.id.as_str(),
                agent.connection.as_str(),
                agent.native_id.as_str()
            ),
            ("shop:7", "shop", "7")
        );
        assert_eq!(agent.provider, kind);

        let fallback = DateTime::<Utc>::UNIX_EPOCH;
        let at = shop.in_conversation("c1", fallback);
        let m = at.message(
            "m1".into(),
            Author::Bot,
            Direction::Outbound,
            "Hi".into(),
            None,
        );
        assert_eq!(
            (
                m.id.as_str(),
                m.conversation_id.as_str(),
                m.native_id.as_str()
            ),
            ("shop:m1", "shop:c1", "m1")
        );
        assert_eq!(m.created_at, fallback, "no time of its own: the fallback");
        let now = Utc::now();
        let later = at.message(
            "m2".into(),
            Author::Contact,
            Direction::Inbound,
            "Hello".into(),
            Some(now),
        );
        assert_eq!(later.created_at, now);
    }
}
