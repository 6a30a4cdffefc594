//! A vendor in memory whose world a script changes between passes (conversations, messages,
//! assignments), paged as its capabilities say: the detector's ground truth.
#![allow(dead_code, unused_imports)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use switchboard_core::{
    Agent, Assignment, BreakerState, Capabilities, Channel, ConnectionHealth, Conversation, Error,
    Event, EventType, ListQuery, Message, MessageQuery, Mode, NativeFilters, NewMessage, Operation,
    Page, PagingStyle, Provider, ProviderInfo, ProviderKind, Status, UpstreamPage,
};
use switchboard_core::{Author, Direction};
use switchboard_feed::detect::{CallBudget, DetectSettings, run_pass};
use switchboard_feed::snapshot::Snapshot;
use switchboard_store::MemoryStore;

use super::*;

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .single()
        .expect("time")
}

#[derive(Debug, Clone)]
pub struct VMsg {
    pub id: u64,
    pub created: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct VConv {
    pub id: u64,
    pub created: DateTime<Utc>,
    pub activity: DateTime<Utc>,
    pub status: Status,
    pub assignee: Option<u64>,
    pub messages: Vec<VMsg>,
    /// The activity the baseline recorded (conversations that existed then).
    pub baseline_activity: Option<DateTime<Utc>>,
}

/// A change the script makes to the vendor's world.
#[derive(Debug, Clone)]
pub enum Change {
    /// The clock moves on by 0 to 2 seconds.
    Tick(i64),
    /// A new conversation with this many messages.
    NewConversation(u8),
    /// A message in the conversation at this index, stamped this many seconds back (within
    /// the lookback).
    Message(usize, i64),
    /// A status change (the vendor moves the activity time to now).
    Status(usize, Status),
    /// An assignment (`None`: back to the bot).
    Assign(usize, Option<u64>),
}

#[derive(Debug)]
pub struct World {
    pub clock: DateTime<Utc>,
    pub conversations: Vec<VConv>,
    pub next_id: u64,
    /// Changes still to come, each after the vendor answered that many calls.
    pub script: Vec<(u32, Change)>,
    pub calls: u32,
    /// Calls to the conversation list.
    pub list_calls: u32,
    /// Conversations (ids) the script touched, and messages and conversations it added.
    pub touched: BTreeSet<u64>,
    pub added_messages: BTreeSet<u64>,
    pub added_conversations: BTreeSet<u64>,
    pub silent_assignments: bool,
}

impl World {
    pub fn apply(&mut self, change: &Change) {
        match change {
            Change::Tick(secs) => self.clock += Duration::seconds(*secs),
            Change::NewConversation(messages) => {
                let id = self.next_id;
                self.next_id += 1;
                let mut c = VConv {
                    id,
                    created: self.clock,
                    activity: self.clock,
                    status: Status::Open,
                    assignee: None,
                    messages: Vec::new(),
                    baseline_activity: None,
                };
                for _ in 0..*messages {
                    let m = self.next_id;
                    self.next_id += 1;
                    c.messages.push(VMsg {
                        id: m,
                        created: self.clock,
                    });
                    self.added_messages.insert(m);
                }
                self.added_conversations.insert(id);
                self.touched.insert(id);
                self.conversations.push(c);
            }
            Change::Message(index, back) => {
                let clock = self.clock;
                let id = self.next_id;
                let Some(c) = self.pick(*index) else { return };
                // Late within the lookback, but after the activity the baseline recorded (the
                // baseline reads no messages, so it cannot tell one stamped in that very instant
                // from those that were there).
                let after_baseline = c
                    .baseline_activity
                    .map_or(t0(), |b| (b + Duration::seconds(1)).max(t0()));
                let created = (clock - Duration::seconds(*back)).max(after_baseline);
                c.messages.push(VMsg { id, created });
                c.activity = c.activity.max(created);
                let cid = c.id;
                self.next_id += 1;
                self.added_messages.insert(id);
                self.touched.insert(cid);
            }
            Change::Status(index, status) => {
                let clock = self.clock;
                let Some(c) = self.pick(*index) else { return };
                if c.status != *status {
                    c.status = *status;
                    c.activity = c.activity.max(clock);
                    let cid = c.id;
                    self.touched.insert(cid);
                }
            }
            Change::Assign(index, agent) => {
                let clock = self.clock;
                let silent = self.silent_assignments;
                let Some(c) = self.pick(*index) else { return };
                if c.assignee != *agent {
                    c.assignee = *agent;
                    if !silent {
                        c.activity = c.activity.max(clock);
                    }
                    let cid = c.id;
                    self.touched.insert(cid);
                }
            }
        }
    }

    pub fn pick(&mut self, index: usize) -> Option<&mut VConv> {
        let len = self.conversations.len();
        (len > 0).then(|| &mut self.conversations[index % len])
    }

    /// Runs the changes due before the next call.
    pub fn advance(&mut self) {
        let due: Vec<Change> = self
            .script
            .iter()
            .filter(|(at, _)| *at <= self.calls)
            .map(|(_, c)| c.clone())
            .collect();
        self.script.retain(|(at, _)| *at > self.calls);
        for change in &due {
            self.apply(change);
        }
        self.calls += 1;
    }
}

pub fn agent(id: u64) -> Agent {
    Agent {
        id: format!("{CONNECTION}:a{id}"),
        connection: CONNECTION.into(),
        provider: ProviderKind::new("zipchat"),
        native_id: format!("a{id}"),
        name: None,
        email: None,
        avatar_url: None,
    }
}

pub fn conversation(c: &VConv) -> Conversation {
    Conversation {
        id: format!("{CONNECTION}:{}", c.id),
        connection: CONNECTION.into(),
        provider: ProviderKind::new("zipchat"),
        native_id: c.id.to_string(),
        channel: Channel::Web,
        native_channel: None,
        status: c.status,
        mode: Some(if c.assignee.is_some() {
            Mode::Human
        } else {
            Mode::Ai
        }),
        assignee: c.assignee.map(agent),
        contact: None,
        created_at: Some(c.created),
        updated_at: None,
        last_activity_at: c.activity,
        last_message: None,
        message_count: Some(c.messages.len() as u64),
        escalation: None,
        url: None,
        raw: None,
    }
}

pub fn message(conv: u64, m: &VMsg) -> Message {
    Message {
        id: format!("{CONNECTION}:{}", m.id),
        conversation_id: format!("{CONNECTION}:{conv}"),
        connection: CONNECTION.into(),
        provider: ProviderKind::new("zipchat"),
        native_id: m.id.to_string(),
        author: Author::Contact,
        sender: None,
        text: format!("message {}", m.id),
        html: None,
        attachments: Vec::new(),
        created_at: m.created,
        direction: Direction::Inbound,
        delivery_status: None,
        raw: None,
    }
}

pub fn page_of<T: Clone>(items: &[T], page: &UpstreamPage, size: usize) -> Page<T> {
    let number = match page {
        UpstreamPage::Number(n) => *n as usize,
        _ => 1,
    };
    let start = (number - 1) * size;
    let slice: Vec<T> = items.iter().skip(start).take(size).cloned().collect();
    let more = items.len() > start + size;
    Page {
        items: slice,
        next: more.then(|| UpstreamPage::Number(u32::try_from(number + 1).unwrap_or(u32::MAX))),
    }
}

#[derive(Debug)]
pub struct MemVendor {
    pub info: ProviderInfo,
    pub world: Mutex<World>,
}

impl MemVendor {
    /// The vendor of `case`, its world as the case starts.
    pub fn of(case: &Case) -> MemVendor {
        MemVendor {
            info: ProviderInfo {
                kind: ProviderKind::new("zipchat"),
                connection: CONNECTION.into(),
                capabilities: capabilities(case.sorted, case.native_since),
                sort_window: std::sync::Arc::default(),
            },
            world: Mutex::new(world(case)),
        }
    }

    pub fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl Provider for MemVendor {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }

    fn health(&self) -> ConnectionHealth {
        ConnectionHealth {
            breaker: BreakerState::Closed,
            last_error: None,
            last_success_at: None,
            quota: None,
        }
    }

    async fn list_conversations(
        &self,
        query: &ListQuery<'_>,
        page: &UpstreamPage,
    ) -> switchboard_core::Result<Page<Conversation>> {
        let mut world = self.world();
        world.advance();
        world.list_calls += 1;
        let mut items: Vec<&VConv> = world
            .conversations
            .iter()
            .filter(|c| query.filter.updated_since.is_none_or(|s| c.activity >= s))
            .collect();
        if self.info.capabilities.sorted_by_activity {
            items.sort_by(|a, b| b.activity.cmp(&a.activity).then(b.id.cmp(&a.id)));
        }
        let items: Vec<Conversation> = items.into_iter().map(conversation).collect();
        Ok(page_of(&items, page, query.page_size as usize))
    }

    async fn get_conversation(
        &self,
        id: &str,
        _include_raw: bool,
    ) -> switchboard_core::Result<Conversation> {
        let world = self.world();
        world
            .conversations
            .iter()
            .find(|c| c.id.to_string() == id)
            .map(conversation)
            .ok_or_else(|| Error::not_found("no such conversation"))
    }

    async fn list_messages(
        &self,
        conv: &str,
        query: &MessageQuery,
        page: &UpstreamPage,
    ) -> switchboard_core::Result<Page<Message>> {
        let mut world = self.world();
        world.advance();
        let c = world
            .conversations
            .iter()
            .find(|c| c.id.to_string() == conv)
            .ok_or_else(|| Error::not_found("no such conversation"))?;
        let mut messages: Vec<&VMsg> = c
            .messages
            .iter()
            .filter(|m| query.since.is_none_or(|s| m.created >= s))
            .collect();
        messages.sort_by(|a, b| b.created.cmp(&a.created).then(b.id.cmp(&a.id)));
        let items: Vec<Message> = messages.into_iter().map(|m| message(c.id, m)).collect();
        Ok(page_of(&items, page, query.page_size as usize))
    }

    async fn list_agents(&self, _: &UpstreamPage) -> switchboard_core::Result<Page<Agent>> {
        Err(Error::unsupported(Operation::ListAgents))
    }

    async fn set_assignment(
        &self,
        _: &str,
        _: Assignment,
    ) -> switchboard_core::Result<Conversation> {
        Err(Error::unsupported(Operation::Assign))
    }

    async fn send_message(&self, _: &str, _: NewMessage) -> switchboard_core::Result<Message> {
        Err(Error::unsupported(Operation::SendMessage))
    }

    async fn set_status(&self, _: &str, _: Status) -> switchboard_core::Result<Conversation> {
        Err(Error::unsupported(Operation::SetStatus))
    }
}

pub fn capabilities(sorted: bool, native_since: bool) -> Capabilities {
    Capabilities {
        list_conversations: true,
        get_conversation: true,
        list_messages: true,
        list_agents: false,
        assign: false,
        unassign: false,
        send_message: false,
        set_status: Vec::new(),
        idempotent_replies: false,
        native_filters: NativeFilters {
            updated_since: native_since,
            ..NativeFilters::default()
        },
        paging: PagingStyle::PageNumber,
        max_page_size: 3,
        max_message_page_size: 2,
        sorted_by_activity: sorted,
    }
}
