// The inbox panel: the merged inbox in the API's order, its filters, "More" for the next page,
// connections that failed for a page shown as such, and live updates moving a conversation to
// the top.

import { query, request } from "./api.js";
import { ago, el, show, showError } from "./dom.js";

/** @typedef {import("switchboard-api").components["schemas"]["Conversation"]} Conversation */
/** @typedef {import("switchboard-api").components["schemas"]["Message"]} Message */
/** @typedef {import("switchboard-api").components["schemas"]["PartialFailure"]} PartialFailure */

let filters = {};
let nextCursor = null;
/** Called with a conversation id when a row is chosen. */
let onOpen = /** @type {(id: string) => void} */ (() => {});

const list = () => document.getElementById("conversation-rows");
const rows = () => /** @type {HTMLElement[]} */ ([...list().children]);

/**
 * Wires the filters and "More"; `open` is called with the id of a chosen conversation.
 * @param {(id: string) => void} open
 */
export function setUpInbox(open) {
  onOpen = open;
  const form = /** @type {HTMLFormElement} */ (document.getElementById("filters"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    filters = Object.fromEntries(new FormData(form));
    loadInbox();
  });
  document.getElementById("more").addEventListener("click", () => loadInbox(nextCursor));
}

/** Fills the connection filter's choices. */
export function setConnectionChoices(ids) {
  const select = document.querySelector('#filters select[name="connection"]');
  select.replaceChildren(el("option", { value: "" }, "All connections"), ...ids.map((id) => el("option", { value: id }, id)));
}

/** Loads the first page (or, with `cursor`, appends the next one). */
export async function loadInbox(cursor = null) {
  const error = document.getElementById("inbox-error");
  try {
    const page = await request("GET", `/v1/conversations${query({ ...filters, cursor })}`);
    const rows = page.data.map(row);
    if (cursor) list().append(...rows);
    else list().replaceChildren(...rows);
    nextCursor = page.next_cursor;
    show(document.getElementById("more"), Boolean(nextCursor));
    showPartial(page.partial);
    showError(error, null);
  } catch (e) {
    showError(error, e);
  }
}

/**
 * Connections that did not answer for this page, named with their error code.
 * @param {PartialFailure[]} partial
 */
function showPartial(partial) {
  const note = document.getElementById("partial");
  const names = partial.map((p) =>
    el("span", { "data-partial-connection": p.connection, title: p.message }, `${p.connection} (${p.code})`),
  );
  note.replaceChildren(
    "Partial page: ",
    ...names.flatMap((name, i) => (i === 0 ? [name] : [", ", name])),
    " did not answer; retried on the next page.",
  );
  show(note, partial.length > 0);
}

/**
 * Whether `conversation` passes the filters in force.
 * @param {Conversation} conversation
 */
function passes(conversation) {
  return (
    (!filters.connection || conversation.connection === filters.connection) &&
    (!filters.status || conversation.status === filters.status) &&
    (!filters.mode || conversation.mode === filters.mode) &&
    (!filters.assignee_id || conversation.assignee?.id === filters.assignee_id)
  );
}

/**
 * A conversation changed (live): its row is replaced, or inserted, at the top.
 * @param {Conversation} conversation
 */
export function upsertConversation(conversation) {
  const old = findRow(conversation.id);
  const selected = old?.getAttribute("aria-selected") === "true";
  old?.remove();
  if (!passes(conversation)) return;
  const fresh = row(conversation);
  if (selected) fresh.setAttribute("aria-selected", "true");
  list().prepend(fresh);
}

/**
 * A message arrived (live): its conversation's row shows it and moves to the top.
 * @param {Message} message
 */
export function noteMessage(message) {
  const existing = findRow(message.conversation_id);
  if (!existing) return false;
  existing.querySelector(".text").textContent = message.text;
  existing.querySelector(".when").textContent = ago(message.created_at);
  list().prepend(existing);
  return true;
}

/** Marks the open conversation's row. */
export function markOpen(id) {
  for (const li of rows()) li.setAttribute("aria-selected", String(li.dataset.conversationId === id));
}

function findRow(id) {
  return rows().find((li) => li.dataset.conversationId === id) || null;
}

/** @param {Conversation} c */
function row(c) {
  const who = c.contact?.name || c.contact?.email || c.contact?.phone || c.native_id;
  const li = el(
    "li",
    { "data-conversation-id": c.id, tabindex: 0, role: "option" },
    el("span", { class: "who" }, who),
    el("span", { class: "when" }, ago(c.last_activity_at)),
    el(
      "span",
      { class: "tags" },
      c.connection,
      el("span", { class: "tag" }, c.status),
      c.mode ? el("span", { class: "tag" }, c.mode) : null,
      c.assignee ? el("span", { class: "tag" }, c.assignee.name || c.assignee.id) : null,
    ),
    el("span", { class: "text" }, c.last_message?.text || ""),
  );
  li.addEventListener("click", () => onOpen(c.id));
  li.addEventListener("keydown", (e) => {
    if (e.key === "Enter") onOpen(c.id);
    const next = e.key === "ArrowDown" || e.key === "j" ? li.nextElementSibling : null;
    const previous = e.key === "ArrowUp" || e.key === "k" ? li.previousElementSibling : null;
    /** @type {HTMLElement | null} */ (next || previous)?.focus();
  });
  return li;
}
