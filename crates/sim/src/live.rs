//! The live world: every few seconds each simulated vendor takes one step by its own rules (a
//! customer writes, a bot answers, an agent closes a conversation), and `/_control/changes`
//! reports what changed, in order, bounded to the last [`MAX_CHANGES`].

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Query, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How many changes `/_control/changes` keeps (the oldest go first).
pub const MAX_CHANGES: usize = 5000;

/// What kind of change a step made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A new message (a customer wrote, or a bot answered).
    Message,
    /// The conversation's status changed (an agent closed or resolved it).
    Status,
}

/// What one vendor's world changed in one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tick {
    /// The conversation's native id.
    pub conversation: String,
    /// What changed.
    pub kind: ChangeKind,
    /// The new message's native id (`message` changes).
    pub message: Option<String>,
    /// Who made it: `customer`, `bot` or `agent`.
    pub by: &'static str,
}

/// One change as `/_control/changes` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Its position: 1, 2, ... in the order the changes were made.
    pub seq: u64,
    /// The vendor's simulator name (`chatbotx`, ...).
    pub vendor: String,
    /// The conversation's native id.
    pub conversation: String,
    /// What changed.
    pub kind: ChangeKind,
    /// The new message's native id (`message` changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Who made it: `customer`, `bot` or `agent`.
    pub by: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// The changes made so far, the last [`MAX_CHANGES`] of them.
#[derive(Debug, Default)]
pub struct ChangeLog {
    changes: VecDeque<Change>,
    last_seq: u64,
}

impl ChangeLog {
    /// Records `tick` of `vendor` at `at`; returns the change.
    pub fn record(&mut self, vendor: &str, tick: Tick, at: DateTime<Utc>) -> Change {
        self.last_seq += 1;
        let change = Change {
            seq: self.last_seq,
            vendor: vendor.to_owned(),
            conversation: tick.conversation,
            kind: tick.kind,
            message: tick.message,
            by: tick.by.to_owned(),
            at,
        };
        if self.changes.len() == MAX_CHANGES {
            self.changes.pop_front();
        }
        self.changes.push_back(change.clone());
        change
    }

    /// The changes kept whose `seq` is above `after`, oldest first.
    pub fn after(&self, after: u64) -> Vec<Change> {
        self.changes
            .iter()
            .filter(|c| c.seq > after)
            .cloned()
            .collect()
    }
}

/// What `GET /_control/changes` answers.
#[derive(Debug, Serialize, Deserialize)]
pub struct ChangesPage {
    /// The changes after the asked `seq`, oldest first.
    pub changes: Vec<Change>,
    /// The newest `seq` made so far (0: none), the next `after`.
    pub last_seq: u64,
}

#[derive(Debug, Deserialize)]
pub(crate) struct AfterQuery {
    #[serde(default)]
    after: u64,
}

pub(crate) async fn get_changes(
    State(log): State<Arc<Mutex<ChangeLog>>>,
    Query(q): Query<AfterQuery>,
) -> Json<ChangesPage> {
    let log = log
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Json(ChangesPage {
        changes: log.after(q.after),
        last_seq: log.last_seq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_changes_in_order() {
        let mut log = ChangeLog::default();
        let now = Utc::now();
        for i in 0..MAX_CHANGES + 10 {
            log.record(
                "v",
                Tick {
                    conversation: i.to_string(),
                    kind: ChangeKind::Message,
                    message: None,
                    by: "customer",
                },
                now,
            );
        }
        let all = log.after(0);
        assert_eq!(all.len(), MAX_CHANGES);
        assert_eq!(all[0].seq, 11);
        assert_eq!(log.after(MAX_CHANGES as u64 + 8).len(), 2);
    }
}
