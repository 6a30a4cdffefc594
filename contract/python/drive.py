"""Drives a running gateway through the Python client generated from openapi/openapi.json
(openapi-python-client): the journey of a person working the inbox.

    SWITCHBOARD_URL=http://127.0.0.1:8080 SWITCHBOARD_TOKEN=demo-token python drive.py

It writes to one Zipchat web conversation in bot mode (takes it over, replies, hands it back),
so point it at the demo, never at real vendors.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from datetime import datetime
from http import HTTPStatus
from typing import Any, TypeVar

import httpx

from switchboard_client import AuthenticatedClient
from switchboard_client.api.connections import list_agents
from switchboard_client.api.events import list_events
from switchboard_client.api.webhooks import list_webhooks
from switchboard_client.api.conversations import (
    get_conversation,
    list_conversations,
    list_messages,
    reply_to_conversation,
    set_assignment,
    set_status,
)
from switchboard_client.models import (
    AgentPage,
    AssignmentRequest,
    Author,
    Channel,
    Conversation,
    ConversationPage,
    Direction,
    Event,
    EventList,
    EventType,
    Message,
    MessagePage,
    Mode,
    Operation,
    Problem,
    ProblemCode,
    ProviderKind,
    ReplyRequest,
    Status,
    StatusRequest,
    WebhookList,
)
from switchboard_client.types import UNSET, Response, Unset

T = TypeVar("T")

BASE_URL = os.environ.get("SWITCHBOARD_URL", "http://127.0.0.1:8080")
TOKEN = os.environ.get("SWITCHBOARD_TOKEN", "demo-token")


class Journey:
    """Counts checks and prints each one."""

    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, ok: bool, what: str, detail: Any = None) -> None:
        if ok:
            self.passed += 1
            print(f"  ok    {what}")
        else:
            self.failed += 1
            print(f"  FAIL  {what}" + ("" if detail is None else f": {detail!r}"))

    def must(self, response: Response[T | Problem], kind: type[T], what: str, quiet: bool = False) -> T:
        """The typed success body, or the end of the run: every later step needs it."""
        parsed = response.parsed
        if not isinstance(parsed, kind):
            self.check(False, what, (response.status_code, parsed))
            raise RuntimeError(f"{what}: cannot go on without it")
        if not quiet:
            self.check(True, what)
        return parsed

    def expect_problem(
        self,
        what: str,
        response: Response[Any],
        status: HTTPStatus,
        code: ProblemCode,
        **fields: object,
    ) -> None:
        """An error answered through the client's typed error path: a `Problem` with these fields."""
        problem = response.parsed
        content_type = response.headers.get("content-type", "")
        self.check(
            isinstance(problem, Problem)
            and response.status_code == status
            and problem.status == status
            and problem.code == code
            and content_type.startswith("application/problem+json")
            and all(getattr(problem, name) == value for name, value in fields.items()),
            f"{what} -> {int(status)} {code.value}",
            (response.status_code, content_type, problem),
        )


def unset_to_none(value: T | None | Unset) -> T | None:
    return None if isinstance(value, Unset) else value


def page_the_inbox(j: Journey, client: AuthenticatedClient) -> None:
    seen: set[str] = set()
    duplicates = out_of_order = partial = pages = 0
    previous: datetime | None = None
    cursor: str | Unset = UNSET
    last_cursor: str | None | Unset = UNSET
    while True:
        page = j.must(
            list_conversations.sync_detailed(client=client, limit=100, cursor=cursor),
            ConversationPage,
            f"inbox page {pages + 1}",
            quiet=True,
        )
        pages += 1
        partial += len(page.partial)
        for conversation in page.data:
            duplicates += conversation.id in seen
            seen.add(conversation.id)
            if previous is not None and conversation.last_activity_at > previous:
                out_of_order += 1
            previous = conversation.last_activity_at
        last_cursor = page.next_cursor
        if not isinstance(page.next_cursor, str):
            break
        cursor = page.next_cursor
        if pages > 200:
            raise RuntimeError("the inbox never ends")
    j.check(len(seen) > 300, f"the whole inbox in {pages} pages: {len(seen)} conversations")
    j.check(duplicates == 0, "every conversation once", duplicates)
    j.check(out_of_order == 0, "latest activity first", out_of_order)
    j.check(partial == 0, "no connection failed", partial)
    j.check(last_cursor is None, "next_cursor is null on the last page", last_cursor)


def pick_conversation(j: Journey, client: AuthenticatedClient) -> Conversation:
    # Web has no 24-hour reply window; a bot-answered one shows the take-over.
    page = j.must(
        list_conversations.sync_detailed(
            client=client,
            connection=["shop-zipchat"],
            provider=[ProviderKind.ZIPCHAT],
            channel=[Channel.WEB],
            mode=Mode.AI,
            limit=1,
        ),
        ConversationPage,
        "filter the inbox: zipchat, web, bot mode",
    )
    if not page.data:
        raise RuntimeError("no Zipchat web conversation in bot mode")
    first = page.data[0]
    j.check(
        first.connection == "shop-zipchat"
        and first.provider == ProviderKind.ZIPCHAT
        and first.channel == Channel.WEB
        and first.mode == Mode.AI,
        f"the filters hold for {first.id}",
        first,
    )
    return first


def read_events(j: Journey, client: AuthenticatedClient, after: str, what: str) -> tuple[list[Event], str]:
    """Pages `GET /v1/events` from `after` to the end: every event once, in log order."""
    events: list[Event] = []
    cursor = after
    for pages in range(1000):
        page = j.must(
            list_events.sync_detailed(client=client, after=cursor, limit=500),
            EventList,
            f"{what}: events page {pages + 1}",
            quiet=True,
        )
        if not page.data:
            j.check(page.next_cursor == cursor, f"{what}: an empty page keeps the cursor", page.next_cursor)
            return events, cursor
        events.extend(page.data)
        cursor = page.next_cursor
    raise RuntimeError("the event log never ends")


def follow_stream(j: Journey, last_event_id: str, stop_at: str) -> list[str]:
    """The ids `/v1/events/stream` sends after `last_event_id`, up to `stop_at`."""
    ids: list[str] = []
    headers = {"Authorization": f"Bearer {TOKEN}", "Last-Event-ID": last_event_id}
    with httpx.stream("GET", f"{BASE_URL}/v1/events/stream", headers=headers, timeout=30.0) as response:
        j.check(
            response.status_code == 200 and response.headers.get("content-type", "").startswith("text/event-stream"),
            "the stream answers text/event-stream",
            response.status_code,
        )
        fields: dict[str, str] = {}
        for line in response.iter_lines():
            if line:
                name, _, value = line.partition(":")
                if name:
                    fields[name] = value.lstrip()
                continue
            if "data" in fields:
                event = Event.from_dict(json.loads(fields["data"]))
                if fields.get("id") != event.id or fields.get("event") != event.type_.value:
                    j.check(False, f"message {event.id}: its id and event are the event's", fields)
                ids.append(event.id)
                if event.id == stop_at:
                    return ids
            fields = {}
    return ids


def journey(j: Journey, client: AuthenticatedClient) -> None:
    page_the_inbox(j, client)

    picked = pick_conversation(j, client)
    cid = picked.id
    # Where the change feed stands before this journey's writes.
    _, before = read_events(j, client, "0-0", "the change feed so far")

    conversation = j.must(get_conversation.sync_detailed(cid, client=client), Conversation, f"read {cid}")
    j.check(
        conversation.id == cid and conversation.native_id == picked.native_id,
        "the same conversation",
        conversation,
    )
    messages = j.must(
        list_messages.sync_detailed(cid, client=client, limit=20),
        MessagePage,
        "read its messages",
    )
    j.check(len(messages.data) > 0, f"{len(messages.data)} messages")
    j.check(all(m.conversation_id == cid for m in messages.data), "each message belongs to it")

    agents = j.must(
        list_agents.sync_detailed("shop-zipchat", client=client),
        AgentPage,
        "list shop-zipchat's agents",
    )
    if not agents.data:
        raise RuntimeError("shop-zipchat has no agents")
    agent = agents.data[0]
    j.check(agent.connection == "shop-zipchat" and agent.id.startswith("shop-zipchat:"), f"agent {agent.id}", agent)

    j.expect_problem(
        "reply while the bot answers",
        reply_to_conversation.sync_detailed(
            cid,
            client=client,
            body=ReplyRequest(text="Not yet: the bot is still in charge."),
            idempotency_key=str(uuid.uuid4()),
        ),
        HTTPStatus.CONFLICT,
        ProblemCode.CONVERSATION_IN_AI_MODE,
    )

    taken = j.must(
        set_assignment.sync_detailed(cid, client=client, body=AssignmentRequest(assignee_id=agent.id)),
        Conversation,
        f"take over: assign to {agent.id}",
    )
    assignee = unset_to_none(taken.assignee)
    j.check(assignee is not None and assignee.id == agent.id and taken.mode == Mode.HUMAN, "assigned, a person answers", taken)

    text = f"Hi, a person here (generated Python client {uuid.uuid4().hex[:8]})."
    sent = reply_to_conversation.sync_detailed(
        cid,
        client=client,
        body=ReplyRequest(text=text),
        idempotency_key=str(uuid.uuid4()),
    )
    reply = j.must(sent, Message, "reply with an Idempotency-Key")
    j.check(sent.status_code == HTTPStatus.CREATED, "201 Created", sent.status_code)
    j.check(
        reply.text == text
        and reply.author == Author.AGENT
        and reply.direction == Direction.OUTBOUND
        and reply.conversation_id == cid,
        "the reply as stored",
        reply,
    )

    latest = j.must(
        list_messages.sync_detailed(cid, client=client, limit=5),
        MessagePage,
        "read the messages again",
    )
    newest = latest.data[0] if latest.data else None
    j.check(newest is not None and newest.id == reply.id and newest.text == text, "the reply is the newest message", newest)

    back = j.must(
        set_assignment.sync_detailed(cid, client=client, body=AssignmentRequest(assignee_id=None)),
        Conversation,
        "hand back to the bot",
    )
    j.check(unset_to_none(back.assignee) is None and back.mode == Mode.AI, "unassigned, the bot answers", back)

    # The journey's own writes are in the change feed, stamped with who made them.
    events, _ = read_events(j, client, before, "the change feed since")
    j.check(len({e.id for e in events}) == len(events), "every event once", len(events))
    mine = [
        e
        for e in events
        if e.conversation_id == cid and not isinstance(e.performed_by, Unset) and e.performed_by.client == "demo"
    ]
    replied = next(
        (
            e
            for e in mine
            if e.type_ == EventType.MESSAGE_CREATED
            and not isinstance(e.data.message, Unset)
            and e.data.message.id == reply.id
        ),
        None,
    )
    j.check(replied is not None, "the reply is a message.created event performed by this client", mine)
    j.check(
        any(
            e.type_ == EventType.CONVERSATION_UPDATED and not isinstance(e.changed, Unset) and "assignee" in e.changed
            for e in mine
        ),
        "the take-over is a conversation.updated event naming `assignee`",
        mine,
    )
    if replied is not None:
        streamed = follow_stream(j, before, replied.id)
        up_to_reply = [e.id for e in events[: [e.id for e in events].index(replied.id) + 1]]
        j.check(streamed == up_to_reply, "the stream, after Last-Event-ID, gives the same events in the same order", (len(streamed), len(up_to_reply)))
    hooks = j.must(list_webhooks.sync_detailed(client=client), WebhookList, "list the webhook endpoints (admin scope)")
    j.check(isinstance(hooks.data, list), f"{len(hooks.data)} webhook endpoints")
    j.expect_problem(
        "read the change feed past its retention",
        list_events.sync_detailed(client=client, after="1000-0"),
        HTTPStatus.GONE,
        ProblemCode.CURSOR_EXPIRED,
    )
    j.expect_problem(
        "read the change feed with a malformed cursor",
        list_events.sync_detailed(client=client, after="0-x"),
        HTTPStatus.BAD_REQUEST,
        ProblemCode.INVALID_CURSOR,
    )

    j.expect_problem(
        "read an unknown conversation",
        get_conversation.sync_detailed("shop-zipchat:999999999", client=client),
        HTTPStatus.NOT_FOUND,
        ProblemCode.NOT_FOUND,
        connection="shop-zipchat",
    )
    j.expect_problem(
        "set the status on Zipchat",
        set_status.sync_detailed(cid, client=client, body=StatusRequest(status=Status.RESOLVED)),
        HTTPStatus.NOT_IMPLEMENTED,
        ProblemCode.UNSUPPORTED_OPERATION,
        operation=Operation.SET_STATUS,
        connection="shop-zipchat",
    )
    j.expect_problem(
        "list the agents of sms (Octopush)",
        list_agents.sync_detailed("sms", client=client),
        HTTPStatus.NOT_IMPLEMENTED,
        ProblemCode.UNSUPPORTED_OPERATION,
        operation=Operation.LIST_AGENTS,
        connection="sms",
    )


def main() -> int:
    print(f"Python client (openapi-python-client) against {BASE_URL}")
    j = Journey()
    # An undocumented status raises instead of passing silently as `None`.
    with AuthenticatedClient(base_url=BASE_URL, token=TOKEN, raise_on_unexpected_status=True, timeout=httpx.Timeout(30.0)) as client:
        try:
            journey(j, client)
        except Exception as e:  # noqa: BLE001 - any failure ends the journey and is reported
            j.check(False, f"{type(e).__name__}: {e}")
    print(f"python: {j.passed} passed, {j.failed} failed")
    return 0 if j.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
