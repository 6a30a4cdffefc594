//! Writes routed to the vendor that owns the conversation: take over or hand back, set status;
//! each accepted write is recorded in the change feed, stamped with its caller.

use switchboard_core::{Assignment, Conversation, Error, ErrorKind, Status, ids};

use switchboard_feed::GatewayWrite;

use crate::auth::Caller;
use crate::state::AppState;

/// `PUT /v1/conversations/{id}/assignment`: an agent takes over, or null hands back.
pub async fn set_assignment(
    state: &AppState,
    caller: &Caller,
    id: &str,
    assignee_id: Option<&str>,
) -> Result<Conversation, Error> {
    let (provider, native) = state.resolve(caller, id, "conversation")?;
    let assignment = match assignee_id {
        None => Assignment::Unassigned,
        Some(agent) => {
            let (connection, agent_native) = ids::split(agent).ok_or_else(|| {
                Error::invalid_parameter(
                    "assignee_id",
                    "`assignee_id` must be an agent id like `connection:native_id`, or null",
                )
            })?;
            if connection != provider.info().connection {
                return Err(Error::new(
                    ErrorKind::Unprocessable,
                    "the agent belongs to another connection than the conversation",
                )
                .with_code(switchboard_core::codes::INVALID_ASSIGNEE)
                .with_parameter("assignee_id"));
            }
            Assignment::Agent(agent_native.to_owned())
        }
    };
    let mut conversation = provider.set_assignment(native, assignment).await?;
    conversation.raw = None;
    record_write(state, caller, GatewayWrite::Assignment(&conversation)).await;
    Ok(conversation)
}

/// `PUT /v1/conversations/{id}/status`.
pub async fn set_status(
    state: &AppState,
    caller: &Caller,
    id: &str,
    status: Status,
) -> Result<Conversation, Error> {
    let (provider, native) = state.resolve(caller, id, "conversation")?;
    let mut conversation = provider.set_status(native, status).await?;
    conversation.raw = None;
    record_write(state, caller, GatewayWrite::Status(&conversation)).await;
    Ok(conversation)
}

/// Appends a write the vendor accepted to the change feed, stamped with the caller; a failure is
/// logged and never fails the write (the poller then reports the change, without `performed_by`).
pub(crate) async fn record_write(state: &AppState, caller: &Caller, write: GatewayWrite<'_>) {
    if let Err(e) = state.feed.record_write(&caller.name, write).await {
        tracing::warn!(error = %e, "the change feed could not record a gateway write");
    }
}
