// Follows the change feed live. A browser's EventSource cannot send the Authorization header,
// so each connection opens with a single-use ticket (POST /v1/events/tickets). When the stream
// errors, the EventSource's own retry would reuse a spent ticket; instead this closes it, mints
// a new ticket and reopens with `?after=<last event id>`: nothing missed, nothing twice.

import { request } from "./api.js";

const TYPES = ["conversation.created", "conversation.updated", "message.created"];

/**
 * @param {{onEvent: (event: object) => void, onState: (state: "on" | "reconnecting" | "off") => void, onResync: () => void}} handlers
 * @returns {() => void} stops following
 */
export function follow({ onEvent, onState, onResync }) {
  let lastId = null;
  let source = null;
  let timer = null;
  let failures = 0;
  let stopped = false;

  function reopenLater() {
    if (stopped) return;
    onState("reconnecting");
    const delay = Math.min(500 * 2 ** failures, 15000);
    failures += 1;
    timer = setTimeout(open, delay);
  }

  async function open() {
    if (stopped) return;
    let ticket;
    try {
      ({ ticket } = await request("POST", "/v1/events/tickets", { body: {} }));
    } catch {
      reopenLater();
      return;
    }
    const url = new URL("/v1/events/stream", location.origin);
    url.searchParams.set("ticket", ticket);
    if (lastId) url.searchParams.set("after", lastId);
    source = new EventSource(url);
    source.onopen = () => {
      failures = 0;
      onState("on");
    };
    for (const type of TYPES) {
      source.addEventListener(type, (message) => {
        lastId = message.lastEventId;
        onEvent(JSON.parse(message.data));
      });
    }
    source.addEventListener("error", (message) => {
      source.close();
      if (message instanceof MessageEvent) {
        // `event: error`: the cursor fell behind the retention. Start again from now.
        lastId = null;
        onResync();
      }
      reopenLater();
    });
  }

  open();
  return () => {
    stopped = true;
    clearTimeout(timer);
    if (source) source.close();
    onState("off");
  };
}
