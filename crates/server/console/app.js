// The console's entry point: sign-in, then the three panels and the live stream.

import { ApiError, request, segment } from "./api.js";
import { loadConnections } from "./connections.js";
import { conversationChanged, messageArrived, openConversation, setUpConversation } from "./conversation.js";
import { show, showError } from "./dom.js";
import { loadInbox, markOpen, noteMessage, setConnectionChoices, setUpInbox, upsertConversation } from "./inbox.js";
import { follow } from "./stream.js";
import { signIn, signOut, store } from "./store.js";

/** @typedef {import("switchboard-api").components["schemas"]["Event"]} FeedEvent */

const $ = (id) => document.getElementById(id);
const signInForm = /** @type {HTMLFormElement} */ ($("sign-in"));
let stopFollowing = null;
let refresh = null;

function showSignIn(error) {
  show($("console"), false);
  show($("sign-out"), false);
  show($("sign-in"), true);
  showError($("sign-in-error"), error);
  signInForm.token.focus();
}

async function start() {
  try {
    const connections = await loadConnections();
    setConnectionChoices(connections.map((c) => c.id));
  } catch (e) {
    if (e instanceof ApiError && (e.status === 401 || e.status === 403)) signOut();
    showSignIn(e);
    return;
  }
  show($("sign-in"), false);
  show($("console"), true);
  show($("sign-out"), true);
  // Follow the feed first, so nothing that changes while the inbox loads is missed.
  stopFollowing = follow({
    onEvent,
    onState: (state) => {
      $("live").dataset.state = state;
      $("live").textContent = `live: ${state}`;
    },
    onResync: () => loadInbox(),
  });
  await loadInbox();
  // Health, breaker and quota as of the calls the inbox just made.
  loadConnections().catch(() => {});
  refresh = setInterval(() => loadConnections().catch(() => {}), 10000);
}

/** @param {FeedEvent} event */
function onEvent(event) {
  if (event.data.conversation) {
    upsertConversation(event.data.conversation);
    conversationChanged(event.data.conversation);
    markOpen(store.openId);
  }
  if (event.data.message) {
    const { message } = event.data;
    if (!noteMessage(message)) {
      // A conversation not on the page: fetch it, so it shows at the top.
      request("GET", `/v1/conversations/${segment(message.conversation_id)}`)
        .then(upsertConversation)
        .catch(() => {});
    }
    messageArrived(message);
  }
}

async function open(id) {
  markOpen(id);
  await openConversation(id);
}

setUpInbox(open);
setUpConversation((conversation) => {
  upsertConversation(conversation);
  markOpen(store.openId);
});

signInForm.addEventListener("submit", (e) => {
  e.preventDefault();
  signIn(String(new FormData(signInForm).get("token") ?? "").trim());
  start();
});
$("sign-out").addEventListener("click", () => {
  stopFollowing?.();
  clearInterval(refresh);
  signOut();
  location.reload();
});

if (store.token) start();
else showSignIn(null);
