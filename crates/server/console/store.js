// The console's one piece of shared state. The token lives in sessionStorage only (this tab,
// until it closes): never in a URL, never in localStorage.

const TOKEN_KEY = "switchboard.token";

export const store = {
  /** @type {string | null} */
  token: sessionStorage.getItem(TOKEN_KEY),
  /** Connections by id, as `GET /v1/connections` lists them. */
  connections: new Map(),
  /** The open conversation's id, if any. */
  openId: null,
};

export function signIn(token) {
  store.token = token;
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function signOut() {
  store.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
}
