// DOM helpers. Everything from the network reaches the page through `textContent` and
// `setAttribute` only: vendor text is customer input and is never parsed as HTML.

/**
 * Builds an element: `attrs` are set with setAttribute (null/undefined/false skipped), and each
 * child is a node or text.
 * @param {string} tag
 * @param {Record<string, string | number | boolean | null | undefined>} [attrs]
 * @param {...(Node | string | null | undefined)} children
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

/** Shows or hides `node`. */
export function show(node, visible) {
  node.hidden = !visible;
}

/** Shows an error (an ApiError with `code` and `detail`, or any Error) in `node`; null clears. */
export function showError(node, error) {
  if (!error) {
    node.textContent = "";
    node.hidden = true;
    return;
  }
  node.textContent = error.code ? `${error.code}: ${error.detail}` : String(error.message || error);
  node.hidden = false;
}

/** "12 s ago", "5 min ago", "3 h ago", or the date; "—" for none. */
export function ago(iso) {
  if (!iso) return "—";
  const seconds = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (Number.isNaN(seconds)) return "—";
  if (seconds < 60) return `${Math.max(seconds, 0)} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return new Date(iso).toISOString().slice(0, 10);
}
