// The conversation panel: its messages, a reply (with an Idempotency-Key the page generates and
// reuses when it retries), and take over / hand back / assign / set status where the
// connection's capabilities allow. Controls it rules out are not shown.

import { request, segment } from "./api.js";
import { el, show, showError } from "./dom.js";
import { store } from "./store.js";

/** @typedef {import("switchboard-api").components["schemas"]["Conversation"]} Conversation */
/** @typedef {import("switchboard-api").components["schemas"]["Message"]} Message */

/** The reply being sent: its text and the key every retry of it reuses. */
let pending = null;
/** Called with the conversation after a write, so the inbox shows it. */
let onChanged = /** @type {(conversation: Conversation) => void} */ (() => {});

const $ = (id) => document.getElementById(id);
/** The value of the select `id`. */
const chosen = (id) => /** @type {HTMLSelectElement} */ ($(id)).value;

/** @param {(conversation: Conversation) => void} changed */
export function setUpConversation(changed) {
  onChanged = changed;
  const form = /** @type {HTMLFormElement} */ ($("reply"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    sendReply(form);
  });
  form.text.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) sendReply(form);
  });
  $("take-over").addEventListener("click", () => assign(chosen("assignee")));
  $("assign").addEventListener("click", () => assign(chosen("assignee")));
  $("hand-back").addEventListener("click", () => assign(null));
  $("set-status").addEventListener("click", () => write("status", { status: chosen("status") }));
}

/** Opens conversation `id`: its header, controls and messages. */
export async function openConversation(id) {
  store.openId = id;
  pending = null;
  showError($("conversation-error"), null);
  try {
    const [conversation, messages] = await Promise.all([
      request("GET", `/v1/conversations/${segment(id)}`),
      request("GET", `/v1/conversations/${segment(id)}/messages?limit=50`),
    ]);
    if (store.openId !== id) return;
    showHeader(conversation);
    $("messages").replaceChildren(...messages.data.map(messageItem));
    await showControls(conversation);
  } catch (e) {
    showError($("conversation-error"), e);
  }
}

/**
 * A conversation changed (live): the header follows if it is the open one.
 * @param {Conversation} conversation
 */
export function conversationChanged(conversation) {
  if (conversation.id === store.openId) showHeader(conversation);
}

/**
 * A message arrived (live): shown if its conversation is open and it is not shown yet.
 * @param {Message} message
 */
export function messageArrived(message) {
  if (message.conversation_id !== store.openId) return;
  const items = /** @type {HTMLElement[]} */ ([...$("messages").children]);
  const shown = items.some((li) => li.dataset.messageId === message.id);
  if (!shown) $("messages").prepend(messageItem(message));
}

/** @param {Conversation} c */
function showHeader(c) {
  const who = c.contact?.name || c.contact?.email || c.native_id;
  $("conversation-title").textContent = who;
  const assignee = c.assignee ? `assigned to ${c.assignee.name || c.assignee.id}` : "unassigned";
  $("conversation-meta").textContent = [c.connection, c.channel, c.status, c.mode || "mode unknown", assignee].join(" · ");
}

/** @param {Message} m */
function messageItem(m) {
  const by = m.sender?.name || m.author;
  return el(
    "li",
    { "data-message-id": m.id, "data-direction": m.direction },
    el("span", { class: "by" }, `${by} · ${m.created_at ? new Date(m.created_at).toLocaleString() : ""}`),
    m.text,
  );
}

/** @param {Conversation} c */
async function showControls(c) {
  const connection = store.connections.get(c.connection);
  const can = connection ? connection.capabilities : {};
  show($("take-over"), can.assign && c.mode !== "human");
  show($("hand-back"), can.unassign && Boolean(c.assignee || c.mode === "human"));
  show($("assign"), can.assign);
  show($("assignee").parentElement, can.assign);
  const statuses = (can.set_status || []).filter((s) => s !== c.status);
  $("status").replaceChildren(...statuses.map((s) => el("option", { value: s }, s)));
  show($("status").parentElement, statuses.length > 0);
  show($("set-status"), statuses.length > 0);
  show($("reply"), can.send_message);
  show($("conversation-actions"), true);
  if (can.assign && can.list_agents) {
    const agents = await request("GET", `/v1/connections/${segment(c.connection)}/agents`);
    $("assignee").replaceChildren(...agents.data.map((a) => el("option", { value: a.id }, a.name || a.email || a.id)));
  } else {
    $("assignee").replaceChildren();
  }
}

async function sendReply(form) {
  const text = form.text.value.trim();
  if (!text || !store.openId) return;
  // A retry of the same text reuses its key, so the gateway sends it at most once.
  if (!pending || pending.text !== text || pending.conversation !== store.openId) {
    pending = { text, conversation: store.openId, key: crypto.randomUUID() };
  }
  const button = form.querySelector("button");
  button.disabled = true;
  try {
    const message = await request("POST", `/v1/conversations/${segment(store.openId)}/messages`, {
      body: { text },
      headers: { "Idempotency-Key": pending.key },
    });
    pending = null;
    form.reset();
    showError($("conversation-error"), null);
    messageArrived(message);
  } catch (e) {
    showError($("conversation-error"), e);
  } finally {
    button.disabled = false;
  }
}

function assign(assigneeId) {
  return write("assignment", { assignee_id: assigneeId });
}

async function write(what, body) {
  const id = store.openId;
  if (!id) return;
  try {
    const conversation = await request("PUT", `/v1/conversations/${segment(id)}/${what}`, { body });
    showError($("conversation-error"), null);
    showHeader(conversation);
    await showControls(conversation);
    onChanged(conversation);
  } catch (e) {
    showError($("conversation-error"), e);
  }
}
