//! Where a caller stands, carried with the request's task: its own quota as the gateway's auth
//! counted it, and the quota of every connection whose vendor the request reached. The server
//! states them in the IETF `RateLimit-Policy` / `RateLimit` header fields of the answer.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

tokio::task_local! {
    static LEDGER: Ledger;
}

/// One quota policy and what is left of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaState {
    /// Requests allowed per window (`q`).
    pub quota: u32,
    /// The window, in seconds (`w`).
    pub window_secs: u32,
    /// Requests left (`r`).
    pub remaining: u32,
    /// Seconds until the quota is whole again (`t`).
    pub reset_secs: u64,
}

impl QuotaState {
    /// The state of a budget of `quota` per `window_secs` with `remaining` left, refilled evenly
    /// over the window: whole again after the spent part's share of the window.
    pub fn refilling(quota: u32, window_secs: u32, remaining: u32) -> QuotaState {
        let quota = quota.max(1);
        let remaining = remaining.min(quota);
        let spent = u64::from(quota - remaining);
        let reset_secs = (spent * u64::from(window_secs)).div_ceil(u64::from(quota));
        QuotaState {
            quota,
            window_secs,
            remaining,
            reset_secs,
        }
    }
}

#[derive(Debug, Default)]
struct Noted {
    caller: Option<QuotaState>,
    connections: BTreeMap<String, QuotaState>,
}

/// What one request's answer states; shared by the tasks working for the request.
#[derive(Debug, Clone, Default)]
pub struct Ledger(Arc<Mutex<Noted>>);

impl Ledger {
    /// Runs `work` with this ledger as the one its notes go to.
    pub async fn scope<F: Future>(self, work: F) -> F::Output {
        LEDGER.scope(self, work).await
    }

    /// The ledger of the running task, if it works for a request.
    pub fn current() -> Option<Ledger> {
        LEDGER.try_with(Clone::clone).ok()
    }

    /// `work` run with `ledger`, when there is one: what a task spawned for a request carries
    /// over from it (task-local values do not cross `tokio::spawn`).
    pub async fn carry<F: Future>(ledger: Option<Ledger>, work: F) -> F::Output {
        match ledger {
            Some(ledger) => ledger.scope(work).await,
            None => work.await,
        }
    }

    /// Notes the caller's own quota (no-op outside a request).
    pub fn note_caller(state: QuotaState) {
        let _ = LEDGER.try_with(|ledger| ledger.lock().caller = Some(state));
    }

    /// Notes that the request reached `connection`'s vendor, whose quota is now `state`.
    pub fn note_connection(connection: &str, state: QuotaState) {
        let _ = LEDGER.try_with(|ledger| {
            ledger
                .lock()
                .connections
                .insert(connection.to_owned(), state);
        });
    }

    /// The caller's quota, when the request was authenticated.
    pub fn caller(&self) -> Option<QuotaState> {
        self.lock().caller
    }

    /// The connections whose vendor the request reached, by id, with their quota.
    pub fn connections(&self) -> Vec<(String, QuotaState)> {
        self.lock()
            .connections
            .iter()
            .map(|(id, state)| (id.clone(), *state))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Noted> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refilling_budget_is_whole_after_its_spent_share_of_the_window() {
        assert_eq!(QuotaState::refilling(600, 60, 597).reset_secs, 1);
        assert_eq!(QuotaState::refilling(3, 60, 0).reset_secs, 60);
        assert_eq!(QuotaState::refilling(3, 60, 2).reset_secs, 20);
        assert_eq!(QuotaState::refilling(3, 60, 3).reset_secs, 0);
        assert_eq!(
            QuotaState::refilling(3, 60, 9).remaining,
            3,
            "never more than the quota"
        );
    }

    #[tokio::test]
    async fn notes_reach_the_ledger_of_their_request_across_a_spawn() {
        let ledger = Ledger::default();
        ledger
            .clone()
            .scope(async {
                Ledger::note_caller(QuotaState::refilling(10, 60, 9));
                let carried = Ledger::carry(Ledger::current(), async {
                    Ledger::note_connection("acme", QuotaState::refilling(5, 10, 4));
                });
                tokio::spawn(carried).await.expect("runs");
            })
            .await;
        Ledger::note_caller(QuotaState::refilling(1, 1, 0));
        assert_eq!(ledger.caller().map(|c| c.remaining), Some(9));
        assert_eq!(ledger.connections().len(), 1);
        assert_eq!(ledger.connections()[0].0, "acme");
    }
}
