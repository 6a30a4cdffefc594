//! The caller's deadline, carried with the task: a multi-connection page sets its page deadline
//! once, and every upstream call made for it ends by then (quota waits, retries and the request
//! itself), so a slow vendor costs the page its budget, not its own longer timeout.

use std::future::Future;

use tokio::time::Instant;

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Runs `work` with `deadline` as the ambient deadline of every upstream call it makes (the
/// sooner one wins when scopes nest).
pub async fn within<F: Future>(deadline: Instant, work: F) -> F::Output {
    DEADLINE.scope(sooner(deadline), work).await
}

/// The ambient deadline, if the task runs within one.
pub fn ambient() -> Option<Instant> {
    DEADLINE.try_with(|ambient| *ambient).ok()
}

/// `work` run with `deadline` as its ambient deadline, when there is one: what a task spawned
/// for a caller carries over from it (task-local values do not cross `tokio::spawn`).
pub async fn carry<F: Future>(deadline: Option<Instant>, work: F) -> F::Output {
    match deadline {
        Some(deadline) => within(deadline, work).await,
        None => work.await,
    }
}

/// `own`, or the ambient deadline when that is sooner.
pub fn sooner(own: Instant) -> Instant {
    DEADLINE
        .try_with(|ambient| own.min(*ambient))
        .unwrap_or(own)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn the_sooner_deadline_wins() {
        let now = Instant::now();
        let page = now + Duration::from_secs(2);
        let own = now + Duration::from_secs(15);
        assert_eq!(sooner(own), own, "no ambient deadline");
        within(page, async {
            assert_eq!(sooner(own), page);
            within(now + Duration::from_secs(60), async {
                assert_eq!(sooner(own), page, "an outer, sooner deadline is kept");
            })
            .await;
        })
        .await;
    }
}
