// The connections panel: one row per connection with its vendor, health, breaker, quota left,
// last successful call and last poll.

import { request } from "./api.js";
import { ago, el } from "./dom.js";
import { store } from "./store.js";

/** @typedef {import("switchboard-api").components["schemas"]["ConnectionInfo"]} ConnectionInfo */

const rows = () => document.getElementById("connection-rows");

/** Loads `GET /v1/connections` into the store and the panel. */
export async function loadConnections() {
  const { data } = await request("GET", "/v1/connections");
  store.connections = new Map(data.map((c) => [c.id, c]));
  rows().replaceChildren(...data.map(row));
  return data;
}

/** @param {ConnectionInfo} connection */
function row(connection) {
  const { health } = connection;
  const quota = health.quota;
  const state = health.last_error ? "failing" : health.last_success_at ? "ok" : "unknown";
  return el(
    "tr",
    { "data-connection-id": connection.id },
    el("td", {}, connection.id),
    el("td", { "data-field": "vendor" }, connection.provider),
    el("td", { "data-field": "health", "data-health": state }, health.last_error ? `failing (${health.last_error})` : state),
    el("td", { "data-field": "breaker", "data-breaker": health.breaker }, health.breaker.replace("_", " ")),
    el("td", { "data-field": "quota" }, quota ? `${quota.remaining ?? "?"} of ${quota.requests} / ${quota.per_seconds} s` : "none"),
    el("td", { "data-field": "last-success" }, ago(health.last_success_at)),
    el("td", { "data-field": "last-poll" }, ago(connection.last_poll_at)),
  );
}
