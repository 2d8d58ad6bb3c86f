// The supervisors' wallboard (見える化, /wallboard): queues, alerts, agents, calls in progress and the calls of the
// last hours, live, with the supervisor's actions.
//
// Data: the floor's snapshot (GET /api/v1/wallboard; the first one is embedded in the page), the calls in progress
// (GET /api/v1/calls/live) and the calls per 15 minutes (GET /api/v1/reports/queues?interval=15min).
// Live: the event stream (/api/v1/events). An agent's state applies at once; any call, agent or queue event fetches
// a fresh snapshot (at most every 1.5 s, and every 15 s anyway). The socket reconnects with backoff and resumes
// after the last event id it saw; a "resync" (the server no longer holds what was missed) refetches everything.
// Clocks (time in state, longest wait, call time) and the wait alerts tick every second between snapshots.
// Safety: every value from the server reaches the page as text (textContent, DOM properties), never as HTML.
// Accessibility: alerts and the results of actions are announced through polite live regions; alerts and states
// are words (with an icon), never colour alone; rows are updated in place, so focus stays where it was.

const $ = (id) => document.getElementById(id);
const S = JSON.parse($("strings").textContent);
const CSRF = document.querySelector('meta[name="csrf-token"]')?.content || "";
const TZ = "Asia/Tokyo";
const STATES = ["available", "ringing", "on_call", "wrap_up", "break", "missed", "logged_out"];

let board = JSON.parse($("snapshot").textContent);
let calls = null; // null: not loaded (or the server has no list of live calls)
let callsAvailable = true;
let skew = 0; // server clock − browser clock (from the snapshot's "at")

// ---- small helpers --------------------------------------------------------------------------------------------
const text = (id, values = {}) => (S[id] ?? id).replace(/\{(\w+)\}/g, (slot, key) => (key in values ? String(values[key]) : slot));
const serverNow = () => Date.now() + skew;
const pad = (n) => String(n).padStart(2, "0");

function elapsed(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}

function percent(value, digits = 0) {
  return value === null || value === undefined ? "—" : `${(value * 100).toFixed(digits)}%`;
}

function clock(ms) {
  return new Date(ms).toLocaleTimeString("ja-JP", { timeZone: TZ, hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function hhmm(ms) {
  return new Date(ms).toLocaleTimeString("ja-JP", { timeZone: TZ, hour: "2-digit", minute: "2-digit" });
}

/** An element with properties (``class``, ``dataset``, ``aria-*``/``role``/``for`` as attributes) and children
 * (strings become text nodes: nothing is ever parsed as HTML). */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("aria-") || key === "role" || key === "for") node.setAttribute(key, value === true ? "true" : String(value));
    else node[key] = value;
  }
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

function setText(node, value) {
  const wanted = String(value);
  if (node.textContent !== wanted) node.textContent = wanted;
}

const stateLabel = (state) => S[`wb.state.${state}`] || state;
const queueLabel = (name) => board.queues.find((q) => q.queue === name)?.label || name;
const agentLabel = (name) => board.agents.find((a) => a.name === name)?.display_name || name;
const auxLabel = (code) => board.aux_codes.find((c) => c.code === code)?.label || code;

// ---- messages: the visible status line and the screen reader's polite announcements -----------------------------
function status(message, kind) {
  const node = $("status");
  node.className = `status ${kind}`;
  node.textContent = message;
}

function announce(messages) {
  const region = $("announce");
  for (const message of messages) region.append(el("p", {}, message)); // each addition is read out
  while (region.childElementCount > 3) region.firstElementChild.remove();
}

function problem(body, code) {
  return body?.errors?.[0]?.message || body?.detail || body?.title || String(code);
}

async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRF-Token"] = CSRF;
  const res = await fetch(path, { method, credentials: "same-origin", headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 401) {
    location.reload(); // the session ended: the page itself sends to the login
    throw new Error("logged out");
  }
  const json = (res.headers.get("content-type") || "").includes("json") ? await res.json().catch(() => null) : null;
  return { ok: res.ok, status: res.status, body: json };
}

// ---- queues ---------------------------------------------------------------------------------------------------
const tiles = new Map(); // queue name → {node, parts}
let tileSerial = 0;

function waitingSince(q) {
  return q.longest_wait_s === null ? null : Date.parse(board.at) - q.longest_wait_s * 1000;
}

function longestWait(q) {
  const since = waitingSince(q);
  return since === null ? null : (serverNow() - since) / 1000;
}

function figure(label, valueClass) {
  const value = el("span", { class: `fig-value ${valueClass}` });
  const note = el("span", { class: "fig-note" });
  return { row: el("div", {}, el("dt", {}, label), el("dd", {}, value, note)), value, note };
}

function makeTile(q) {
  const id = `wbq-${++tileSerial}`;
  const title = el("span", { class: "q-label" });
  const code = el("code", {});
  const flag = el("p", { class: "tile-flag" });
  const waiting = figure(S["wb.waiting"], "big waiting");
  const longest = figure(S["wb.longestWait"], "big longest");
  const sl = figure(S["wb.serviceLevel"], "big sl");
  const abandon = figure(S["wb.abandonRate"], "big abandon");
  const small = {
    available: figure(S["wb.availableOfMembers"], "small-fig"),
    offered: figure(S["wb.offered"], "small-fig"),
    answered: figure(S["wb.answered"], "small-fig"),
    abandoned: figure(S["wb.abandoned"], "small-fig"),
    asa: figure(S["wb.asa"], "small-fig"),
  };
  const node = el(
    "article",
    { class: "queue-tile", dataset: { queue: q.queue }, "aria-labelledby": `${id}-h` },
    el("h3", { id: `${id}-h` }, title, " ", code),
    flag,
    el("dl", { class: "big-figs" }, waiting.row, longest.row, sl.row, abandon.row),
    el("dl", { class: "small-figs" }, Object.values(small).map((f) => f.row)),
  );
  return { node, title, code, flag, waiting, longest, sl, abandon, small };
}

function renderQueues() {
  const grid = $("queues");
  const seen = new Set();
  let previous = null;
  for (const q of board.queues) {
    let tile = tiles.get(q.queue);
    if (!tile) {
      tile = makeTile(q);
      tiles.set(q.queue, tile);
    }
    seen.add(q.queue);
    setText(tile.title, q.label);
    setText(tile.code, q.queue);
    setText(tile.waiting.value, q.calls_waiting);
    tile.waiting.value.classList.toggle("busy", q.calls_waiting > 0);
    setText(tile.sl.value, percent(q.service_level));
    setText(tile.abandon.value, percent(q.abandon_rate, 1));
    const by = q.agents_by_state || {};
    setText(tile.small.available.value, `${by.available || 0} / ${q.members}`);
    setText(tile.small.offered.value, q.offered);
    setText(tile.small.answered.value, q.answered);
    setText(tile.small.abandoned.value, q.abandoned);
    setText(tile.small.asa.value, q.asa_s === null ? "—" : elapsed(q.asa_s));
    const expected = previous ? previous.node.nextSibling : grid.firstChild;
    if (expected !== tile.node) grid.insertBefore(tile.node, expected);
    previous = tile;
  }
  for (const [name, tile] of tiles) {
    if (!seen.has(name)) {
      tile.node.remove();
      tiles.delete(name);
    }
  }
  $("no-queues").hidden = board.queues.length > 0;
  tickQueues();
}

/** The parts of the tiles that move with the clock: the longest wait and whether a queue needs attention. */
function tickQueues() {
  for (const q of board.queues) {
    const tile = tiles.get(q.queue);
    if (!tile) continue;
    const wait = longestWait(q);
    const late = wait !== null && wait > q.wait_limit_s;
    const low = q.service_level !== null && q.service_level < q.sl_target;
    setText(tile.longest.value, wait === null ? "—" : elapsed(wait));
    setText(tile.longest.note, late ? `⚠ ${text("wb.overLimit")} · ${text("wb.waitLimit", { limit: elapsed(q.wait_limit_s) })}` : text("wb.waitLimit", { limit: elapsed(q.wait_limit_s) }));
    setText(tile.sl.note, `${low ? `▼ ${text("wb.belowTarget")} · ` : ""}${text("wb.slTarget", { target: percent(q.sl_target), seconds: q.threshold_s })}`);
    tile.longest.row.classList.toggle("alarm", late);
    tile.sl.row.classList.toggle("alarm", low);
    tile.node.classList.toggle("alarm", late || low);
    setText(tile.flag, late || low ? `⚠ ${text("wb.attention")}` : "");
  }
}

// ---- alerts -----------------------------------------------------------------------------------------------------
const shownAlerts = new Map(); // key → {li, message}
let alertsStarted = false;

function currentAlerts() {
  const found = [];
  for (const q of board.queues) {
    if (q.service_level !== null && q.service_level < q.sl_target) {
      found.push({ key: `${q.queue}:service_level`, kind: "service_level", message: text("wb.alert.service_level", { queue: q.label, value: percent(q.service_level), limit: percent(q.sl_target) }) });
    }
    const wait = longestWait(q);
    if (wait !== null && wait > q.wait_limit_s) {
      found.push({ key: `${q.queue}:wait`, kind: "wait", message: text("wb.alert.wait", { queue: q.label, value: elapsed(wait), limit: elapsed(q.wait_limit_s) }) });
    }
  }
  return found;
}

function renderAlerts() {
  const list = $("alerts");
  const now = currentAlerts();
  const keys = new Set(now.map((a) => a.key));
  const spoken = [];
  for (const [key, shown] of shownAlerts) {
    if (!keys.has(key)) {
      shown.li.remove();
      shownAlerts.delete(key);
      spoken.push(text("wb.alertCleared", { text: shown.message }));
    }
  }
  for (const alert of now) {
    let shown = shownAlerts.get(alert.key);
    if (!shown) {
      const words = el("span", { class: "alert-text" });
      shown = { li: el("li", { class: `alert alert-${alert.kind}`, dataset: { alert: alert.key } }, el("span", { class: "alert-icon", "aria-hidden": "true" }, "⚠"), " ", words), words, message: alert.message };
      shownAlerts.set(alert.key, shown);
      list.append(shown.li);
      spoken.push(text("wb.alertRaised", { text: alert.message }));
    }
    shown.message = alert.message;
    setText(shown.words, alert.message);
  }
  setText($("alert-count"), now.length);
  $("no-alerts").hidden = now.length > 0;
  if (alertsStarted) announce(spoken);
  alertsStarted = true;
}

// ---- agents -----------------------------------------------------------------------------------------------------
const rows = new Map(); // agent id → row parts
let auxSignature = "";

function fillChoices(select) {
  const keep = select.value;
  select.replaceChildren(
    el("option", { value: "available" }, S["wb.makeAvailable"]),
    board.aux_codes.length ? el("optgroup", { label: S["wb.breakGroup"] }, board.aux_codes.map((c) => el("option", { value: `break:${c.code}` }, c.label))) : null,
    el("option", { value: "logged_out" }, S["wb.logOut"]),
  );
  if ([...select.options].some((o) => o.value === keep)) select.value = keep;
}

function makeRow(agent) {
  const select = el("select", { class: "choice" });
  fillChoices(select);
  const change = el("button", { type: "button", class: "secondary", dataset: { action: "state", agent: agent.id } }, S["wb.change"]);
  const queues = el("button", { type: "button", class: "secondary", dataset: { action: "queues", agent: agent.id }, "aria-haspopup": "dialog" }, S["wb.queues"]);
  const name = el("span", { class: "agent-name" });
  const login = el("code", {});
  const badge = el("span", { class: "state" });
  const reason = el("span", { class: "reason" });
  const since = el("span", { class: "since" });
  const tags = el("span", { class: "tags" });
  const tr = el(
    "tr",
    { dataset: { agentRow: agent.name } },
    el("th", { scope: "row" }, name, " ", login),
    el("td", { class: "nowrap" }, badge, reason),
    el("td", { class: "num" }, since),
    el("td", {}, el("span", { class: "actions" }, select, change)),
    el("td", {}, el("span", { class: "queue-cell" }, tags, queues)),
  );
  return { tr, select, change, queues, name, login, badge, reason, since, tags };
}

function updateRow(row, agent) {
  setText(row.name, agent.display_name);
  setText(row.login, agent.name);
  row.badge.className = `state state-${agent.state}`;
  setText(row.badge, stateLabel(agent.state));
  setText(row.reason, agent.state === "break" && agent.reason ? ` · ${agent.reason_label || auxLabel(agent.reason)}` : "");
  row.since.dataset.since = agent.since;
  row.select.setAttribute("aria-label", text("wb.chooseFor", { name: agent.display_name }));
  row.queues.setAttribute("aria-label", text("wb.queuesFor", { name: agent.display_name }));
  const signature = JSON.stringify(agent.queues);
  if (row.tags.dataset.signature !== signature) {
    row.tags.dataset.signature = signature;
    row.tags.replaceChildren(
      ...(agent.queues.length
        ? agent.queues.map((m) => el("span", { class: m.by_skill ? "tag skill" : "tag" }, queueLabel(m.queue), m.by_skill ? ` (${S["wb.bySkill"]})` : ""))
        : [el("span", { class: "muted" }, S["wb.noQueue"])]),
    );
  }
}

function renderAgents() {
  const body = $("agents");
  const signature = JSON.stringify(board.aux_codes);
  const auxChanged = signature !== auxSignature;
  auxSignature = signature;
  const seen = new Set();
  let previous = null;
  for (const agent of board.agents) {
    let row = rows.get(agent.id);
    if (!row) {
      row = makeRow(agent);
      rows.set(agent.id, row);
    } else if (auxChanged && document.activeElement !== row.select) {
      fillChoices(row.select);
    }
    seen.add(agent.id);
    updateRow(row, agent);
    const expected = previous ? previous.tr.nextSibling : body.firstChild;
    if (expected !== row.tr) body.insertBefore(row.tr, expected);
    previous = row;
  }
  for (const [id, row] of rows) {
    if (!seen.has(id)) {
      row.tr.remove();
      rows.delete(id);
    }
  }
  setText($("agent-count"), board.agents.length);
  $("no-agents").hidden = board.agents.length > 0;
  const counts = Object.fromEntries(STATES.map((s) => [s, 0]));
  for (const agent of board.agents) counts[agent.state] = (counts[agent.state] || 0) + 1;
  $("agent-summary").replaceChildren(
    ...STATES.filter((s) => counts[s]).map((s) => el("li", { dataset: { state: s } }, el("span", { class: `state state-${s}` }, stateLabel(s)), " ", el("strong", {}, String(counts[s])))),
  );
  tickClocks();
}

function tickClocks() {
  const now = serverNow();
  for (const node of document.querySelectorAll("[data-since]")) {
    setText(node, elapsed((now - Date.parse(node.dataset.since)) / 1000));
  }
}

async function changeState(agentId, button) {
  const agent = board.agents.find((a) => a.id === agentId);
  const row = rows.get(agentId);
  if (!agent || !row) return;
  const [state, reason] = row.select.value.split(":");
  button.disabled = true;
  try {
    const res = await api(`/api/v1/agents/${encodeURIComponent(agentId)}/state`, { method: "POST", body: reason ? { state, reason } : { state } });
    if (res.ok && res.body) {
      Object.assign(agent, { state: res.body.state, reason: res.body.state_reason, reason_label: res.body.state_reason ? auxLabel(res.body.state_reason) : null, since: res.body.state_since });
      renderAgents();
      status(text(res.body.state !== state ? "wb.changedLater" : "wb.changed", { name: agent.display_name }), "ok");
    } else {
      status(text("wb.changeFailed", { name: agent.display_name, detail: problem(res.body, res.status) }), "error");
    }
  } catch {
    status(S.networkError, "error");
  } finally {
    button.disabled = false;
    refreshSoon(0);
  }
}

// ---- queue membership (a dialog per agent) ------------------------------------------------------------------------
let editing = null; // {agent, opener, listed: Map(queue → level)}

function openMembers(agentId, opener) {
  const agent = board.agents.find((a) => a.id === agentId);
  if (!agent) return;
  const listed = new Map(agent.queues.filter((m) => !m.by_skill).map((m) => [m.queue, m.level]));
  const skilled = new Set(agent.queues.filter((m) => m.by_skill).map((m) => m.queue));
  editing = { agent, opener, listed };
  setText($("member-h"), text("wb.membersOf", { name: agent.display_name }));
  setText($("member-error"), "");
  $("member-queues").replaceChildren(
    ...board.queues.map((q, i) => {
      const id = `member-q${i}`;
      if (q.skill) {
        const note = text(skilled.has(q.queue) ? "wb.skillMember" : "wb.skillNotMember", { skill: q.skill });
        return el(
          "li",
          { class: "by-skill" },
          el("input", { type: "checkbox", id, checked: skilled.has(q.queue), disabled: true, "aria-describedby": `${id}-note` }),
          el("label", { for: id }, q.label, " ", el("code", {}, q.queue)),
          el("span", { id: `${id}-note`, class: "hint" }, note),
        );
      }
      const level = listed.get(q.queue);
      const box = el("input", { type: "checkbox", id, checked: level !== undefined, dataset: { queue: q.queue, queueId: q.queue_id } });
      const choose = el(
        "select",
        { id: `${id}-level`, disabled: level === undefined, "aria-label": text("wb.levelOf", { queue: q.label }) },
        [1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => el("option", { value: String(n), selected: n === (level ?? 1) }, String(n))),
      );
      box.addEventListener("change", () => {
        choose.disabled = !box.checked;
      });
      return el("li", {}, box, el("label", { for: id }, q.label, " ", el("code", {}, q.queue)), choose);
    }),
  );
  $("member-dialog").showModal();
}

async function saveMembers(event) {
  event.preventDefault();
  if (!editing) return;
  const { agent, listed } = editing;
  const wanted = [];
  for (const box of $("member-queues").querySelectorAll("input[type=checkbox]:not(:disabled)")) {
    const level = box.checked ? Number($(`${box.id}-level`).value) : null;
    const had = listed.has(box.dataset.queue) ? listed.get(box.dataset.queue) : null;
    if (level !== had) wanted.push({ queue: box.dataset.queue, id: box.dataset.queueId, level });
  }
  if (!wanted.length) {
    $("member-dialog").close();
    status(S["wb.noChange"], "info");
    return;
  }
  // Join the new queues first and leave the old ones last: a move never leaves the agent in no queue meanwhile.
  wanted.sort((a, b) => (a.level === null) - (b.level === null));
  const save = $("member-save");
  save.disabled = true;
  const failed = [];
  for (const change of wanted) {
    try {
      // Read, change this one agent, write: the other members stay as they are now.
      const current = await api(`/api/v1/queues/${encodeURIComponent(change.id)}/members`);
      if (!current.ok || !current.body) {
        failed.push(`${queueLabel(change.queue)} (${problem(current.body, current.status)})`);
        continue;
      }
      const members = { ...current.body.members };
      if (change.level === null) delete members[agent.name];
      else members[agent.name] = change.level;
      const put = await api(`/api/v1/queues/${encodeURIComponent(change.id)}/members`, { method: "PUT", body: { members } });
      if (!put.ok) failed.push(`${queueLabel(change.queue)} (${problem(put.body, put.status)})`);
    } catch {
      failed.push(`${queueLabel(change.queue)} (${S.networkError})`);
    }
  }
  save.disabled = false;
  refreshSoon(0);
  if (failed.length) {
    setText($("member-error"), text("wb.moveFailed", { queues: failed.join(", ") }));
    return;
  }
  $("member-dialog").close();
  status(text("wb.moved", { name: agent.display_name }), "ok");
}

// ---- calls in progress ------------------------------------------------------------------------------------------------
const monitoring = new Set();

function renderCalls() {
  const body = $("calls");
  const note = $("calls-note");
  const list = calls || [];
  for (const id of monitoring) if (!list.some((c) => c.call_id === id)) monitoring.delete(id); // those calls ended
  const focused = document.activeElement?.dataset?.call;
  body.replaceChildren(
    ...list.map((call) => {
      const listening = monitoring.has(call.call_id);
      const state = el(
        "td",
        {},
        S[`wb.call.${call.state}`] || call.state,
        call.on_hold ? el("span", { class: "tag hold" }, S["wb.onHold"]) : null,
        call.recording ? el("span", { class: "tag" }, S["wb.recording"]) : null,
        call.direction === "outbound" ? el("span", { class: "tag" }, S["wb.outbound"]) : null,
      );
      const listen = call.can_monitor
        ? el("button", { type: "button", class: "secondary", dataset: { action: "listen", call: call.call_id }, "aria-pressed": listening ? "true" : "false", "aria-label": text("wb.listenFor", { agent: agentLabel(call.agent || "") }) }, listening ? S["wb.listenStop"] : S["wb.listen"])
        : null;
      return el(
        "tr",
        { dataset: { callRow: call.call_id } },
        el("td", {}, call.queue ? queueLabel(call.queue) : "—"),
        state,
        el("td", { class: "nowrap" }, call.ani_masked ?? ""),
        el("td", {}, call.agent ? agentLabel(call.agent) : "—", call.consult_agent ? el("span", { class: "tag" }, text("wb.consulting", { agent: agentLabel(call.consult_agent) })) : null),
        el("td", { class: "num" }, call.since ? el("span", { dataset: { since: call.since } }) : "—"),
        el("td", {}, listen),
      );
    }),
  );
  if (focused) body.querySelector(`button[data-call="${CSS.escape(focused)}"]`)?.focus();
  setText($("call-count"), list.length);
  setText(note, !callsAvailable ? S["wb.callsUnavailable"] : calls !== null && !list.length ? S["wb.noCalls"] : "");
  tickClocks();
}

async function loadCalls() {
  if (!callsAvailable) return;
  let res;
  try {
    res = await api("/api/v1/calls/live");
  } catch {
    return;
  }
  if (res.status === 404 || res.status === 405 || res.status === 422) {
    callsAvailable = false; // this server has no list of live calls (422: "live" taken for a call id)
    calls = null;
  } else if (res.ok && Array.isArray(res.body)) {
    calls = res.body;
  } else {
    return;
  }
  renderCalls();
}

async function listen(callId, button) {
  const call = (calls || []).find((c) => String(c.call_id) === String(callId));
  if (!call) return;
  const on = !monitoring.has(call.call_id);
  button.disabled = true;
  try {
    const res = await api(`/api/v1/calls/${encodeURIComponent(call.call_id)}/monitor`, { method: "POST", body: { on } });
    if (res.ok) {
      if (on) monitoring.add(call.call_id);
      else monitoring.delete(call.call_id);
      status(on ? S["wb.listening"] : S["wb.listenStopped"], "ok");
      renderCalls();
    } else {
      status(text("wb.listenFailed", { detail: problem(res.body, res.status) }), "error");
    }
  } catch {
    status(S.networkError, "error");
  } finally {
    button.disabled = false;
  }
}

// ---- the chart: offered, answered, abandoned per 15 minutes -----------------------------------------------------------
const QUARTER_MS = 15 * 60 * 1000;
let chart = null;
let report = null; // {start, slots, rows}

function chartSeries() {
  if (!report) return null;
  const only = $("chart-queue").value;
  const offered = new Array(report.slots).fill(0);
  const answered = new Array(report.slots).fill(0);
  const abandoned = new Array(report.slots).fill(0);
  for (const row of report.rows) {
    if (only && row.queue !== only) continue;
    const slot = Math.round((Date.parse(row.interval_start) - report.start) / QUARTER_MS);
    if (slot < 0 || slot >= report.slots) continue;
    offered[slot] += row.offered;
    answered[slot] += row.answered;
    abandoned[slot] += row.abandoned;
  }
  const labels = Array.from({ length: report.slots }, (_, i) => hhmm(report.start + i * QUARTER_MS));
  return { labels, offered, answered, abandoned };
}

function renderChart() {
  const series = chartSeries();
  if (!series) return;
  $("chart-rows").replaceChildren(
    ...series.labels.map((label, i) => el("tr", {}, el("th", { scope: "row" }, label), el("td", { class: "num" }, String(series.offered[i])), el("td", { class: "num" }, String(series.answered[i])), el("td", { class: "num" }, String(series.abandoned[i])))),
  );
  const Chart = window.Chart;
  if (!Chart) {
    const note = $("chart-note");
    note.hidden = false;
    setText(note, S["wb.chart.noChart"]);
    return;
  }
  if (!chart) {
    Chart.defaults.color = "#4f5b69";
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    chart = new Chart($("chart"), {
      type: "bar",
      data: {
        labels: series.labels,
        datasets: [
          // Three kinds of mark, not three colours only: a solid line with dots, bars, a dashed line with triangles.
          { type: "line", label: S["wb.chart.offered"], data: series.offered, borderColor: "#1b2430", backgroundColor: "#1b2430", borderWidth: 2, pointStyle: "circle", pointRadius: 3, order: 0 },
          { type: "bar", label: S["wb.chart.answered"], data: series.answered, backgroundColor: "#0b57b5", order: 2 },
          { type: "line", label: S["wb.chart.abandoned"], data: series.abandoned, borderColor: "#b3261e", backgroundColor: "#b3261e", borderWidth: 2, borderDash: [6, 4], pointStyle: "triangle", pointRadius: 5, order: 1 },
        ],
      },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } }, x: { ticks: { autoSkip: true, maxRotation: 0 } } },
        plugins: { legend: { position: "bottom", labels: { usePointStyle: true, sort: (a, b) => a.datasetIndex - b.datasetIndex } } },
      },
    });
    return;
  }
  chart.data.labels = series.labels;
  chart.data.datasets[0].data = series.offered;
  chart.data.datasets[1].data = series.answered;
  chart.data.datasets[2].data = series.abandoned;
  chart.update();
}

async function loadChart() {
  const hours = Number($("chart-hours").value) || 4;
  const slots = hours * 4;
  const start = (Math.floor(serverNow() / QUARTER_MS) + 1 - slots) * QUARTER_MS; // the current quarter is the last
  const params = new URLSearchParams({ interval: "15min", since: new Date(start).toISOString() });
  let res;
  try {
    res = await api(`/api/v1/reports/queues?${params}`);
  } catch {
    return;
  }
  const note = $("chart-note");
  if (!res.ok || !res.body) {
    note.hidden = false;
    setText(note, text("wb.chart.failed", { detail: problem(res.body, res.status) }));
    return;
  }
  note.hidden = true;
  report = { start, slots, rows: res.body.rows };
  renderChart();
}

function fillChartQueues() {
  const select = $("chart-queue");
  const keep = select.value;
  const wanted = ["", ...board.queues.map((q) => q.queue)].join("\n");
  if ([...select.options].map((o) => o.value).join("\n") === wanted) return;
  select.replaceChildren(select.options[0], ...board.queues.map((q) => el("option", { value: q.queue }, q.label)));
  select.value = [...select.options].some((o) => o.value === keep) ? keep : "";
}

// ---- snapshots and refreshing -----------------------------------------------------------------------------------------
function adopt(fresh) {
  board = fresh;
  skew = Date.parse(board.at) - Date.now();
  setText($("updated"), text("wb.updated", { time: clock(Date.parse(board.at)) }));
  renderQueues();
  renderAgents();
  renderAlerts();
  fillChartQueues();
}

const MIN_GAP_MS = 1500;
let timer = null;
let last = 0;
let loading = false;

function refreshSoon(delay = 300) {
  if (timer) return;
  const wait = Math.max(delay, MIN_GAP_MS - (Date.now() - last));
  timer = setTimeout(refresh, wait);
}

async function refresh() {
  timer = null;
  if (loading) {
    refreshSoon(); // one at a time: the next starts when this one is back
    return;
  }
  loading = true;
  last = Date.now();
  try {
    const [res] = await Promise.all([api("/api/v1/wallboard"), loadCalls()]);
    if (res.status === 403) {
      location.reload();
      return;
    }
    if (res.ok && res.body) adopt(res.body);
  } catch {
    // offline for a moment: the next event or the periodic refresh tries again
  } finally {
    loading = false;
  }
}

let chartTimer = null;

function chartSoon(delay = 5000) {
  if (!chartTimer) {
    chartTimer = setTimeout(() => {
      chartTimer = null;
      loadChart();
    }, delay);
  }
}

// ---- the live stream ------------------------------------------------------------------------------------------------------
let lastEventId = null;
let backoff = 1000;

function setLive(on) {
  const node = $("live-state");
  setText(node, on ? S["wb.live"] : S["wb.reconnecting"]);
  node.classList.toggle("off", !on);
}

function apply(event) {
  const name = event.name || "";
  const p = event.payload || {};
  if (name === "agent.state") {
    const agent = board.agents.find((a) => a.name === p.agent);
    if (agent) {
      Object.assign(agent, { state: p.state, reason: p.reason ?? null, reason_label: p.reason ? auxLabel(p.reason) : null, since: event.at || agent.since });
      renderAgents();
    }
  } else if (name === "queue.stats") {
    const q = board.queues.find((x) => x.queue === p.queue);
    if (q && typeof p.waiting === "number") {
      q.calls_waiting = p.waiting;
      if (p.waiting === 0) q.longest_wait_s = null;
      renderQueues();
      renderAlerts();
    }
  }
  if (name.startsWith("call.") || name.startsWith("agent.") || name.startsWith("queue.")) refreshSoon();
  if (name === "call.ended" || name === "call.hangup") chartSoon();
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const resume = lastEventId === null ? "" : `?last_event_id=${encodeURIComponent(lastEventId)}`;
  let ws;
  try {
    ws = new WebSocket(`${scheme}://${location.host}/api/v1/events${resume}`);
  } catch {
    setTimeout(connect, backoff);
    return;
  }
  ws.addEventListener("message", (message) => {
    let data;
    try {
      data = JSON.parse(message.data);
    } catch {
      return;
    }
    if (data.type === "hello") {
      backoff = 1000;
      setLive(true);
      if (lastEventId === null) refreshSoon(0); // nothing to resume from: what happened before is in a snapshot
    } else if (data.type === "resync") {
      refreshSoon(0);
      loadChart();
    } else if (data.type === "event") {
      if (typeof data.id === "number") lastEventId = data.id;
      apply(data);
    }
  });
  ws.addEventListener("close", (closed) => {
    setLive(false);
    if (closed.code === 4401) {
      location.reload(); // logged out: the page sends to the login
      return;
    }
    if (closed.code === 4403) return; // not for this role: nothing to retry
    const wait = backoff * (0.75 + Math.random() / 2);
    backoff = Math.min(backoff * 2, 30000);
    setTimeout(connect, wait);
  });
}

// ---- wiring ---------------------------------------------------------------------------------------------------------------
document.addEventListener("click", (event) => {
  const button = event.target.closest?.("button[data-action]");
  if (!button) return;
  const id = Number(button.dataset.agent);
  if (button.dataset.action === "state") changeState(id, button);
  else if (button.dataset.action === "queues") openMembers(id, button);
  else if (button.dataset.action === "listen") listen(button.dataset.call, button);
});

$("member-form").addEventListener("submit", saveMembers);
$("member-cancel").addEventListener("click", () => $("member-dialog").close());
$("member-dialog").addEventListener("close", () => {
  const opener = editing?.opener;
  editing = null;
  if (opener?.isConnected) opener.focus();
});
$("chart-queue").addEventListener("change", renderChart);
$("chart-hours").addEventListener("change", loadChart);

const full = $("fullscreen");
if (document.fullscreenEnabled) {
  full.hidden = false;
  full.addEventListener("click", () => (document.fullscreenElement ? document.exitFullscreen() : document.documentElement.requestFullscreen()));
  document.addEventListener("fullscreenchange", () => {
    const on = Boolean(document.fullscreenElement);
    document.body.classList.toggle("wall", on);
    setText(full, on ? S["wb.exitFullscreen"] : S["wb.fullscreen"]);
  });
}

adopt(board);
renderCalls();
loadCalls();
loadChart();
connect();
setInterval(() => {
  tickClocks();
  tickQueues();
  renderAlerts();
}, 1000);
setInterval(() => refreshSoon(0), 15000);
setInterval(loadChart, 60000);
