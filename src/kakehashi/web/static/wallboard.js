// The supervisors' wallboard (見える化, /wallboard): queues, alerts, agents, calls in progress and the calls of the
// last hours, live, with the supervisor's actions.
//
// Data: the floor's snapshot (GET /api/v1/wallboard; the first one is embedded in the page), the calls in progress
// (GET /api/v1/calls/live), the calls per 15 minutes (GET /api/v1/reports/queues?interval=15min) and the predictive
// campaigns being paced (GET /api/v1/campaigns/pacing, then their campaign.pacing events, applied in place).
// Live: the event stream (/api/v1/events). An agent's state applies at once; any call, agent or queue event fetches
// a fresh snapshot (at most every 1.5 s, and every 15 s anyway). The socket (events.js) reconnects with backoff and resumes
// after the last event id it saw; a "resync" (the server no longer holds what was missed) refetches everything.
// Clocks (time in state, longest wait, call time) and the wait alerts tick every second between snapshots.
// Safety: every value from the server reaches the page as text (textContent, DOM properties), never as HTML.
// Accessibility: alerts and the results of actions are announced through polite live regions; alerts and states
// are words (with an icon), never colour alone; rows are updated in place, so focus stays where it was.

import { connectEvents } from "/static/events.js";
import { $, S, api, duration, h, problem, setText, status, text } from "/static/lib.js";

const TZ = "Asia/Tokyo";
const STATES = ["available", "ringing", "on_call", "wrap_up", "break", "missed", "logged_out"];

let board = JSON.parse($("snapshot").textContent);
let calls = null; // null: not loaded (or the server has no list of live calls)
let callsAvailable = true;
let skew = 0; // server clock − browser clock (from the snapshot's "at")

// ---- small helpers --------------------------------------------------------------------------------------------
const serverNow = () => Date.now() + skew;

function percent(value, digits = 0) {
  return value === null || value === undefined ? "—" : `${(value * 100).toFixed(digits)}%`;
}

function clock(ms) {
  return new Date(ms).toLocaleTimeString("ja-JP", { timeZone: TZ, hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function hhmm(ms) {
  return new Date(ms).toLocaleTimeString("ja-JP", { timeZone: TZ, hour: "2-digit", minute: "2-digit" });
}

const stateLabel = (state) => S[`wb.state.${state}`] || state;
const queueLabel = (name) => board.queues.find((q) => q.queue === name)?.label || name;
const agentLabel = (name) => board.agents.find((a) => a.name === name)?.display_name || name;
const auxLabel = (code) => board.aux_codes.find((c) => c.code === code)?.label || code;

// ---- the screen reader's polite announcements -------------------------------------------------------------------
function announce(messages) {
  const region = $("announce");
  for (const message of messages) region.append(h("p", {}, message)); // each addition is read out
  while (region.childElementCount > 3) region.firstElementChild.remove();
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
  const value = h("span", { class: `fig-value ${valueClass}` });
  const note = h("span", { class: "fig-note" });
  return { row: h("div", {}, h("dt", {}, label), h("dd", {}, value, note)), value, note };
}

function makeTile(q) {
  const id = `wbq-${++tileSerial}`;
  const title = h("span", { class: "q-label" });
  const code = h("code", {});
  const flag = h("p", { class: "tile-flag" });
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
  const node = h(
    "article",
    { class: "queue-tile", dataset: { queue: q.queue }, "aria-labelledby": `${id}-h` },
    h("h3", { id: `${id}-h` }, title, " ", code),
    flag,
    h("dl", { class: "big-figs" }, waiting.row, longest.row, sl.row, abandon.row),
    h("dl", { class: "small-figs" }, Object.values(small).map((f) => f.row)),
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
    setText(tile.small.asa.value, q.asa_s === null ? "—" : duration(q.asa_s));
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
    setText(tile.longest.value, wait === null ? "—" : duration(wait));
    setText(tile.longest.note, late ? `⚠ ${text("wb.overLimit")} · ${text("wb.waitLimit", { limit: duration(q.wait_limit_s) })}` : text("wb.waitLimit", { limit: duration(q.wait_limit_s) }));
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
      found.push({ key: `${q.queue}:wait`, kind: "wait", message: text("wb.alert.wait", { queue: q.label, value: duration(wait), limit: duration(q.wait_limit_s) }) });
    }
  }
  // A predictive campaign whose abandon rate reached its target (24 hours: Ofcom's window; 30 days: the FCC's).
  for (const [id, { data: d }] of paced) {
    for (const [window, rate, answered] of [["24h", d.abandon_rate_24h, d.answered_24h], ["30d", d.abandon_rate_30d, d.answered_30d]]) {
      if (answered && abandonLevel(rate, d.abandon_target) === "alarm") {
        found.push({ key: `campaign:${id}:${window}`, kind: "abandon", message: text(`wb.alert.abandon_${window}`, { campaign: d.name ?? "", value: percent(rate, 1), limit: percent(d.abandon_target, 1) }) });
      }
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
      const words = h("span", { class: "alert-text" });
      shown = { li: h("li", { class: `alert alert-${alert.kind}`, dataset: { alert: alert.key } }, h("span", { class: "alert-icon", "aria-hidden": "true" }, "⚠"), " ", words), words, message: alert.message };
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
    h("option", { value: "available" }, S["wb.makeAvailable"]),
    board.aux_codes.length ? h("optgroup", { label: S["wb.breakGroup"] }, board.aux_codes.map((c) => h("option", { value: `break:${c.code}` }, c.label))) : null,
    h("option", { value: "logged_out" }, S["wb.logOut"]),
  );
  if ([...select.options].some((o) => o.value === keep)) select.value = keep;
}

function makeRow(agent) {
  const select = h("select", { class: "choice" });
  fillChoices(select);
  const change = h("button", { type: "button", class: "secondary", dataset: { action: "state", agent: agent.id } }, S["wb.change"]);
  const queues = h("button", { type: "button", class: "secondary", dataset: { action: "queues", agent: agent.id }, "aria-haspopup": "dialog" }, S["wb.queues"]);
  const name = h("span", { class: "agent-name" });
  const login = h("code", {});
  const badge = h("span", { class: "state" });
  const reason = h("span", { class: "reason" });
  const since = h("span", { class: "since" });
  const tags = h("span", { class: "tags" });
  const tr = h(
    "tr",
    { dataset: { agentRow: agent.name } },
    h("th", { scope: "row" }, name, " ", login),
    h("td", { class: "nowrap" }, badge, reason),
    h("td", { class: "num" }, since),
    h("td", {}, h("span", { class: "actions" }, select, change)),
    h("td", {}, h("span", { class: "queue-cell" }, tags, queues)),
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
        ? agent.queues.map((m) => h("span", { class: m.by_skill ? "tag skill" : "tag" }, queueLabel(m.queue), m.by_skill ? ` (${S["wb.bySkill"]})` : ""))
        : [h("span", { class: "muted" }, S["wb.noQueue"])]),
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
    ...STATES.filter((s) => counts[s]).map((s) => h("li", { dataset: { state: s } }, h("span", { class: `state state-${s}` }, stateLabel(s)), " ", h("strong", {}, String(counts[s])))),
  );
  tickClocks();
}

function tickClocks() {
  const now = serverNow();
  for (const node of document.querySelectorAll("[data-since]")) {
    setText(node, duration((now - Date.parse(node.dataset.since)) / 1000));
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
        return h(
          "li",
          { class: "by-skill" },
          h("input", { type: "checkbox", id, checked: skilled.has(q.queue), disabled: true, "aria-describedby": `${id}-note` }),
          h("label", { for: id }, q.label, " ", h("code", {}, q.queue)),
          h("span", { id: `${id}-note`, class: "hint" }, note),
        );
      }
      const level = listed.get(q.queue);
      const box = h("input", { type: "checkbox", id, checked: level !== undefined, dataset: { queue: q.queue, queueId: q.queue_id } });
      const choose = h(
        "select",
        { id: `${id}-level`, disabled: level === undefined, "aria-label": text("wb.levelOf", { queue: q.label }) },
        [1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => h("option", { value: String(n), selected: n === (level ?? 1) }, String(n))),
      );
      box.addEventListener("change", () => {
        choose.disabled = !box.checked;
      });
      return h("li", {}, box, h("label", { for: id }, q.label, " ", h("code", {}, q.queue)), choose);
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
      const state = h(
        "td",
        {},
        S[`wb.call.${call.state}`] || call.state,
        call.on_hold ? h("span", { class: "tag hold" }, S["wb.onHold"]) : null,
        call.recording ? h("span", { class: "tag" }, S["wb.recording"]) : null,
        call.direction === "outbound" ? h("span", { class: "tag" }, S["wb.outbound"]) : null,
      );
      const listen = call.can_monitor
        ? h("button", { type: "button", class: "secondary", dataset: { action: "listen", call: call.call_id }, "aria-pressed": listening ? "true" : "false", "aria-label": text("wb.listenFor", { agent: agentLabel(call.agent || "") }) }, listening ? S["wb.listenStop"] : S["wb.listen"])
        : null;
      return h(
        "tr",
        { dataset: { callRow: call.call_id } },
        h("td", {}, call.queue ? queueLabel(call.queue) : "—"),
        state,
        h("td", { class: "nowrap" }, call.ani_masked ?? ""),
        h("td", {}, call.agent ? agentLabel(call.agent) : "—", call.consult_agent ? h("span", { class: "tag" }, text("wb.consulting", { agent: agentLabel(call.consult_agent) })) : null),
        h("td", { class: "num" }, call.since ? h("span", { dataset: { since: call.since } }) : "—"),
        h("td", {}, listen),
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

// ---- predictive campaigns: their pacing and abandon rates ---------------------------------------------------------------
// First paint from GET /api/v1/campaigns/pacing (name and target with the figures); then each campaign.pacing event
// (the same figures, every 2 s per campaign) updates its row in place. A campaign the page does not know yet, and
// the campaigns that stopped being paced, come with the next read of the list: at once for a new one (at most every
// PACING_GAP_MS), and every PACING_EVERY_MS anyway.
const PACING_GAP_MS = 5000;
const PACING_EVERY_MS = 30000;
const paced = new Map(); // campaign id → {data, parts}
let pacingTimer = null;
let pacingLast = 0;

/** "alarm" at or above the campaign's target, "warn" from 80 % of it, else "". */
function abandonLevel(rate, target) {
  if (!(target > 0) || typeof rate !== "number") return "";
  if (rate >= target - 1e-9) return "alarm";
  if (rate >= 0.8 * target - 1e-9) return "warn";
  return "";
}

function rateCell(kind) {
  const value = h("span", { class: "p-rate" });
  const flag = h("span", { class: "p-flag" });
  const note = h("span", { class: "fig-note" });
  return { td: h("td", { class: `p-abandon p-${kind}` }, value, flag, note), value, flag, note };
}

function makePacingRow(id) {
  const parts = {
    name: h("th", { scope: "row" }),
    level: h("td", { class: "num p-level" }),
    flight: h("td", { class: "num p-flight" }),
    waiting: h("td", { class: "num p-waiting" }),
    agents: h("td", { class: "num p-agents" }),
    day: rateCell("day"),
    month: rateCell("month"),
  };
  parts.tr = h("tr", { dataset: { pacing: id } }, parts.name, parts.level, parts.flight, parts.waiting, parts.agents, parts.day.td, parts.month.td);
  return parts;
}

function fillRate(cell, rate, abandoned, answered, estimated, target) {
  const level = abandonLevel(answered ? rate : null, target);
  setText(cell.value, answered ? percent(rate, 1) : "—");
  setText(cell.flag, level ? ` ⚠ ${S[level === "alarm" ? "wb.pacing.over" : "wb.pacing.near"]}` : "");
  // People the machine detector hung up on count as abandoned, estimated from its false-machine rate.
  const counts = text("wb.pacing.counts", { abandoned, answered }) + (estimated > 0 ? ` ${text("wb.pacing.estimated", { n: estimated.toFixed(1) })}` : "");
  setText(cell.note, `${counts} · ${text("wb.pacing.target", { target: percent(target, 1) })}`);
  cell.td.classList.toggle("abandon-warn", level === "warn");
  cell.td.classList.toggle("abandon-alarm", level === "alarm");
}

function drawPacing(entry) {
  const { data: d, parts } = entry;
  setText(parts.name, d.name ?? "");
  setText(parts.level, text("wb.pacing.level", { level: Number(d.dial_level || 0).toFixed(1) }));
  setText(parts.flight, d.calls_in_flight ?? 0);
  setText(parts.waiting, d.calls_waiting ?? 0);
  parts.waiting.classList.toggle("busy", (d.calls_waiting ?? 0) > 0);
  setText(parts.agents, `${d.agents_ready ?? 0} / ${d.agents_active ?? 0}`);
  fillRate(parts.day, d.abandon_rate_24h, d.abandoned_24h ?? 0, d.answered_24h ?? 0, d.estimated_24h ?? 0, d.abandon_target);
  fillRate(parts.month, d.abandon_rate_30d, d.abandoned_30d ?? 0, d.answered_30d ?? 0, d.estimated_30d ?? 0, d.abandon_target);
}

function showPacingPanel() {
  setText($("pacing-count"), paced.size);
  $("pacing").hidden = paced.size === 0;
}

/** The list as the API gave it: rows kept (and updated) in its order, new ones added, the others removed. */
function adoptPacing(list) {
  const body = $("pacing-rows");
  const seen = new Set();
  let previous = null;
  for (const data of list) {
    const id = String(data.campaign_id);
    let entry = paced.get(id);
    if (!entry) {
      entry = { data, parts: makePacingRow(id) };
      paced.set(id, entry);
    }
    entry.data = data;
    seen.add(id);
    drawPacing(entry);
    const expected = previous ? previous.parts.tr.nextSibling : body.firstChild;
    if (expected !== entry.parts.tr) body.insertBefore(entry.parts.tr, expected);
    previous = entry;
  }
  for (const [id, entry] of paced) {
    if (!seen.has(id)) {
      entry.parts.tr.remove();
      paced.delete(id);
    }
  }
  showPacingPanel();
}

async function loadPacing() {
  pacingLast = Date.now();
  let res;
  try {
    res = await api("/api/v1/campaigns/pacing");
  } catch {
    return;
  }
  if (res.ok && Array.isArray(res.body)) adoptPacing(res.body);
}

function pacingSoon() {
  if (pacingTimer) return;
  pacingTimer = setTimeout(() => {
    pacingTimer = null;
    loadPacing();
  }, Math.max(0, PACING_GAP_MS - (Date.now() - pacingLast)));
}

/** A campaign.pacing event: its figures in place (the name and target stay those the list gave). */
function applyPacing(p) {
  const entry = paced.get(String(p.campaign_id));
  if (!entry) {
    pacingSoon(); // a campaign paced since the list was read: its name and target come with the list
    return;
  }
  const figures = {};
  for (const [key, value] of Object.entries(p)) if (typeof value === "number") figures[key] = value;
  Object.assign(entry.data, figures, { campaign_id: entry.data.campaign_id });
  drawPacing(entry);
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
    ...series.labels.map((label, i) => h("tr", {}, h("th", { scope: "row" }, label), h("td", { class: "num" }, String(series.offered[i])), h("td", { class: "num" }, String(series.answered[i])), h("td", { class: "num" }, String(series.abandoned[i])))),
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
  select.replaceChildren(select.options[0], ...board.queues.map((q) => h("option", { value: q.queue }, q.label)));
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
  if (name === "campaign.pacing") applyPacing(p);
  if (name.startsWith("call.") || name.startsWith("agent.") || name.startsWith("queue.")) refreshSoon();
  if (name === "call.ended" || name === "call.hangup") chartSoon();
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
loadPacing();
connectEvents({
  onEvent: apply,
  onLive: setLive,
  // Nothing to resume from (the first connection): what happened before is in a fresh snapshot.
  onHello: ({ resumed }) => { if (!resumed) refreshSoon(0); },
  onResync: () => {
    refreshSoon(0);
    loadChart();
    loadPacing();
  },
});
setInterval(() => {
  tickClocks();
  tickQueues();
  renderAlerts();
}, 1000);
setInterval(() => refreshSoon(0), 15000);
setInterval(loadChart, 60000);
setInterval(loadPacing, PACING_EVERY_MS);
