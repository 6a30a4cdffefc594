//! Idempotency records in the embedded file: how one is encoded (expiry, state, fingerprint,
//! then the finished answer, or the claim's lease and note), read, and its lease moved.

use bytes::Bytes;
use redb::{Database, ReadableTable};

use super::RECORDS;

/// An idempotency entry as stored: expiry, state, fingerprint, and the finished record or the
/// claim's lease and note.
pub(super) struct StoredRecord {
    pub(super) expires_us: u64,
    pub(super) fingerprint: String,
    pub(super) state: RecordState,
}

pub(super) enum RecordState {
    /// Claimed: in flight until `lease_until_us`, unsettled after it.
    Claimed {
        lease_until_us: u64,
        note: Bytes,
    },
    Done(Bytes),
}

/// The state byte: files written before leases were renewable hold `IN_FLIGHT_UNLEASED` (read
/// as a lease already over, with no note).
const IN_FLIGHT_UNLEASED: u8 = 0;
const DONE: u8 = 1;
const IN_FLIGHT: u8 = 2;

impl StoredRecord {
    pub(super) fn encode(&self) -> Vec<u8> {
        let fp = self.fingerprint.as_bytes();
        let mut out = Vec::with_capacity(21 + fp.len());
        out.extend_from_slice(&self.expires_us.to_le_bytes());
        let state = match &self.state {
            RecordState::Claimed { .. } => IN_FLIGHT,
            RecordState::Done(_) => DONE,
        };
        out.push(state);
        out.extend_from_slice(&u32::try_from(fp.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(fp);
        match &self.state {
            RecordState::Claimed {
                lease_until_us,
                note,
            } => {
                out.extend_from_slice(&lease_until_us.to_le_bytes());
                out.extend_from_slice(note);
            }
            RecordState::Done(record) => out.extend_from_slice(record),
        }
        out
    }

    pub(super) fn decode(bytes: &[u8]) -> Option<StoredRecord> {
        let expires_us = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
        let state = *bytes.get(8)?;
        let fp_len = u32::from_le_bytes(bytes.get(9..13)?.try_into().ok()?) as usize;
        let fingerprint = String::from_utf8(bytes.get(13..13 + fp_len)?.to_vec()).ok()?;
        let rest = bytes.get(13 + fp_len..)?;
        let state = match state {
            DONE => RecordState::Done(Bytes::copy_from_slice(rest)),
            IN_FLIGHT => RecordState::Claimed {
                lease_until_us: u64::from_le_bytes(rest.get(..8)?.try_into().ok()?),
                note: Bytes::copy_from_slice(rest.get(8..)?),
            },
            IN_FLIGHT_UNLEASED => RecordState::Claimed {
                lease_until_us: 0,
                note: Bytes::new(),
            },
            _ => return None,
        };
        Some(StoredRecord {
            expires_us,
            fingerprint,
            state,
        })
    }

    pub(super) fn is_done(&self) -> bool {
        matches!(self.state, RecordState::Done(_))
    }
}

/// Moves the lease of `key`'s claim held by `fingerprint` to what `until` makes of its current
/// end (`None`: leave it); whether it moved.
pub(super) fn set_lease(
    db: &Database,
    key: &str,
    fingerprint: &str,
    now: u64,
    until: impl FnOnce(u64) -> Option<u64>,
) -> std::result::Result<bool, redb::Error> {
    let tx = db.begin_write()?;
    let moved = {
        let mut records = tx.open_table(RECORDS)?;
        match read_record(&records, key, now)? {
            Some(StoredRecord {
                expires_us,
                fingerprint: held_by,
                state:
                    RecordState::Claimed {
                        lease_until_us,
                        note,
                    },
            }) if held_by == fingerprint => match until(lease_until_us) {
                Some(lease_until_us) => {
                    let stored = StoredRecord {
                        expires_us: expires_us.max(lease_until_us),
                        fingerprint: held_by,
                        state: RecordState::Claimed {
                            lease_until_us,
                            note,
                        },
                    };
                    records.insert(key, stored.encode().as_slice())?;
                    true
                }
                None => false,
            },
            _ => false,
        }
    };
    if moved {
        tx.commit()?;
    } else {
        tx.abort()?;
    }
    Ok(moved)
}

pub(super) fn read_record(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
    now: u64,
) -> std::result::Result<Option<StoredRecord>, redb::Error> {
    Ok(table
        .get(key)?
        .and_then(|v| StoredRecord::decode(v.value()))
        .filter(|r| r.expires_us > now))
}
