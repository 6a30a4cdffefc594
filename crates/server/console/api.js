// Calls to the gateway with the signed-in token. An error answer (RFC 9457 problem+json)
// becomes an ApiError carrying its `code`, `detail` and `Retry-After`.

import { store } from "./store.js";

export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {{code?: string, detail?: string, title?: string}} problem
   * @param {number | null} retryAfter seconds, from `Retry-After`
   */
  constructor(status, problem, retryAfter) {
    super(`${problem.code || status}: ${problem.detail || problem.title || "request failed"}`);
    this.status = status;
    this.code = problem.code || `http_${status}`;
    this.detail = problem.detail || problem.title || "";
    this.retryAfter = retryAfter;
  }
}

/**
 * Sends one request; resolves to the parsed JSON body (null for an empty one).
 * @param {string} method
 * @param {string} path with its query
 * @param {{body?: unknown, headers?: Record<string, string>}} [options]
 */
export async function request(method, path, { body, headers = {} } = {}) {
  const init = {
    method,
    headers: { Accept: "application/json", Authorization: `Bearer ${store.token}`, ...headers },
  };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  const parsed = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const retry = Number(response.headers.get("Retry-After"));
    throw new ApiError(response.status, parsed || {}, Number.isFinite(retry) && retry > 0 ? retry : null);
  }
  return parsed;
}

/** A query string from the set values of `params` ("" when none). */
export function query(params) {
  const q = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") q.set(name, String(value));
  }
  const text = q.toString();
  return text ? `?${text}` : "";
}

/** A path segment for an id such as `shop-zipchat:12279`. */
export const segment = (id) => encodeURIComponent(id);
