//! Replies: the text's rules, the send, and a keyed reply delivered exactly once whatever
//! fails on the way (the key's record is [`crate::idempotency`]'s).

use std::sync::Arc;
use std::time::Duration;

use switchboard_core::{
    Direction, Error, ErrorKind, Message, MessageQuery, NewMessage, Provider, UpstreamPage, ids,
};

use switchboard_feed::GatewayWrite;

use super::writes::record_write;
use crate::auth::Caller;
use crate::idempotency::{self, Begin, Earlier};
use crate::state::AppState;

/// The longest reply, in characters (the spec's `maxLength`).
pub const MAX_REPLY_CHARS: usize = 10_000;

/// A reply's text: 1 to [`MAX_REPLY_CHARS`] characters, not only whitespace, and no control
/// characters but newline and tab.
fn check_reply_text(text: &str) -> Result<(), Error> {
    let length = text.chars().count();
    if text.trim().is_empty() {
        return Err(Error::invalid_parameter("text", "`text` must not be empty"));
    }
    if length > MAX_REPLY_CHARS {
        return Err(Error::invalid_parameter(
            "text",
            format!("`text` holds at most {MAX_REPLY_CHARS} characters (this one has {length})"),
        ));
    }
    // Bidi embeddings, overrides and isolates can make a message read other than it is
    // (Trojan Source, CVE-2021-42574): refused. Line and paragraph separators (U+2028/9) are
    // line breaks and are sent as they are.
    if let Some(c) = text.chars().find(|c| is_bidi_control(*c)) {
        return Err(Error::invalid_parameter(
            "text",
            format!(
                "`text` must not hold bidirectional embedding, override or isolate controls (found U+{:04X})",
                u32::from(c)
            ),
        ));
    }
    if let Some(c) = text
        .chars()
        .find(|c| c.is_control() && *c != '\n' && *c != '\t')
    {
        return Err(Error::invalid_parameter(
            "text",
            format!(
                "`text` must not hold control characters other than newline and tab (found U+{:04X})",
                u32::from(c)
            ),
        ));
    }
    Ok(())
}

/// U+202A–U+202E (embeddings, overrides) and U+2066–U+2069 (isolates).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A reply checked and routed before anything is sent: its conversation's connection, the
/// vendor's id of the conversation, the text, and the sender as the vendor's agent id.
struct Outgoing {
    provider: Arc<dyn Provider>,
    conversation: String,
    text: String,
    sender: Option<String>,
}

/// Checks a reply's text and sender and finds its conversation's connection; sends nothing.
fn prepare(
    state: &AppState,
    caller: &Caller,
    id: &str,
    text: String,
    sender_id: Option<&str>,
) -> Result<Outgoing, Error> {
    check_reply_text(&text)?;
    if sender_id.is_some_and(|s| ids::split(s).is_none()) {
        return Err(Error::invalid_parameter(
            "sender_id",
            "`sender_id` must be an agent id like `connection:native_id`",
        ));
    }
    let (provider, native) = state.resolve(caller, id, "conversation")?;
    let sender = sender_id
        .map(|s| {
            ids::split(s)
                .filter(|(connection, _)| *connection == provider.info().connection)
                .map(|(_, native)| native.to_owned())
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::Unprocessable,
                        "`sender_id` must be an agent id of the conversation's connection",
                    )
                    .with_code(switchboard_core::codes::INVALID_SENDER)
                    .with_parameter("sender_id")
                })
        })
        .transpose()?;
    Ok(Outgoing {
        provider: provider.clone(),
        conversation: native.to_owned(),
        text,
        sender,
    })
}

/// Sends `reply` (with `idempotency_key` for vendors that deduplicate) and records the write.
async fn send(
    state: &AppState,
    caller: &Caller,
    reply: Outgoing,
    idempotency_key: Option<String>,
) -> Result<Message, Error> {
    let mut message = reply
        .provider
        .send_message(
            &reply.conversation,
            NewMessage {
                text: reply.text,
                sender: reply.sender,
                idempotency_key,
            },
        )
        .await?;
    message.raw = None;
    record_write(state, caller, GatewayWrite::Reply(&message)).await;
    Ok(message)
}

/// What a reply came to: the message as stored, and whether an earlier request with the same
/// `Idempotency-Key` sent it (this one sent nothing).
#[derive(Debug)]
pub struct Reply {
    /// The message.
    pub message: Message,
    /// Whether it is the answer of an earlier request with the same key.
    pub replayed: bool,
}

/// A reply that failed, and whether the failure is the one an earlier request with the same
/// `Idempotency-Key` met (its outcome unknown, this one sent nothing).
#[derive(Debug)]
pub struct ReplyError {
    /// What went wrong.
    pub error: Error,
    /// Whether it is the answer of an earlier request with the same key.
    pub replayed: bool,
}

impl From<Error> for ReplyError {
    fn from(error: Error) -> ReplyError {
        ReplyError {
            error,
            replayed: false,
        }
    }
}

/// How far a vendor's clock may lag the gateway's: an earlier attempt's message is looked for
/// from this long before the attempt began.
const CLOCK_SLACK: Duration = Duration::from_secs(120);

/// `POST /v1/conversations/{id}/messages` with its `Idempotency-Key`: the reply is delivered
/// once per key, whatever fails on the way (see [`idempotency`]); a repeat gets the first
/// outcome. The keyed work runs to its end even if the caller goes away, so its outcome is
/// always recorded.
pub async fn reply(
    state: &Arc<AppState>,
    caller: &Arc<Caller>,
    id: &str,
    text: String,
    sender_id: Option<String>,
    idempotency_key: Option<String>,
) -> Result<Reply, ReplyError> {
    // Checked before the key is claimed: a request refused before it reaches the vendor (bad
    // text, bad sender, unknown conversation) does not use its key.
    let outgoing = prepare(state, caller, id, text, sender_id.as_deref())?;
    let Some(key) = idempotency_key else {
        let message = send(state, caller, outgoing, None).await?;
        return Ok(Reply {
            message,
            replayed: false,
        });
    };
    let fingerprint =
        idempotency::fingerprint(&[id, &outgoing.text, sender_id.as_deref().unwrap_or("")]);
    let claim =
        match idempotency::begin(state.store.as_ref(), &caller.name, &key, fingerprint).await? {
            Begin::Replay(first) => {
                return (*first)
                    .map(|message| Reply {
                        message,
                        replayed: true,
                    })
                    .map_err(|error| ReplyError {
                        error,
                        replayed: true,
                    });
            }
            Begin::Fresh(claim) => claim,
        };
    // Vendors that dedupe see a key scoped to the caller, so two callers' keys never collide.
    let vendor_key = idempotency::fingerprint(&[&caller.name, &key]);
    let (state, caller) = (state.clone(), caller.clone());
    let ledger = switchboard_core::quota_state::Ledger::current();
    let work = tokio::spawn(switchboard_core::quota_state::Ledger::carry(
        ledger,
        async move {
            let store = state.store.as_ref();
            let earlier = claim.earlier();
            let delivered = claim
                .hold(
                    store,
                    deliver(&state, &caller, outgoing, vendor_key, earlier),
                )
                .await;
            let replayed = matches!(delivered, Ok(Delivered { earlier: true, .. }));
            let result = idempotency::finish(store, claim, delivered.map(|d| d.message)).await;
            (result, replayed)
        },
    ));
    let (result, replayed) = work
        .await
        .map_err(|e| Error::new(ErrorKind::Unexpected, "the reply's work failed").with_source(e))?;
    result
        .map(|message| Reply { message, replayed })
        .map_err(|error| ReplyError { error, replayed })
}

/// A keyed reply as delivered: its message, and whether an earlier attempt had sent it.
struct Delivered {
    message: Message,
    earlier: bool,
}

/// Sends a keyed reply, after finding out whether an `earlier` attempt whose outcome is
/// unknown sent it already: a vendor that deduplicates replies by key is simply sent the same
/// key again; for the others the conversation's newest messages are searched for it.
async fn deliver(
    state: &AppState,
    caller: &Caller,
    reply: Outgoing,
    vendor_key: String,
    earlier: Option<Earlier>,
) -> Result<Delivered, Error> {
    if let Some(earlier) = earlier
        && !reply.provider.info().capabilities.idempotent_replies
        && let Some(mut message) = find_earlier_reply(&reply, earlier).await?
    {
        message.raw = None;
        record_write(state, caller, GatewayWrite::Reply(&message)).await;
        return Ok(Delivered {
            message,
            earlier: true,
        });
    }
    let message = send(state, caller, reply, Some(vendor_key)).await?;
    Ok(Delivered {
        message,
        earlier: false,
    })
}

/// The reply an earlier attempt sent, if the conversation holds it: the newest outbound message
/// with the same text (and sender, when one was named) since the attempt began. Listing fails
/// as `unsent`: this request has sent nothing.
async fn find_earlier_reply(reply: &Outgoing, earlier: Earlier) -> Result<Option<Message>, Error> {
    let since = earlier
        .began_at
        .map(|t| t - chrono::Duration::from_std(CLOCK_SLACK).unwrap_or_default());
    let query = MessageQuery {
        since,
        page_size: reply
            .provider
            .info()
            .capabilities
            .max_message_page_size
            .min(50),
        include_raw: false,
    };
    let newest = reply
        .provider
        .list_messages(&reply.conversation, &query, &UpstreamPage::First)
        .await
        .map_err(Error::unsent)?;
    let text = reply.text.trim();
    let sender = reply.sender.as_deref();
    Ok(newest.items.into_iter().find(|m| {
        m.direction == Direction::Outbound
            && m.text.trim() == text
            && since.is_none_or(|t| m.created_at >= t)
            && sender.is_none_or(|s| m.sender.as_ref().is_some_and(|a| a.native_id == s))
    }))
}
