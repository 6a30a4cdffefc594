//! What a poller remembers of a connection between passes: where its list scan is, the high-water
//! mark, and per conversation the fields it compares and which messages it knows. Kept in the
//! store as one blob per connection, with a TTL and a bounded number of conversations.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_core::{Conversation, Mode, Status, UpstreamPage};

/// How many conversations a snapshot tracks at most; past it, the ones with the oldest activity
/// are forgotten (and, should they move again, reported as updated rather than created).
pub const MAX_TRACKED_CONVERSATIONS: usize = 5_000;
/// How many message ids a conversation keeps to tell new messages from known ones near its
/// newest message.
pub const MAX_KNOWN_MESSAGES: usize = 50;

/// A connection's poller state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Set once the first complete scan (the silent baseline) is done.
    #[serde(rename = "b")]
    pub baseline_done: bool,
    /// The newest activity the baseline saw (the vendor's clock): a conversation not tracked and
    /// created after it, less the lookback, is new.
    #[serde(rename = "bh", default)]
    pub baseline_high: Option<DateTime<Utc>>,
    /// The newest activity a completed scan saw in its first call (a bound the vendor's clock
    /// had passed when that scan began): the next scan reads down to it, less the lookback.
    #[serde(rename = "h", default)]
    pub high: Option<DateTime<Utc>>,
    /// The list scan in progress, if a pass's budget ended it early.
    #[serde(rename = "s", default)]
    pub scan: Option<ListScan>,
    /// When the last full scan (the baseline included) completed, on this gateway's clock.
    #[serde(rename = "fs", default)]
    pub last_full_scan: Option<DateTime<Utc>>,
    /// The newest `created_at` among conversations forgotten for space.
    #[serde(rename = "e", default)]
    pub evicted_created: Option<DateTime<Utc>>,
    /// Tracked conversations by native id.
    #[serde(rename = "c", default)]
    pub conversations: BTreeMap<String, Tracked>,
    /// Conversations whose messages must be read (native ids, oldest request first).
    #[serde(rename = "q", default)]
    pub message_queue: Vec<String>,
}

/// A list scan that goes on in the next pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListScan {
    /// The upstream page to read next.
    #[serde(rename = "n")]
    pub next: UpstreamPage,
    /// Items older than this end the scan (`None`: the whole list, for the baseline).
    #[serde(rename = "f", default)]
    pub floor: Option<DateTime<Utc>>,
    /// The newest activity the scan's first call saw. The vendor's clock was at least this when
    /// the scan began, so a change made after the scan read an item is stamped no earlier than
    /// this less the lookback: a completed scan raises the high-water mark to it, not to the
    /// newest activity of its later pages (on an unsorted list read over several calls, an item
    /// read early can move, stamped late within the lookback, below what a later page showed).
    #[serde(rename = "m1", default)]
    pub first_max: Option<DateTime<Utc>>,
    /// A full scan: the whole list (at most [`MAX_TRACKED_CONVERSATIONS`] items), for changes a
    /// vendor does not stamp with a new activity time.
    #[serde(rename = "a", default)]
    pub full: bool,
    /// Items this scan has read.
    #[serde(rename = "r", default)]
    pub read: usize,
}

/// The fields a poller compares, for one conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tracked {
    /// `last_activity_at`.
    #[serde(rename = "a")]
    pub activity: DateTime<Utc>,
    /// `created_at`.
    #[serde(rename = "ca", default)]
    pub created: Option<DateTime<Utc>>,
    /// `status`.
    #[serde(rename = "s")]
    pub status: Status,
    /// `mode`.
    #[serde(rename = "m", default)]
    pub mode: Option<Mode>,
    /// The assignee's native id.
    #[serde(rename = "as", default)]
    pub assignee: Option<String>,
    /// `message_count`, where the vendor counts.
    #[serde(rename = "n", default)]
    pub message_count: Option<u64>,
    /// What is known of its messages.
    #[serde(rename = "ms", default)]
    pub messages: MessageMark,
    /// Ids of the gateway-write echoes already applied.
    #[serde(rename = "ea", default, skip_serializing_if = "Vec::is_empty")]
    pub applied_echoes: Vec<u64>,
}

/// Which messages of a conversation are known: every one older than `floor`, and those listed in
/// `known` (newest ones, with their times).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MessageMark {
    /// Messages created before this are known (`None`: none is known).
    #[serde(rename = "f", default)]
    pub floor: Option<DateTime<Utc>>,
    /// Known messages at or above `floor`: native id and `created_at`.
    #[serde(rename = "k", default)]
    pub known: Vec<(String, DateTime<Utc>)>,
    /// The upstream page a message read continues from, when a pass's budget ended it early.
    #[serde(rename = "n", default)]
    pub next: Option<UpstreamPage>,
    /// The conversation moved again while a read was under way: read it once more after.
    #[serde(rename = "g", default, skip_serializing_if = "std::ops::Not::not")]
    pub again: bool,
}

impl Tracked {
    /// The tracked fields of `c`; its messages are not known yet.
    pub fn of(c: &Conversation) -> Tracked {
        Tracked {
            activity: c.last_activity_at,
            created: c.created_at,
            status: c.status,
            mode: c.mode,
            assignee: c.assignee.as_ref().map(|a| a.native_id.clone()),
            message_count: c.message_count,
            messages: MessageMark::default(),
            applied_echoes: Vec::new(),
        }
    }

    /// Takes the compared fields from `c`, keeping what is known of the messages.
    pub fn update_from(&mut self, c: &Conversation) {
        let messages = std::mem::take(&mut self.messages);
        let applied = std::mem::take(&mut self.applied_echoes);
        *self = Tracked {
            messages,
            applied_echoes: applied,
            ..Tracked::of(c)
        };
    }
}

impl MessageMark {
    /// The baseline's mark for a conversation whose messages were not read: every message
    /// stamped up to its activity time (included) was there.
    pub fn baseline(c: &Conversation) -> MessageMark {
        MessageMark {
            floor: Some(c.last_activity_at + chrono::Duration::microseconds(1)),
            ..MessageMark::default()
        }
    }

    /// Records a message as known.
    pub fn learn(&mut self, id: &str, at: DateTime<Utc>) {
        if !self.known.iter().any(|(k, _)| k == id) {
            self.known.push((id.to_owned(), at));
        }
    }

    /// After a complete read: the floor moves up to the newest known message less `lookback`
    /// (never down), and the known list keeps at most [`MAX_KNOWN_MESSAGES`] entries; when it
    /// must drop some, the floor rises above them so none is mistaken for new.
    pub fn settle(&mut self, lookback: chrono::Duration) {
        self.next = None;
        self.known
            .sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        if let Some(newest) = self.known.first().map(|(_, at)| *at) {
            let floor = newest - lookback;
            self.floor = Some(self.floor.map_or(floor, |f| f.max(floor)));
        }
        if self.known.len() > MAX_KNOWN_MESSAGES {
            let dropped_at = self.known[MAX_KNOWN_MESSAGES].1;
            let above = dropped_at + chrono::Duration::microseconds(1);
            self.floor = Some(self.floor.map_or(above, |f| f.max(above)));
        }
        let floor = self.floor;
        self.known.retain(|(_, at)| floor.is_none_or(|f| *at >= f));
        self.known.truncate(MAX_KNOWN_MESSAGES);
    }
}

impl Snapshot {
    /// Forgets the conversations with the oldest activity beyond
    /// [`MAX_TRACKED_CONVERSATIONS`], except those waiting for a message read.
    pub fn bound(&mut self) {
        let excess = self
            .conversations
            .len()
            .saturating_sub(MAX_TRACKED_CONVERSATIONS);
        if excess == 0 {
            return;
        }
        let mut by_age: Vec<(DateTime<Utc>, String)> = self
            .conversations
            .iter()
            .filter(|(id, _)| !self.message_queue.contains(id))
            .map(|(id, t)| (t.activity, id.clone()))
            .collect();
        by_age.sort();
        for (_, id) in by_age.into_iter().take(excess) {
            if let Some(t) = self.conversations.remove(&id) {
                let created = t.created.unwrap_or(t.activity);
                self.evicted_created =
                    Some(self.evicted_created.map_or(created, |e| e.max(created)));
            }
        }
    }

    /// Queues a message read of `native`, once.
    pub fn queue_messages(&mut self, native: &str) {
        if !self.message_queue.iter().any(|q| q == native) {
            self.message_queue.push(native.to_owned());
        }
    }

    /// The blob stored for the snapshot.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The snapshot of a stored blob; an unreadable one starts over (a silent baseline).
    pub fn decode(bytes: &[u8]) -> Option<Snapshot> {
        serde_json::from_slice(bytes).ok()
    }
}
