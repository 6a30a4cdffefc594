//! Connection slots. At most `max_connections` connections are served at once, each holding a
//! slot from accept to close. Until its first request arrives a connection is *unproven*: it
//! must send that request within `header_timeout` (HTTP/1 and HTTP/2 alike, the first byte
//! included), and when every slot is taken, the oldest unproven connection is closed to make
//! room for the new one. Silent or slow clients therefore cannot lock others out: a new client
//! always gets a slot unless every slot serves a client that has sent a request.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// The server's connection slots.
#[derive(Debug)]
pub struct Slots {
    permits: Arc<Semaphore>,
    unproven: Mutex<VecDeque<Arc<Connection>>>,
    header_timeout: Duration,
}

/// One connection's standing.
#[derive(Debug, Default)]
pub struct Connection {
    /// A request arrived (or the connection ended): it is no longer evictable.
    proven: AtomicBool,
    evict: Notify,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Slots {
    /// `max` slots (at least one); unproven connections get `header_timeout` to send a request.
    pub fn new(max: usize, header_timeout: Duration) -> Slots {
        Slots {
            permits: Arc::new(Semaphore::new(max.max(1))),
            unproven: Mutex::default(),
            header_timeout,
        }
    }

    /// A slot for a connection just accepted: a free one, or the oldest unproven connection's,
    /// which is closed for it; waits only while every slot serves a proven connection.
    pub async fn admit(&self) -> OwnedSemaphorePermit {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return permit;
        }
        self.evict_oldest();
        loop {
            // The semaphore is never closed.
            if let Ok(permit) = self.permits.clone().acquire_owned().await {
                return permit;
            }
        }
    }

    /// Tracks a connection admitted; it is unproven until [`Connection::prove`].
    pub fn track(&self) -> Arc<Connection> {
        let connection = Arc::new(Connection::default());
        let mut unproven = lock(&self.unproven);
        while unproven
            .front()
            .is_some_and(|c| c.proven.load(Ordering::Relaxed))
        {
            unproven.pop_front();
        }
        unproven.push_back(connection.clone());
        connection
    }

    fn evict_oldest(&self) {
        let mut unproven = lock(&self.unproven);
        while let Some(oldest) = unproven.pop_front() {
            if !oldest.proven.load(Ordering::Relaxed) {
                tracing::debug!(
                    "every connection slot is taken: closing the oldest connection that has sent no request"
                );
                oldest.evict.notify_one();
                return;
            }
        }
    }

    /// Completes when `connection` must close without serving more: it gave its slot to a new
    /// one, or sent no request within the header timeout. Never completes once it is proven.
    pub async fn expired(&self, connection: &Connection) {
        let late = async {
            tokio::time::sleep(self.header_timeout).await;
            if connection.proven.load(Ordering::Relaxed) {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = connection.evict.notified() => {}
            () = late => {}
        }
    }
}

impl Connection {
    /// A request arrived: the connection keeps its slot.
    pub fn prove(&self) {
        self.proven.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_new_connection_takes_the_oldest_unproven_ones_slot() {
        let slots = Arc::new(Slots::new(2, Duration::from_secs(600)));
        let slot_a = slots.admit().await;
        let a = slots.track();
        let _slot_b = slots.admit().await;
        let b = slots.track();
        b.prove();
        let third = tokio::spawn({
            let slots = slots.clone();
            async move { slots.admit().await }
        });
        tokio::time::timeout(Duration::from_secs(60), slots.expired(&a))
            .await
            .expect("the oldest unproven connection is told to close, long before its timeout");
        drop(slot_a);
        let _slot_c = third.await.expect("the new connection gets the freed slot");
        assert!(
            tokio::time::timeout(Duration::from_secs(3600), slots.expired(&b))
                .await
                .is_err(),
            "a connection that sent a request is never closed for another"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_unproven_connection_expires_at_the_header_timeout_and_a_proven_one_never() {
        let slots = Slots::new(4, Duration::from_secs(10));
        let silent = slots.track();
        let talking = slots.track();
        talking.prove();
        tokio::time::timeout(Duration::from_secs(11), slots.expired(&silent))
            .await
            .expect("a silent connection expires");
        assert!(
            tokio::time::timeout(Duration::from_secs(3600), slots.expired(&talking))
                .await
                .is_err(),
            "a connection that sent a request keeps its slot"
        );
    }
}
