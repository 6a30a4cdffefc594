// Drives a running gateway through the TypeScript client generated from openapi/openapi.json
// (openapi-typescript types + openapi-fetch): the journey of a person working the inbox.
//
//   SWITCHBOARD_URL=http://127.0.0.1:8080 SWITCHBOARD_TOKEN=demo-token npx tsx drive.ts
//
// It writes to one Zipchat web conversation in bot mode (takes it over, replies, hands it back),
// so point it at the demo, never at real vendors.

import { randomUUID } from "node:crypto";
import createClient from "openapi-fetch";
import type { components, paths } from "./generated/schema.js";

type Problem = components["schemas"]["Problem"];
type Conversation = components["schemas"]["Conversation"];
type FeedEvent = components["schemas"]["Event"];
/** One message of `/v1/events/stream`: `id`, `event` (the type) and `data` (an Event as JSON). */
type StreamMessage = components["schemas"]["EventStreamMessage"];

const baseUrl = process.env.SWITCHBOARD_URL ?? "http://127.0.0.1:8080";
const token = process.env.SWITCHBOARD_TOKEN ?? "demo-token";
const client = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${token}` } });

let passed = 0;
let failed = 0;

function check(ok: boolean, what: string, detail?: unknown): void {
  if (ok) {
    passed += 1;
    console.log(`  ok    ${what}`);
  } else {
    failed += 1;
    console.log(`  FAIL  ${what}${detail === undefined ? "" : `: ${JSON.stringify(detail)}`}`);
  }
}

/** The success body, or the end of the run: every later step needs it. */
function must<T>(
  data: T | undefined,
  error: Problem | undefined,
  response: Response,
  what: string,
  quiet = false,
): T {
  if (data === undefined) {
    check(false, what, { status: response.status, error });
    throw new Error(`${what}: cannot go on without it`);
  }
  if (!quiet) check(true, what);
  return data;
}

/** An error answered through the client's typed error path, as problem+json with these fields. */
function expectProblem(
  what: string,
  result: { data?: unknown; error?: Problem; response: Response },
  status: number,
  expected: Partial<Problem>,
): void {
  const { error, response } = result;
  const contentType = response.headers.get("content-type") ?? "";
  const mismatches = Object.entries(expected).filter(
    ([key, value]) => error?.[key as keyof Problem] !== value,
  );
  check(
    result.data === undefined &&
      error !== undefined &&
      response.status === status &&
      error.status === status &&
      contentType.startsWith("application/problem+json") &&
      mismatches.length === 0,
    `${what} -> ${status} ${expected.code ?? ""}`,
    { status: response.status, contentType, error },
  );
}

async function pageTheInbox(): Promise<void> {
  const seen = new Set<string>();
  let duplicates = 0;
  let outOfOrder = 0;
  let partial = 0;
  let pages = 0;
  let previous: string | undefined;
  let cursor: string | undefined;
  let lastCursor: string | null | undefined;
  do {
    const { data, error, response } = await client.GET("/v1/conversations", {
      params: { query: cursor === undefined ? { limit: 100 } : { limit: 100, cursor } },
    });
    const page = must(data, error, response, `inbox page ${pages + 1}`, true);
    pages += 1;
    partial += page.partial.length;
    for (const conversation of page.data) {
      if (seen.has(conversation.id)) duplicates += 1;
      seen.add(conversation.id);
      if (previous !== undefined && Date.parse(conversation.last_activity_at) > Date.parse(previous)) {
        outOfOrder += 1;
      }
      previous = conversation.last_activity_at;
    }
    lastCursor = page.next_cursor;
    cursor = page.next_cursor ?? undefined;
    if (pages > 200) throw new Error("the inbox never ends");
  } while (cursor !== undefined);
  check(seen.size > 300, `the whole inbox in ${pages} pages: ${seen.size} conversations`);
  check(duplicates === 0, "every conversation once", { duplicates });
  check(outOfOrder === 0, "latest activity first", { outOfOrder });
  check(partial === 0, "no connection failed", { partial });
  check(lastCursor === null, "next_cursor is null on the last page", { lastCursor });
}

async function pickConversation(): Promise<Conversation> {
  // Web has no 24-hour reply window; a bot-answered one shows the take-over.
  const { data, error, response } = await client.GET("/v1/conversations", {
    params: {
      query: { connection: ["shop-zipchat"], provider: ["zipchat"], channel: ["web"], mode: "ai", limit: 1 },
    },
  });
  const page = must(data, error, response, "filter the inbox: zipchat, web, bot mode");
  const first = page.data[0];
  if (first === undefined) throw new Error("no Zipchat web conversation in bot mode");
  check(
    first.connection === "shop-zipchat" && first.provider === "zipchat" && first.channel === "web" && first.mode === "ai",
    `the filters hold for ${first.id}`,
    first,
  );
  return first;
}

/** Pages `GET /v1/events` from `after` to the end; every event once, in log order. */
async function readEvents(after: string, what: string): Promise<{ events: FeedEvent[]; next: string }> {
  const events: FeedEvent[] = [];
  let cursor = after;
  for (let pages = 0; pages < 1000; pages += 1) {
    const { data, error, response } = await client.GET("/v1/events", { params: { query: { after: cursor, limit: 500 } } });
    const page = must(data, error, response, `${what}: events page ${pages + 1}`, true);
    if (page.data.length === 0) {
      check(page.next_cursor === cursor, `${what}: an empty page keeps the cursor`, page.next_cursor);
      return { events, next: cursor };
    }
    events.push(...page.data);
    cursor = page.next_cursor;
  }
  throw new Error("the event log never ends");
}

/**
 * Reads Server-Sent Events from `/v1/events/stream` resuming after `lastEventId`, until `done`.
 * It opens the stream the way a browser's EventSource must, with a single-use ticket minted
 * through the typed client instead of the Authorization header.
 */
async function followStream(lastEventId: string, done: (e: FeedEvent) => boolean): Promise<FeedEvent[]> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 30_000);
  const seen: FeedEvent[] = [];
  try {
    const minted = await client.POST("/v1/events/tickets", { body: {} });
    const { ticket } = must(minted.data, minted.error, minted.response, "a stream ticket (POST /v1/events/tickets)");
    const query = new URLSearchParams({ ticket, after: lastEventId });
    const response = await fetch(`${baseUrl}/v1/events/stream?${query}`, { signal: abort.signal });
    check(
      response.status === 200 && (response.headers.get("content-type") ?? "").startsWith("text/event-stream"),
      "the stream answers text/event-stream",
      response.status,
    );
    if (response.body === null) return seen;
    const decoder = new TextDecoder();
    let pending = "";
    for await (const chunk of response.body) {
      pending += decoder.decode(chunk as Uint8Array, { stream: true });
      let end: number;
      while ((end = pending.indexOf("\n\n")) >= 0) {
        const block = pending.slice(0, end);
        pending = pending.slice(end + 2);
        const fields = new Map<string, string>();
        for (const line of block.split("\n")) {
          const colon = line.indexOf(":");
          if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1).trimStart());
        }
        if (!fields.has("data")) continue; // a keep-alive comment
        const message = Object.fromEntries(fields) as StreamMessage;
        if (message.event === "error") {
          check(false, "the stream goes on", message.data);
          return seen;
        }
        const event = JSON.parse(message.data) as FeedEvent;
        if (message.id !== event.id || message.event !== event.type) {
          check(false, "each message's id and event are the event's", block);
        }
        seen.push(event);
        if (done(event)) return seen;
      }
    }
  } catch (e) {
    check(false, "the stream delivers", e instanceof Error ? e.message : String(e));
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  return seen;
}

async function main(): Promise<void> {
  console.log(`TypeScript client (openapi-typescript + openapi-fetch) against ${baseUrl}`);

  await pageTheInbox();

  const picked = await pickConversation();
  const id = picked.id;
  // Where the change feed stands before this journey's writes.
  const before = await readEvents("0-0", "the change feed so far");

  {
    const { data, error, response } = await client.GET("/v1/conversations/{id}", { params: { path: { id } } });
    const conversation = must(data, error, response, `read ${id}`);
    check(conversation.id === id && conversation.native_id === picked.native_id, "the same conversation", conversation);
  }
  {
    const { data, error, response } = await client.GET("/v1/conversations/{id}/messages", {
      params: { path: { id }, query: { limit: 20 } },
    });
    const messages = must(data, error, response, `read its messages`);
    check(messages.data.length > 0, `${messages.data.length} messages`);
    check(messages.data.every((m) => m.conversation_id === id), "each message belongs to it");
  }

  const agentsResult = await client.GET("/v1/connections/{connection}/agents", {
    params: { path: { connection: "shop-zipchat" } },
  });
  const agents = must(agentsResult.data, agentsResult.error, agentsResult.response, "list shop-zipchat's agents");
  const agent = agents.data[0];
  if (agent === undefined) throw new Error("shop-zipchat has no agents");
  check(agent.connection === "shop-zipchat" && agent.id.startsWith("shop-zipchat:"), `agent ${agent.id}`, agent);

  expectProblem(
    "reply while the bot answers",
    await client.POST("/v1/conversations/{id}/messages", {
      params: { path: { id }, header: { "Idempotency-Key": randomUUID() } },
      body: { text: "Not yet: the bot is still in charge." },
    }),
    409,
    { code: "conversation_in_ai_mode" },
  );

  {
    const { data, error, response } = await client.PUT("/v1/conversations/{id}/assignment", {
      params: { path: { id } },
      body: { assignee_id: agent.id },
    });
    const taken = must(data, error, response, `take over: assign to ${agent.id}`);
    check(taken.assignee?.id === agent.id && taken.mode === "human", "assigned, a person answers", taken);
  }

  const text = `Hi, a person here (typed client ${randomUUID().slice(0, 8)}).`;
  const sent = await client.POST("/v1/conversations/{id}/messages", {
    params: { path: { id }, header: { "Idempotency-Key": randomUUID() } },
    body: { text },
  });
  const reply = must(sent.data, sent.error, sent.response, "reply with an Idempotency-Key");
  check(sent.response.status === 201, "201 Created", sent.response.status);
  check(
    reply.text === text && reply.author === "agent" && reply.direction === "outbound" && reply.conversation_id === id,
    "the reply as stored",
    reply,
  );

  {
    const { data, error, response } = await client.GET("/v1/conversations/{id}/messages", {
      params: { path: { id }, query: { limit: 5 } },
    });
    const latest = must(data, error, response, "read the messages again");
    check(latest.data[0]?.id === reply.id && latest.data[0]?.text === text, "the reply is the newest message", latest.data[0]);
  }

  {
    const { data, error, response } = await client.PUT("/v1/conversations/{id}/assignment", {
      params: { path: { id } },
      body: { assignee_id: null },
    });
    const back = must(data, error, response, "hand back to the bot");
    check((back.assignee ?? null) === null && back.mode === "ai", "unassigned, the bot answers", back);
  }

  {
    // The journey's own writes are in the change feed, stamped with who made them.
    const { events } = await readEvents(before.next, "the change feed since");
    check(new Set(events.map((e) => e.id)).size === events.length, "every event once", events.length);
    const mine = events.filter((e) => e.conversation_id === id && e.performed_by?.client === "demo");
    const replied = mine.find((e) => e.type === "message.created" && e.data.message?.id === reply.id);
    check(replied !== undefined, "the reply is a message.created event performed by this client", mine);
    check(
      mine.some((e) => e.type === "conversation.updated" && (e.changed ?? []).includes("assignee")),
      "the take-over is a conversation.updated event naming `assignee`",
      mine,
    );
    // The stream, resumed after the cursor from before the writes, replays the same reply.
    const streamed = await followStream(before.next, (e) => e.id === replied?.id);
    check(streamed.at(-1)?.id === replied?.id, "the stream, opened with the ticket, replays it after the cursor", streamed.length);
    const upToReply = events.slice(0, events.findIndex((e) => e.id === replied?.id) + 1).map((e) => e.id);
    check(
      JSON.stringify(streamed.map((e) => e.id)) === JSON.stringify(upToReply),
      "the stream and the events API give the same events in the same order",
      { streamed: streamed.length, api: upToReply.length },
    );
    const hooks = await client.GET("/v1/webhooks");
    const list = must(hooks.data, hooks.error, hooks.response, "list the webhook endpoints (admin scope)");
    check(Array.isArray(list.data), `${list.data.length} webhook endpoints`);
  }
  expectProblem(
    "read the change feed past its retention",
    await client.GET("/v1/events", { params: { query: { after: "1000-0" } } }),
    410,
    { code: "cursor_expired" },
  );
  expectProblem(
    "read the change feed with a malformed cursor",
    await client.GET("/v1/events", { params: { query: { after: "0-x" } } }),
    400,
    { code: "invalid_cursor" },
  );

  expectProblem(
    "read an unknown conversation",
    await client.GET("/v1/conversations/{id}", { params: { path: { id: "shop-zipchat:999999999" } } }),
    404,
    { code: "not_found", connection: "shop-zipchat" },
  );
  expectProblem(
    "set the status on Zipchat",
    await client.PUT("/v1/conversations/{id}/status", { params: { path: { id } }, body: { status: "resolved" } }),
    501,
    { code: "unsupported_operation", operation: "set_status", connection: "shop-zipchat" },
  );
  expectProblem(
    "list the agents of sms (Octopush)",
    await client.GET("/v1/connections/{connection}/agents", { params: { path: { connection: "sms" } } }),
    501,
    { code: "unsupported_operation", operation: "list_agents", connection: "sms" },
  );
}

try {
  await main();
} catch (e) {
  failed += 1;
  console.log(`  FAIL  ${e instanceof Error ? e.message : String(e)}`);
}
console.log(`typescript: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
