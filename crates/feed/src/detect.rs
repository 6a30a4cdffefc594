//! The change detector: one poll pass over one connection, within a budget of upstream calls.
//!
//! The inbox is read newest first down to the high-water mark of the last completed scan less a
//! lookback window, so items stamped at the boundary, or moved while a scan was under way, are
//! read again. The mark is the newest activity of a scan's first call, a time the vendor's clock
//! had passed when the scan began: an item a scan read, moved afterwards and stamped late within
//! the lookback, is above the next scan's floor however many calls (and passes) the scan took.
//! Each item is compared with its snapshot, so reading one twice emits nothing. A scan (of the
//! list, or of one conversation's messages) that the budget cuts short goes on from where it
//! stopped in the next pass: nothing is skipped. The first complete scan of a connection records
//! the baseline silently.

use chrono::{DateTime, Utc};
use switchboard_core::event::fields;
use switchboard_core::{
    Conversation, ConversationFilter, Error, ErrorKind, Event, EventType, ListQuery, Message,
    MessageQuery, Provider, UpstreamPage,
};
use switchboard_store::Store;

use crate::echo::{self, Echo, EchoedWrite};
use crate::snapshot::{ListScan, MAX_TRACKED_CONVERSATIONS, MessageMark, Snapshot, Tracked};

/// How far below the high-water mark a scan reads again when not configured otherwise.
pub const DEFAULT_LOOKBACK: std::time::Duration = std::time::Duration::from_secs(60);

/// A change the vendor stamped less than this ago, with no gateway echo, waits for the next pass:
/// a write made through the gateway is at the vendor a moment before its echo is recorded, and
/// this is far longer than that moment.
pub const ECHO_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Upstream calls one pass may make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallBudget {
    left: u32,
    used: u32,
}

impl CallBudget {
    /// A budget of `calls`.
    pub fn new(calls: u32) -> CallBudget {
        CallBudget {
            left: calls,
            used: 0,
        }
    }

    /// Takes one call; false when none is left.
    pub fn take(&mut self) -> bool {
        if self.left == 0 {
            return false;
        }
        self.left -= 1;
        self.used += 1;
        true
    }

    /// Calls left.
    pub fn left(&self) -> u32 {
        self.left
    }

    /// Calls taken.
    pub fn used(&self) -> u32 {
        self.used
    }
}

/// How often a scan reads the whole list (up to the tracked conversations' bound), for changes
/// a vendor makes without moving the activity time (Zipchat's assignments).
pub const DEFAULT_FULL_SCAN_EVERY: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// How the detector reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetectSettings {
    /// How far below the high-water mark each scan reads again.
    pub lookback: chrono::Duration,
    /// How often a scan reads the whole list.
    pub full_scan_every: chrono::Duration,
}

impl Default for DetectSettings {
    fn default() -> DetectSettings {
        DetectSettings {
            lookback: chrono::Duration::from_std(DEFAULT_LOOKBACK).unwrap_or_default(),
            full_scan_every: chrono::Duration::from_std(DEFAULT_FULL_SCAN_EVERY)
                .unwrap_or_default(),
        }
    }
}

/// What a pass found.
#[derive(Debug)]
pub struct PassOutcome {
    /// The events, in the order found (without ids).
    pub events: Vec<Event>,
    /// The error that ended the pass early, if any; the snapshot holds everything before it.
    pub error: Option<Error>,
}

struct Pass<'a> {
    provider: &'a dyn Provider,
    store: &'a dyn Store,
    settings: DetectSettings,
    now: DateTime<Utc>,
    events: Vec<Event>,
}

/// Runs one pass: continues the message reads waiting from earlier passes (keeping a call for
/// the list when the budget has two or more), then the list scan, then the message reads it
/// asked for, as far as `budget` goes. `snapshot` is updated to match the events returned.
pub async fn run_pass(
    provider: &dyn Provider,
    store: &dyn Store,
    snapshot: &mut Snapshot,
    budget: &mut CallBudget,
    settings: DetectSettings,
    now: DateTime<Utc>,
) -> PassOutcome {
    let mut pass = Pass {
        provider,
        store,
        settings,
        now,
        events: Vec::new(),
    };
    let reserve = u32::from(budget.left() >= 2);
    let result = async {
        pass.read_queued_messages(snapshot, budget, reserve).await?;
        pass.scan_list(snapshot, budget).await?;
        pass.read_queued_messages(snapshot, budget, 0).await
    }
    .await;
    snapshot.bound();
    PassOutcome {
        events: pass.events,
        error: result.err(),
    }
}

/// The compared fields of `c` that differ from `t`.
fn differences(t: &Tracked, c: &Conversation) -> Vec<&'static str> {
    let mut changed = Vec::new();
    if t.status != c.status {
        changed.push(fields::STATUS);
    }
    if t.mode != c.mode {
        changed.push(fields::MODE);
    }
    if t.assignee.as_deref() != c.assignee.as_ref().map(|a| a.native_id.as_str()) {
        changed.push(fields::ASSIGNEE);
    }
    if t.activity != c.last_activity_at {
        changed.push(fields::LAST_ACTIVITY_AT);
    }
    if t.message_count != c.message_count {
        changed.push(fields::MESSAGE_COUNT);
    }
    changed
}

fn is_activity(field: &str) -> bool {
    field == fields::LAST_ACTIVITY_AT || field == fields::MESSAGE_COUNT
}

/// Takes a gateway write's echo into the tracked state, as if the poller had seen it.
fn apply_echo(t: &mut Tracked, echo: &Echo) {
    match &echo.write {
        EchoedWrite::Conversation {
            activity,
            status,
            mode,
            assignee,
            message_count,
        } => {
            if *activity >= t.activity {
                t.activity = *activity;
                t.status = *status;
                t.mode = *mode;
                t.assignee.clone_from(assignee);
                if message_count.is_some() {
                    t.message_count = *message_count;
                }
            }
        }
        EchoedWrite::Message { id, created_at } => {
            if !t.messages.known.iter().any(|(k, _)| k == id) {
                t.activity = t.activity.max(*created_at);
                t.message_count = t.message_count.map(|n| n + 1);
                t.messages.learn(id, *created_at);
            }
        }
    }
}

impl Pass<'_> {
    fn connection(&self) -> &str {
        &self.provider.info().connection
    }

    /// Whether a change stamped `at` is too recent to tell from a gateway write whose echo is
    /// not recorded yet (never when the vendor's clock is ahead of this one).
    fn too_fresh(&self, at: DateTime<Utc>) -> bool {
        let age = self.now - at;
        age >= chrono::Duration::zero()
            && age < chrono::Duration::from_std(ECHO_GRACE).unwrap_or_default()
    }

    fn emit_conversation(&mut self, kind: EventType, c: &Conversation, changed: Option<Vec<&str>>) {
        let mut event = Event::conversation(kind, c.clone(), self.now);
        if let Some(changed) = changed {
            event = event.with_changed(changed.into_iter().map(str::to_owned).collect());
        }
        self.events.push(event);
    }

    fn emit_messages(&mut self, mut newest_first: Vec<Message>) {
        newest_first.reverse();
        for m in newest_first {
            self.events.push(Event::message(m, self.now));
        }
    }

    async fn scan_list(
        &mut self,
        snapshot: &mut Snapshot,
        budget: &mut CallBudget,
    ) -> Result<(), Error> {
        let caps = self.provider.info().capabilities.clone();
        let mut scan = snapshot.scan.take().unwrap_or_else(|| {
            let full = !snapshot.baseline_done
                || snapshot
                    .last_full_scan
                    .is_none_or(|t| self.now - t >= self.settings.full_scan_every);
            ListScan {
                next: UpstreamPage::First,
                floor: snapshot
                    .high
                    .filter(|_| !full)
                    .map(|h| h - self.settings.lookback),
                first_max: None,
                full,
                read: 0,
            }
        });
        loop {
            if !budget.take() {
                snapshot.scan = Some(scan);
                return Ok(());
            }
            let filter = ConversationFilter {
                updated_since: scan.floor.filter(|_| caps.native_filters.updated_since),
                ..ConversationFilter::default()
            };
            let query = ListQuery {
                filter: &filter,
                page_size: caps.max_page_size,
                include_raw: false,
            };
            let page = match self.provider.list_conversations(&query, &scan.next).await {
                Ok(page) => page,
                Err(e) => {
                    snapshot.scan = Some(scan);
                    return Err(e);
                }
            };
            let first_call = scan.next == UpstreamPage::First;
            let mut done = page.next.is_none();
            for c in page.items {
                if caps.sorted_by_activity && scan.floor.is_some_and(|f| c.last_activity_at < f) {
                    done = true;
                    break;
                }
                if first_call {
                    scan.first_max = Some(
                        scan.first_max
                            .map_or(c.last_activity_at, |m| m.max(c.last_activity_at)),
                    );
                }
                scan.read += 1;
                if let Err(e) = self.observe(snapshot, &c).await {
                    snapshot.scan = Some(scan);
                    return Err(e);
                }
                if scan.full && scan.read >= MAX_TRACKED_CONVERSATIONS {
                    done = true;
                    break;
                }
            }
            match page.next {
                Some(next) if !done => scan.next = next,
                _ => {
                    // Not the newest activity of the whole scan: what it read before a later
                    // page showed a newer one may have moved since, stamped below that one.
                    snapshot.high = match (snapshot.high, scan.first_max) {
                        (Some(h), Some(m)) => Some(h.max(m)),
                        (h, m) => h.or(m),
                    };
                    if !snapshot.baseline_done {
                        snapshot.baseline_high = snapshot.high;
                        snapshot.baseline_done = true;
                    }
                    if scan.full {
                        snapshot.last_full_scan = Some(self.now);
                    }
                    return Ok(());
                }
            }
        }
    }

    /// Compares one listed conversation with its snapshot; emits what changed.
    async fn observe(&mut self, snapshot: &mut Snapshot, c: &Conversation) -> Result<(), Error> {
        let reads_messages = self.provider.info().capabilities.list_messages;
        if !snapshot.baseline_done {
            let mut tracked = Tracked::of(c);
            tracked.messages = MessageMark::baseline(c);
            snapshot.conversations.insert(c.native_id.clone(), tracked);
            return Ok(());
        }
        let Some(tracked) = snapshot.conversations.get_mut(&c.native_id) else {
            return self.observe_unknown(snapshot, c).await;
        };
        if differences(tracked, c).is_empty() {
            return Ok(());
        }
        let echoes = echo::load(
            self.store,
            self.provider.info().connection.as_str(),
            &c.native_id,
        )
        .await?;
        let before = tracked.clone();
        let fresh: Vec<&Echo> = echoes
            .iter()
            .filter(|e| !tracked.applied_echoes.contains(&e.id))
            .collect();
        if fresh.is_empty() && self.too_fresh(c.last_activity_at) {
            // Read again by the next scan (it is above the next floor): its echo, if it is a
            // gateway write, is recorded by then.
            return Ok(());
        }
        for e in &fresh {
            apply_echo(tracked, e);
        }
        tracked.applied_echoes = echoes.iter().map(|e| e.id).collect();
        let mut changed = differences(tracked, c);
        if !fresh.is_empty() && changed.iter().all(|f| is_activity(f)) {
            // A gateway write explains the move (a reply, or a vendor that stamps writes); new
            // messages from others are still read and reported below.
            changed.clear();
        }
        let moved = c.last_activity_at > before.activity
            || c.message_count.unwrap_or(0) > before.message_count.unwrap_or(0);
        if moved && tracked.messages.next.is_some() {
            // The read under way started before this move; what moved may sit above it.
            tracked.messages.again = true;
        }
        tracked.update_from(c);
        if !changed.is_empty() {
            self.emit_conversation(EventType::ConversationUpdated, c, Some(changed));
        }
        if moved && reads_messages {
            snapshot.queue_messages(&c.native_id);
        }
        Ok(())
    }

    /// A conversation the snapshot does not track: new (created after the baseline and never
    /// forgotten), or one forgotten for space or older than the baseline that moved.
    async fn observe_unknown(
        &mut self,
        snapshot: &mut Snapshot,
        c: &Conversation,
    ) -> Result<(), Error> {
        // Within the window every incremental scan reads, an untracked old conversation moved.
        let floor = snapshot.high.map(|h| h - self.settings.lookback);
        let reads_messages = self.provider.info().capabilities.list_messages;
        let created_after_baseline = match c.created_at {
            None => true,
            Some(created) => {
                snapshot
                    .baseline_high
                    .is_none_or(|b| created >= b - self.settings.lookback)
                    && snapshot.evicted_created.is_none_or(|e| created > e)
            }
        };
        let mut tracked = Tracked::of(c);
        if created_after_baseline {
            self.emit_conversation(EventType::ConversationCreated, c, None);
            for e in echo::load(self.store, self.connection(), &c.native_id).await? {
                if let EchoedWrite::Message { id, created_at } = &e.write {
                    tracked.messages.learn(id, *created_at);
                }
                tracked.applied_echoes.push(e.id);
            }
            snapshot.conversations.insert(c.native_id.clone(), tracked);
            if reads_messages {
                snapshot.queue_messages(&c.native_id);
            }
        } else {
            if floor.is_none_or(|f| c.last_activity_at >= f) {
                self.emit_conversation(
                    EventType::ConversationUpdated,
                    c,
                    Some(vec![fields::LAST_ACTIVITY_AT]),
                );
            }
            tracked.messages = MessageMark::baseline(c);
            snapshot.conversations.insert(c.native_id.clone(), tracked);
        }
        Ok(())
    }

    /// Reads the messages of queued conversations while more than `reserve` calls are left.
    async fn read_queued_messages(
        &mut self,
        snapshot: &mut Snapshot,
        budget: &mut CallBudget,
        reserve: u32,
    ) -> Result<(), Error> {
        while let Some(native) = snapshot.message_queue.first().cloned() {
            if budget.left() <= reserve {
                return Ok(());
            }
            let Some(tracked) = snapshot.conversations.get_mut(&native) else {
                snapshot.message_queue.remove(0);
                continue;
            };
            match self.read_messages(&native, tracked, budget, reserve).await {
                Ok(true) => {
                    let queued = snapshot.message_queue.remove(0);
                    if std::mem::take(&mut tracked.messages.again) {
                        snapshot.message_queue.push(queued);
                    }
                }
                Ok(false) => return Ok(()),
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    snapshot.message_queue.remove(0);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads one conversation's new messages, newest first, down to its message floor; emits
    /// them oldest first. `Ok(true)` when the read is complete, `Ok(false)` when the budget ended
    /// it (it goes on from there next time).
    async fn read_messages(
        &mut self,
        native: &str,
        tracked: &mut Tracked,
        budget: &mut CallBudget,
        reserve: u32,
    ) -> Result<bool, Error> {
        let caps = self.provider.info().capabilities.clone();
        for e in echo::load(self.store, self.connection(), native).await? {
            if let EchoedWrite::Message { id, created_at } = &e.write {
                tracked.messages.learn(id, *created_at);
            }
        }
        let mark = &mut tracked.messages;
        let mut found = Vec::new();
        let mut next = mark.next.clone().unwrap_or(UpstreamPage::First);
        let complete = loop {
            if budget.left() <= reserve || !budget.take() {
                mark.next = Some(next);
                break false;
            }
            let query = MessageQuery {
                since: mark.floor,
                page_size: caps.max_message_page_size,
                include_raw: false,
            };
            let page = match self.provider.list_messages(native, &query, &next).await {
                Ok(page) => page,
                Err(e) => {
                    mark.next = Some(next);
                    self.emit_messages(found);
                    return Err(e);
                }
            };
            let mut reached_floor = false;
            for m in page.items {
                if mark.floor.is_some_and(|f| m.created_at < f) {
                    reached_floor = true;
                    break;
                }
                if mark.known.iter().any(|(k, _)| *k == m.native_id) {
                    continue;
                }
                if self.too_fresh(m.created_at) {
                    // Possibly a reply through the gateway whose echo is not recorded yet.
                    mark.again = true;
                    continue;
                }
                mark.learn(&m.native_id, m.created_at);
                found.push(m);
            }
            match page.next {
                Some(page_next) if !reached_floor => next = page_next,
                _ => break true,
            }
        };
        if complete {
            mark.settle(self.settings.lookback);
        }
        self.emit_messages(found);
        Ok(complete)
    }
}
