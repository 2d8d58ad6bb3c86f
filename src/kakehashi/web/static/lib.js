// The web kit every page's script imports: strings, the element helper, the API client (with the session's CSRF
// token), the status line and the duration format. One copy, so a fix (a header, a login redirect) reaches every
// page at once. The live event stream has its own module, events.js.
// Rule for every page: data from the server goes into the page as text (h() below), never as HTML.

/** The element with this id. */
export const $ = (id) => document.getElementById(id);

/** The page's strings in its language (rendered by the server into <script id="strings">; see web/i18n.py). */
export const S = JSON.parse($("strings")?.textContent || "{}");

/** A string with ``{name}`` slots filled in as text: ``text("wb.updated", { time })``. */
export const text = (id, values = {}) =>
  (S[id] ?? id).replace(/\{(\w+)\}/g, (slot, key) => (key in values ? String(values[key]) : slot));

// Attributes that are not (or not simply) DOM properties: set as attributes.
const AS_ATTRIBUTE = new Set(["for", "role", "scope", "colspan", "rowspan"]);

/**
 * Build an element. Props: ``class``, ``dataset`` (an object), ``on<event>`` (a listener), ``aria-*``/``data-*``
 * and ``for``/``role``/``scope`` as attributes, anything else as the DOM property of that name (``value``,
 * ``checked``, ``disabled``…). null, undefined and false props are left out. String children become text
 * nodes, so nothing is ever parsed as HTML.
 */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key.includes("-") || AS_ATTRIBUTE.has(key) || !(key in node)) {
      node.setAttribute(key, value === true ? (key.startsWith("aria-") ? "true" : "") : String(value));
    } else {
      try {
        node[key] = value;
      } catch {
        node.setAttribute(key, String(value)); // a read-only property (input.list, .form): the attribute says it
      }
    }
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** Set a node's text only when it changes (a screen reader re-reads a live region on every write). */
export function setText(node, value) {
  const wanted = String(value);
  if (node.textContent !== wanted) node.textContent = wanted;
}

/** The page's status line (#status): ``kind`` is info, ok or error; an empty text hides it. */
export function status(message, kind = "info") {
  const node = $("status");
  if (!node) return;
  node.className = `status ${message ? kind : ""}`;
  node.textContent = message;
}

const pad = (n) => String(n).padStart(2, "0");

/** A duration in seconds as ``m:ss``, or ``h:mm:ss`` from an hour (negative counts as 0). */
export function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  return hours ? `${hours}:${pad(minutes)}:${pad(s % 60)}` : `${minutes}:${pad(s % 60)}`;
}

/** Where to log in again and come back to this page. */
export const loginUrl = () => `/login?next=${encodeURIComponent(location.pathname + location.search)}`;

const CSRF = document.querySelector('meta[name="csrf-token"]')?.content || "";

/**
 * Call the API: ``{ ok, status, body }`` (body: the JSON answer or null). ``body`` may be an object (sent as
 * JSON) or a string already encoded. Changes carry the session's CSRF token. A 401 (the session ended: idle,
 * logged out elsewhere) sends to the login, which comes back here; no network answers status 0 with the
 * ``networkError`` string as the detail.
 */
export async function api(path, { method = "GET", body, ...rest } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = CSRF;
  const payload = body === undefined || typeof body === "string" ? body : JSON.stringify(body);
  try {
    const res = await fetch(path, { ...rest, method, body: payload, headers, credentials: "same-origin" });
    if (res.status === 401) location.assign(loginUrl());
    const hasJson = res.status !== 204 && (res.headers.get("content-type") || "").includes("json");
    const json = hasJson ? await res.json().catch(() => null) : null;
    return { ok: res.ok, status: res.status, body: json };
  } catch {
    return { ok: false, status: 0, body: { detail: S.networkError } };
  }
}

/** What went wrong, from a problem-details answer: its first field's message, the detail, or the status. */
export function problem(body, code) {
  return body?.errors?.[0]?.message || body?.detail || body?.title || String(code);
}

/**
 * Send a form (``FormData``, multipart) like ``api()`` but through XMLHttpRequest, whose upload reports its
 * progress: ``onProgress(fraction)`` while the bytes go out (1 once all are sent; the server may still be working).
 * Answers ``{ ok, status, body }`` as ``api()`` does, with the same CSRF token, login redirect and network error.
 */
export function upload(path, form, { method = "POST", onProgress = () => {} } = {}) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, path);
    xhr.withCredentials = true;
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("X-CSRF-Token", CSRF);
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable && e.total) onProgress(e.loaded / e.total);
    });
    xhr.upload.addEventListener("load", () => onProgress(1));
    xhr.addEventListener("load", () => {
      if (xhr.status === 401) location.assign(loginUrl());
      let body = null;
      try {
        body = xhr.responseText && (xhr.getResponseHeader("content-type") || "").includes("json") ? JSON.parse(xhr.responseText) : null;
      } catch {
        body = null;
      }
      resolve({ ok: xhr.status >= 200 && xhr.status < 300, status: xhr.status, body });
    });
    xhr.addEventListener("error", () => resolve({ ok: false, status: 0, body: { detail: S.networkError } }));
    xhr.send(form);
  });
}
