// Inbound routing page: keeps the queues and agents current and lets a supervisor change an agent's state.
// The live part is rendered by the server (/routing/live) and swapped in whole; the page never builds HTML from
// API data. Updates: on every call or agent event of the live stream (at most one refresh every 2 s), and every
// 15 s anyway; the "time in state" and "longest wait" clocks tick every second in between.

import { connectEvents } from "/static/events.js";
import { $, S, api, duration, problem, status } from "/static/lib.js";

// ---- clocks ---------------------------------------------------------------------------------------
let skew = 0; // server clock − browser clock, from the live part's data-at

function tick() {
  const now = Date.now() + skew;
  for (const el of document.querySelectorAll("[data-since]")) {
    el.textContent = duration((now - Date.parse(el.dataset.since)) / 1000);
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

// ---- changing an agent's state ----------------------------------------------------------------------
async function choose(button) {
  const select = $(button.dataset.choice);
  if (!select) return;
  const [state, reason] = select.value.split(":");
  button.disabled = true;
  try {
    const res = await api(`/api/v1/agents/${encodeURIComponent(button.dataset.agent)}/state`, {
      method: "POST",
      body: reason ? { state, reason } : { state },
    });
    if (res.ok) {
      status(res.body && res.body.state !== state ? S["routing.changedLater"] : S["routing.changed"], "ok");
    } else if (res.status === 0) {
      status(S.networkError, "error");
    } else {
      status(`${S["routing.failed"]}: ${problem(res.body, res.status)}`, "error");
    }
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
// Any call or agent event means the figures moved (events.js resumes after a dropped socket).
connectEvents({ onEvent: () => refreshSoon(), onResync: () => refreshSoon() });
