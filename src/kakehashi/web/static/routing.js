// Inbound routing page: keeps the queues and agents current and lets a supervisor change an agent's state.
// The live part is rendered by the server (/routing/live) and swapped in whole; the page never builds HTML from
// API data. Updates: on every call or agent event of the live stream (at most one refresh every 2 s), and every
// 15 s anyway; the "time in state" and "longest wait" clocks tick every second in between.

const S = JSON.parse(document.getElementById("strings").textContent);
const CSRF = document.querySelector('meta[name="csrf-token"]')?.content || "";
const $ = (id) => document.getElementById(id);

// ---- clocks ---------------------------------------------------------------------------------------
const pad = (n) => String(n).padStart(2, "0");

function elapsed(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}

let skew = 0; // server clock − browser clock, from the live part's data-at

function tick() {
  const now = Date.now() + skew;
  for (const el of document.querySelectorAll("[data-since]")) {
    el.textContent = elapsed((now - Date.parse(el.dataset.since)) / 1000);
  }
}

function syncClock() {
  const at = $("live")?.dataset.at;
  if (at) skew = Date.parse(at) - Date.now();
}

// ---- refreshing the live part ---------------------------------------------------------------------
const MIN_GAP_MS = 2000;
let timer = null;
let last = 0;

function refreshSoon(delay = 500) {
  if (timer) return;
  const wait = Math.max(delay, MIN_GAP_MS - (Date.now() - last));
  timer = setTimeout(refresh, wait);
}

async function refresh() {
  timer = null;
  const live = $("live");
  if (live && live.contains(document.activeElement) && document.activeElement.tagName === "SELECT") {
    refreshSoon(3000); // someone is choosing a state: do not pull the list from under them
    return;
  }
  last = Date.now();
  let res;
  try {
    res = await fetch("/routing/live", { credentials: "same-origin", headers: { Accept: "text/html" } });
  } catch {
    return; // offline for a moment: the next event or the periodic refresh tries again
  }
  if (res.redirected || res.status === 401 || res.status === 403) {
    location.reload(); // the session ended: the page itself sends to the login
    return;
  }
  if (!res.ok) return;
  const fresh = new DOMParser().parseFromString(await res.text(), "text/html").getElementById("live");
  if (!fresh || !$("live")) return;
  const focused = document.activeElement?.dataset?.agent;
  $("live").replaceWith(document.importNode(fresh, true));
  if (focused) document.querySelector(`button[data-agent="${CSS.escape(focused)}"]`)?.focus();
  syncClock();
  tick();
  const updated = $("updated");
  if (updated) updated.textContent = `${S["routing.updated"]} ${new Date(Date.now() + skew).toLocaleTimeString("ja-JP", { timeZone: "Asia/Tokyo" })}`;
}

// ---- the live stream: any call or agent event means the figures moved -------------------------------
let backoff = 1000;

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  let ws;
  try {
    ws = new WebSocket(`${scheme}://${location.host}/api/v1/events`);
  } catch {
    return;
  }
  ws.addEventListener("open", () => { backoff = 1000; });
  ws.addEventListener("message", (msg) => {
    let data;
    try { data = JSON.parse(msg.data); } catch { return; }
    if (data.type === "event" || data.type === "resync") refreshSoon();
  });
  ws.addEventListener("close", () => {
    setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 60000);
  });
}

// ---- changing an agent's state ----------------------------------------------------------------------
function status(text, kind) {
  const el = $("status");
  el.className = `status ${kind}`;
  el.textContent = text;
}

async function choose(button) {
  const select = $(button.dataset.choice);
  if (!select) return;
  const [state, reason] = select.value.split(":");
  button.disabled = true;
  try {
    const res = await fetch(`/api/v1/agents/${encodeURIComponent(button.dataset.agent)}/state`, {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json", "Content-Type": "application/json", "X-CSRF-Token": CSRF },
      body: JSON.stringify(reason ? { state, reason } : { state }),
    });
    const body = (res.headers.get("content-type") || "").includes("json") ? await res.json() : null;
    if (res.ok) {
      status(body && body.state !== state ? S["routing.changedLater"] : S["routing.changed"], "ok");
    } else {
      const detail = body?.errors?.[0]?.message || body?.detail || res.status;
      status(`${S["routing.failed"]}: ${detail}`, "error");
    }
  } catch {
    status(S.networkError, "error");
  } finally {
    button.disabled = false;
    refreshSoon(0);
  }
}

document.addEventListener("click", (event) => {
  const button = event.target.closest?.("button[data-agent]");
  if (button) choose(button);
});

syncClock();
setInterval(tick, 1000);
setInterval(() => refreshSoon(0), 15000);
connect();
