//! The store of one replica in a redb file (the default for `serve`).
//!
//! Idempotency claims and records are written with durable commits, so they survive a restart
//! and a `kill -9`. Quotas are counted in this process's memory (a commit per vendor call cost a
//! third of a single read): a restart starts them whole. What a vendor said of its own window
//! (a block after a 429) is written to the file as well and read back at start, so a restarted
//! gateway still holds back until the vendor's window opens. Cached pages and their generations stay
//! in memory: one process owns the file, and a page lives two seconds; blobs meant to last
//! ([`LASTING_TTL`] or more: poller snapshots) are written to the file. Expired entries are
//! ignored on read and swept from the file every minute, so it does not grow without bound.
//!
//! Event logs are one table each (`log:{name}`), keyed by id, written with durable commits and
//! trimmed to their retention at every append; leases and their fencing counters are a table too,
//! so tokens keep increasing across restarts.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
};
use switchboard_core::{Error, Result};

use crate::budget::RateLimit;

mod records;

use crate::{
    Attempt, Claim, LASTING_TTL, LeaseState, LogEntry, LogId, MemoryStore, NotYet, QuotaLeft,
    Store, next_log_id, retention_floor, unavailable, unix_micros, unix_millis,
};
use records::{RecordState, StoredRecord, read_record, set_lease};

const QUOTAS: TableDefinition<&str, u64> = TableDefinition::new("quota_tat_us");
const BLOCKS: TableDefinition<&str, u64> = TableDefinition::new("blocked_until_us");
pub(super) const RECORDS: TableDefinition<&str, &[u8]> = TableDefinition::new("idempotency");
const BLOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("blobs");
const LEASES: TableDefinition<&str, &[u8]> = TableDefinition::new("leases");

/// The table of event log `log`: (ms, seq) -> body.
fn log_table(name: &str) -> TableDefinition<'_, (u64, u64), &'static [u8]> {
    TableDefinition::new(name)
}

fn log_table_name(log: &str) -> String {
    format!("log:{log}")
}

fn log_id((ms, seq): (u64, u64)) -> LogId {
    LogId { ms, seq }
}

/// An event log table opened for reading.
type LogTable = redb::ReadOnlyTable<(u64, u64), &'static [u8]>;

/// The event log table `name` for reading, or `None` when nothing was ever appended to it.
fn open_log(
    tx: &redb::ReadTransaction,
    name: &str,
) -> std::result::Result<Option<LogTable>, redb::Error> {
    match tx.open_table(log_table(name)) {
        Ok(table) => Ok(Some(table)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A lasting blob as stored: expiry (µs) then the value.
fn encode_blob(expires_us: u64, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + value.len());
    out.extend_from_slice(&expires_us.to_le_bytes());
    out.extend_from_slice(value);
    out
}

fn blob_expiry(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?))
}

/// How often expired entries are removed from the file.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// A redb file holding quotas, blocks and idempotency records; pages cached in memory.
pub struct EmbeddedStore {
    db: Arc<Database>,
    path: PathBuf,
    pages: MemoryStore,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("path", &self.path)
            .finish()
    }
}

impl EmbeddedStore {
    /// Opens (or creates) the file at `path`; the error names the path. Inside a Tokio runtime,
    /// also starts the periodic sweep of expired entries.
    pub fn open(path: &Path) -> Result<EmbeddedStore> {
        let fail = |e: redb::Error| {
            Error::new(
                switchboard_core::ErrorKind::Config,
                format!(
                    "cannot open the embedded store {} ({e}); set [store] path to a writable file that no other gateway process has open",
                    path.display()
                ),
            )
        };
        let db = Database::create(path).map_err(|e| fail(e.into()))?;
        let init = || -> std::result::Result<(), redb::Error> {
            let tx = db.begin_write()?;
            tx.open_table(QUOTAS)?;
            tx.open_table(BLOCKS)?;
            tx.open_table(RECORDS)?;
            tx.open_table(BLOBS)?;
            tx.open_table(LEASES)?;
            tx.commit()?;
            Ok(())
        };
        init().map_err(fail)?;
        let pages = MemoryStore::default();
        // The vendor blocks still running, back in memory, where quotas are checked.
        let blocks = || -> std::result::Result<Vec<(String, u64)>, redb::Error> {
            let tx = db.begin_read()?;
            let table = tx.open_table(BLOCKS)?;
            let mut out = Vec::new();
            for entry in table.iter()? {
                let (bucket, until) = entry?;
                out.push((bucket.value().to_owned(), until.value()));
            }
            Ok(out)
        };
        let now = unix_micros();
        for (bucket, until) in blocks().map_err(fail)? {
            if until > now {
                pages.set_block(&bucket, Duration::from_micros(until - now));
            }
        }
        let store = EmbeddedStore {
            db: Arc::new(db),
            path: path.to_owned(),
            pages,
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(sweep_forever(Arc::downgrade(&store.db), store.path.clone()));
        }
        Ok(store)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes every expired entry from the file now; returns how many went.
    pub async fn sweep(&self) -> Result<usize> {
        self.run(sweep_expired).await
    }

    /// Runs `f` on the database off the async threads; a failure is `store_unavailable`.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> std::result::Result<T, redb::Error> + Send + 'static,
    ) -> Result<T> {
        let db = self.db.clone();
        let path = self.path.clone();
        let failed = move |detail: String| {
            unavailable(format!(
                "the embedded store {} failed: {detail}",
                path.display()
            ))
        };
        match tokio::task::spawn_blocking(move || f(&db)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(failed(e.to_string()).with_source(e)),
            Err(e) => Err(failed(e.to_string())),
        }
    }
}

fn sweep_expired(db: &Database) -> std::result::Result<usize, redb::Error> {
    let now = unix_micros();
    let mut tx = db.begin_write()?;
    tx.set_durability(Durability::None)?;
    let mut removed = 0;
    {
        let mut quotas = tx.open_table(QUOTAS)?;
        let before = quotas.len()?;
        quotas.retain(|_, tat| tat > now)?;
        removed += before - quotas.len()?;
        let mut blocks = tx.open_table(BLOCKS)?;
        let before = blocks.len()?;
        blocks.retain(|_, until| until > now)?;
        removed += before - blocks.len()?;
        let mut records = tx.open_table(RECORDS)?;
        let before = records.len()?;
        records.retain(|_, v| StoredRecord::decode(v).is_some_and(|r| r.expires_us > now))?;
        removed += before - records.len()?;
        let mut blobs = tx.open_table(BLOBS)?;
        let before = blobs.len()?;
        blobs.retain(|_, v| blob_expiry(v).is_some_and(|e| e > now))?;
        removed += before - blobs.len()?;
    }
    tx.commit()?;
    Ok(usize::try_from(removed).unwrap_or(usize::MAX))
}

async fn sweep_forever(db: Weak<Database>, path: PathBuf) {
    loop {
        tokio::time::sleep(SWEEP_EVERY).await;
        let Some(db) = db.upgrade() else { return };
        match tokio::task::spawn_blocking(move || sweep_expired(&db)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(path = %path.display(), error = %e, "sweeping the embedded store failed")
            }
            Err(_) => return,
        }
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    fn kind(&self) -> &'static str {
        "embedded"
    }

    async fn ping(&self) -> Result<()> {
        self.run(|db| {
            let mut tx = db.begin_write()?;
            tx.set_durability(Durability::None)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        if let Some(page) = self.pages.cached(key) {
            return Ok(Some(page));
        }
        let key = key.to_owned();
        self.run(move |db| {
            let tx = db.begin_read()?;
            let blobs = tx.open_table(BLOBS)?;
            let now = unix_micros();
            Ok(blobs.get(key.as_str())?.and_then(|v| {
                let bytes = v.value();
                blob_expiry(bytes)
                    .filter(|e| *e > now)
                    .map(|_| Bytes::copy_from_slice(&bytes[8..]))
            }))
        })
        .await
    }

    async fn put(&self, key: &str, value: Bytes, ttl: Duration) -> Result<()> {
        if ttl < LASTING_TTL {
            self.pages.cache(key, value, ttl);
            return Ok(());
        }
        self.pages.uncache(key);
        let key = key.to_owned();
        self.run(move |db| {
            let expires = unix_micros().saturating_add(micros(ttl));
            let tx = db.begin_write()?;
            tx.open_table(BLOBS)?
                .insert(key.as_str(), encode_blob(expires, &value).as_slice())?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.pages.uncache(key);
        let key = key.to_owned();
        self.run(move |db| {
            let tx = db.begin_write()?;
            tx.open_table(BLOBS)?.remove(key.as_str())?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn take_once(&self, key: &str) -> Result<Option<Bytes>> {
        if let Some(value) = self.pages.take_cached(key) {
            return Ok(Some(value));
        }
        let key = key.to_owned();
        self.run(move |db| {
            let tx = db.begin_write()?;
            let taken = tx.open_table(BLOBS)?.remove(key.as_str())?.and_then(|v| {
                let bytes = v.value();
                blob_expiry(bytes)
                    .filter(|e| *e > unix_micros())
                    .map(|_| Bytes::copy_from_slice(&bytes[8..]))
            });
            tx.commit()?;
            Ok(taken)
        })
        .await
    }

    async fn generation(&self, scope: &str) -> Result<u64> {
        Ok(self.pages.current_generation(scope))
    }

    async fn bump_generation(&self, scope: &str) -> Result<u64> {
        Ok(self.pages.next_generation(scope))
    }

    /// Quotas are counted in this process's memory: a durable commit per vendor call cost a
    /// third of a single read. After a restart a quota starts whole; what the vendor said (a
    /// block) is in the file and is kept.
    async fn take(
        &self,
        bucket: &str,
        limit: RateLimit,
    ) -> Result<std::result::Result<QuotaLeft, NotYet>> {
        self.pages.take(bucket, limit).await
    }

    async fn block(&self, bucket: &str, duration: Duration) -> Result<()> {
        self.pages.set_block(bucket, duration);
        let bucket = bucket.to_owned();
        self.run(move |db| {
            let until = unix_micros().saturating_add(micros(duration));
            let mut tx = db.begin_write()?;
            tx.set_durability(Durability::None)?;
            {
                let mut blocks = tx.open_table(BLOCKS)?;
                let current = blocks.get(bucket.as_str())?.map(|v| v.value());
                if current.is_none_or(|c| c < until) {
                    blocks.insert(bucket.as_str(), until)?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn blocked_for(&self, bucket: &str) -> Result<Option<Duration>> {
        Ok(self.pages.block_left(bucket))
    }

    async fn claim(&self, key: &str, attempt: &Attempt<'_>) -> Result<Claim> {
        let key = key.to_owned();
        let fingerprint = attempt.fingerprint.to_owned();
        let note = Bytes::copy_from_slice(attempt.note);
        let (lease, keep) = (
            micros(attempt.lease),
            micros(attempt.keep.max(attempt.lease)),
        );
        self.run(move |db| {
            let now = unix_micros();
            let lease_until_us = now.saturating_add(lease);
            let tx = db.begin_write()?;
            let (claim, write) = {
                let mut records = tx.open_table(RECORDS)?;
                let (claim, stored) = match read_record(&records, &key, now)? {
                    Some(StoredRecord {
                        fingerprint,
                        state: RecordState::Done(record),
                        ..
                    }) => (
                        Claim::Done {
                            fingerprint,
                            record,
                        },
                        None,
                    ),
                    Some(StoredRecord {
                        fingerprint: held_by,
                        state:
                            RecordState::Claimed {
                                lease_until_us: held_until,
                                note: earlier,
                            },
                        expires_us,
                    }) => {
                        if held_until > now {
                            let retry_in = Duration::from_micros(held_until - now);
                            (
                                Claim::InFlight {
                                    fingerprint: held_by,
                                    retry_in,
                                },
                                None,
                            )
                        } else if held_by != fingerprint {
                            (
                                Claim::Unsettled {
                                    fingerprint: held_by,
                                },
                                None,
                            )
                        } else {
                            let stored = StoredRecord {
                                expires_us: expires_us.max(lease_until_us),
                                fingerprint,
                                state: RecordState::Claimed {
                                    lease_until_us,
                                    note: earlier.clone(),
                                },
                            };
                            (
                                Claim::Claimed {
                                    unsettled: Some(earlier),
                                },
                                Some(stored),
                            )
                        }
                    }
                    None => (
                        Claim::FRESH,
                        Some(StoredRecord {
                            expires_us: now.saturating_add(keep),
                            fingerprint,
                            state: RecordState::Claimed {
                                lease_until_us,
                                note,
                            },
                        }),
                    ),
                };
                if let Some(stored) = &stored {
                    records.insert(key.as_str(), stored.encode().as_slice())?;
                }
                (claim, stored.is_some())
            };
            if write {
                tx.commit()?;
            } else {
                tx.abort()?;
            }
            Ok(claim)
        })
        .await
    }

    async fn renew(&self, key: &str, fingerprint: &str, lease: Duration) -> Result<bool> {
        let key = key.to_owned();
        let fingerprint = fingerprint.to_owned();
        self.run(move |db| {
            let now = unix_micros();
            let until = now.saturating_add(micros(lease));
            set_lease(db, &key, &fingerprint, now, |held_until| {
                (held_until > now).then_some(until)
            })
        })
        .await
    }

    async fn unsettle(&self, key: &str, fingerprint: &str) -> Result<()> {
        let key = key.to_owned();
        let fingerprint = fingerprint.to_owned();
        self.run(move |db| {
            let now = unix_micros();
            set_lease(db, &key, &fingerprint, now, |_| Some(0)).map(|_| ())
        })
        .await
    }

    async fn complete(
        &self,
        key: &str,
        fingerprint: &str,
        record: Bytes,
        ttl: Duration,
    ) -> Result<()> {
        let key = key.to_owned();
        let fingerprint = fingerprint.to_owned();
        self.run(move |db| {
            let now = unix_micros();
            let tx = db.begin_write()?;
            {
                let mut records = tx.open_table(RECORDS)?;
                let taken = read_record(&records, &key, now)?
                    .is_some_and(|r| r.is_done() && r.fingerprint != fingerprint);
                if !taken {
                    let stored = StoredRecord {
                        expires_us: now.saturating_add(micros(ttl)),
                        fingerprint,
                        state: RecordState::Done(record),
                    };
                    records.insert(key.as_str(), stored.encode().as_slice())?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn release(&self, key: &str) -> Result<()> {
        let key = key.to_owned();
        self.run(move |db| {
            let now = unix_micros();
            let tx = db.begin_write()?;
            {
                let mut records = tx.open_table(RECORDS)?;
                if read_record(&records, &key, now)?.is_some_and(|r| !r.is_done()) {
                    records.remove(key.as_str())?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn append_log(
        &self,
        log: &str,
        bodies: Vec<Bytes>,
        retention: Duration,
    ) -> Result<Vec<LogId>> {
        let name = log_table_name(log);
        self.run(move |db| {
            let now = unix_millis();
            let tx = db.begin_write()?;
            let ids = {
                let mut table = tx.open_table(log_table(&name))?;
                let mut last = table.last()?.map(|(k, _)| {
                    let (ms, seq) = k.value();
                    LogId { ms, seq }
                });
                let mut ids = Vec::with_capacity(bodies.len());
                for body in &bodies {
                    let id = next_log_id(last, now);
                    table.insert((id.ms, id.seq), body.as_ref())?;
                    last = Some(id);
                    ids.push(id);
                }
                let floor = retention_floor(now, retention);
                table.retain_in(..(floor, 0), |_, _| false)?;
                ids
            };
            tx.commit()?;
            Ok(ids)
        })
        .await
    }

    async fn read_log(
        &self,
        log: &str,
        after: Option<LogId>,
        limit: usize,
    ) -> Result<Vec<LogEntry>> {
        let name = log_table_name(log);
        self.run(move |db| {
            let tx = db.begin_read()?;
            let Some(table) = open_log(&tx, &name)? else {
                return Ok(Vec::new());
            };
            let range = match after {
                Some(after) => table.range((
                    std::ops::Bound::Excluded((after.ms, after.seq)),
                    std::ops::Bound::Unbounded,
                ))?,
                None => table.range::<(u64, u64)>(..)?,
            };
            let mut entries = Vec::new();
            for item in range.take(limit) {
                let (k, v) = item?;
                entries.push(LogEntry {
                    id: log_id(k.value()),
                    body: Bytes::copy_from_slice(v.value()),
                });
            }
            Ok(entries)
        })
        .await
    }

    async fn last_log_id(&self, log: &str) -> Result<Option<LogId>> {
        let name = log_table_name(log);
        self.run(move |db| {
            let tx = db.begin_read()?;
            let Some(table) = open_log(&tx, &name)? else {
                return Ok(None);
            };
            Ok(table.last()?.map(|(k, _)| log_id(k.value())))
        })
        .await
    }

    async fn lease(&self, key: &str, holder: &str, ttl: Duration) -> Result<Option<u64>> {
        let key = key.to_owned();
        let holder = holder.to_owned();
        self.run(move |db| {
            let tx = db.begin_write()?;
            let granted = {
                let mut leases = tx.open_table(LEASES)?;
                let current = leases
                    .get(key.as_str())?
                    .and_then(|v| LeaseState::decode(v.value()));
                let granted = LeaseState::grant(current.as_ref(), &holder, unix_micros(), ttl);
                if let Some(state) = &granted {
                    leases.insert(key.as_str(), state.encode().as_slice())?;
                }
                granted
            };
            if granted.is_some() {
                tx.commit()?;
            } else {
                tx.abort()?;
            }
            Ok(granted.map(|s| s.token()))
        })
        .await
    }

    async fn release_lease(&self, key: &str, holder: &str) -> Result<()> {
        let key = key.to_owned();
        let holder = holder.to_owned();
        self.run(move |db| {
            let tx = db.begin_write()?;
            {
                let mut leases = tx.open_table(LEASES)?;
                let released = leases
                    .get(key.as_str())?
                    .and_then(|v| LeaseState::decode(v.value()))
                    .map(|s| s.released(&holder));
                if let Some(state) = released {
                    leases.insert(key.as_str(), state.encode().as_slice())?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }
}
