// The agent desktop: the agent's state, the call and its controls, the caller's card the moment the phone
// rings (the screen pop rides on the WebSocket's ringing event), a new order from the keyboard, and a wrap-up
// that needs a result code and notes. The customer card and the new-customer form are customers.js's.
// Rule as everywhere: data from the API goes into the page as text (h()), never as HTML.

import { showCampaignHistory } from "/static/campaign_history.js";
import { openCustomer, showPop, yen } from "/static/customers.js";
import { connectEvents } from "/static/events.js";
import { $, S, api, duration, h, status } from "/static/lib.js";

const ME = $("deskbar").dataset.agent; // "" when the user is not an agent
const state = {
  agent: null, // GET /agents/me
  call: null, // the call shown (ringing at me, mine, or one I am consulted on)
  wrapCall: null, // my call in wrap-up
  handoff: null, // a call I transferred away: {call_id, customer_id} while my wrap-up runs
  customer: null, // the customer on the card (id, name)
  targets: null,
  phone: null, // the browser softphone, when the center has one
  incoming: false, // the softphone rings
};
// For tests and the benchmark: when each screen pop's message arrived and when its card was drawn (ms since
// the epoch, sub-ms precision).
window.kakehashiDesk = { pops: [] };

const stateLabel = (s) => S[`desk.state.${s}`] || s;
const callLabel = (s) => S[`desk.call.${s}`] || s;
const now = () => performance.timeOrigin + performance.now();

/** Time since ``iso`` (a state's or call's start), "" when there is none. */
const elapsed = (iso) => (iso ? duration((Date.now() - Date.parse(iso)) / 1000) : "");

async function command(path, body) {
  const r = await api(path, { method: "POST", body: body ? JSON.stringify(body) : undefined });
  if (!r.ok) status(r.body?.detail || S.networkError, "error");
  return r;
}

// ---- state ------------------------------------------------------------------------------------------
let chosen = 0; // bumps when the agent picks a state: a refresh begun before that must not undo it
let refreshing = 0;
let inflight = null; // the refresh under way (a key pressed meanwhile waits for it)

function refresh() {
  const running = load().finally(() => { if (inflight === running) inflight = null; });
  inflight = running;
  return running;
}

async function load() {
  if (!ME) return;
  const mine = ++refreshing;
  const before = chosen;
  const [me, calls] = await Promise.all([api("/api/v1/agents/me"), api("/api/v1/calls/live")]);
  if (mine !== refreshing) return; // a newer refresh is under way
  if (me.ok && before === chosen) state.agent = me.body;
  if (calls.ok) {
    const live = calls.body;
    state.call = live.find((c) => c.state !== "wrap_up" && (c.agent === ME || c.consult_agent === ME)) || null;
    state.wrapCall = live.find((c) => c.state === "wrap_up" && c.agent === ME) || null;
  }
  render();
}

function render() {
  const a = state.agent;
  if (a) {
    const badge = $("state-badge");
    badge.textContent = stateLabel(a.state) + (a.state === "break" && a.state_reason ? `（${a.state_reason}）` : "");
    badge.dataset.state = a.state;
    $("state-timer").dataset.since = a.state_since;
    $("go-available").disabled = a.state === "available";
  }
  renderCall();
  renderWrap();
  tick();
}

function renderCall() {
  const c = state.call;
  $("call-empty").hidden = Boolean(c);
  $("call-live").hidden = !c;
  if (!c) return;
  const consultedMe = c.consult_agent === ME && c.agent !== ME;
  const consulting = c.agent === ME && Boolean(c.consult_agent);
  const shown = consultedMe ? "consulted" : c.on_hold && !consulting ? "held" : c.state;
  $("call-state").textContent = callLabel(shown);
  $("call-state").dataset.state = shown;
  $("call-number").textContent = c.ani_masked;
  $("call-queue").textContent = c.queue || "";
  $("call-queue").hidden = !c.queue;
  $("call-timer").dataset.since = c.since;
  const talking = c.state === "connected" && c.agent === ME;
  const ringingHere = (c.state === "ringing" && c.agent === ME) || consultedMe;
  $("btn-answer").disabled = !ringingHere;
  $("btn-hold").disabled = !talking || consulting;
  $("btn-hold").setAttribute("aria-pressed", String(Boolean(c.on_hold) && !consulting));
  $("btn-transfer").disabled = !talking || consulting;
  $("btn-hangup").disabled = !talking || consulting;
  $("btn-complete").hidden = !consulting;
  $("btn-cancel").hidden = !consulting;
  $("btn-mute").disabled = !state.phone || !talking;
  $("dtmf").hidden = !state.phone || !talking;
  const line = $("consult-line");
  line.hidden = !(consulting || consultedMe);
  if (consulting) line.textContent = `${S["desk.consulting"]}: ${nameOf(c.consult_agent)}`;
  else if (consultedMe) line.textContent = `${S["desk.consultedBy"]}: ${nameOf(c.agent)}`;
}

function renderWrap() {
  const inWrap = Boolean(state.wrapCall) || (state.agent?.state === "wrap_up" && Boolean(state.handoff));
  const panel = $("wrap");
  const opening = inWrap && panel.hidden;
  panel.hidden = !inWrap;
  if (!inWrap) return;
  $("wrap-timer").dataset.since = state.agent?.state === "wrap_up" ? state.agent.state_since : "";
  // Into the wrap-up, unless the agent is still typing an order or a new customer (they Tab there after).
  const typingOrder = $("order").contains(document.activeElement) && orderLines().length > 0;
  if (opening && !typingOrder && !$("new").contains(document.activeElement)) {
    $("w-disposition").focus();
  }
}

function nameOf(agent) {
  const found = state.targets?.agents.find((a) => a.name === agent);
  return found ? `${found.display_name}（${agent}）` : agent || "";
}

function tick() {
  for (const id of ["state-timer", "call-timer", "wrap-timer"]) {
    const el = $(id);
    if (el) el.textContent = elapsed(el.dataset.since);
  }
}

// ---- live events ------------------------------------------------------------------------------------
let refreshTimer = 0;

function connect() {
  if (!ME) return;
  // A ringing phone must reach the agent fast: reconnect sooner than the wallboard does (events.js).
  // The desk's other panels (outbound.js) follow the same stream: each event and resync is re-announced.
  const resync = () => { document.dispatchEvent(new Event("desk:resync")); refresh(); };
  connectEvents({ onEvent, onResync: resync, initialDelay: 500, maxDelay: 10_000 });
}

function onEvent(m, received = now()) {
  if (m.screen_pop) {
    showPop(m.screen_pop);
    showCampaignHistory(m.screen_pop); // the caller's outbound campaigns, known customer or not
    window.kakehashiDesk.pops.push({ call_id: m.payload.call_id, received, at: now() });
    document.body.dataset.pops = String(window.kakehashiDesk.pops.length);
  }
  const p = m.payload;
  if (m.name === "call.transferred" && p.from === ME && p.target !== ME) {
    state.handoff = { call_id: p.call_id, customer_id: p.customer_id };
  }
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => { refreshTimer = 0; refresh(); }, 30); // a burst of events makes one refresh
  document.dispatchEvent(new CustomEvent("desk:event", { detail: m })); // after the pop: never delays it
}

/** A key pressed right after an event must act on the call as it is now: run the pending refresh first. */
async function settle() {
  if (refreshTimer) {
    clearTimeout(refreshTimer);
    refreshTimer = 0;
    await refresh();
  } else if (inflight) {
    await inflight;
  }
}

// ---- agent state ------------------------------------------------------------------------------------
async function chooseState(body) {
  chosen++;
  const r = await command("/api/v1/agents/me/state", body);
  if (r.ok) {
    state.agent = r.body;
    render();
  }
}

// ---- call controls ----------------------------------------------------------------------------------
async function answer() {
  await settle();
  const c = state.call;
  if (!c || $("btn-answer").disabled) return;
  if (state.phone && state.incoming) {
    state.phone.answer();
  } else {
    const r = await command(`/api/v1/calls/${c.call_id}/answer`);
    if (!r.ok) return;
  }
  focusWork();
}

function focusWork() {
  // Talking now: the keyboard goes where the work is — the new customer's form, or the order.
  if (!$("new").hidden) return $("f-postal").focus();
  if (!$("order").hidden) focusLine(0);
}

async function toggleHold() {
  await settle();
  const c = state.call;
  if (!c || $("btn-hold").disabled) return;
  await command(`/api/v1/calls/${c.call_id}/hold`, { on: !c.on_hold });
  refresh();
}

async function hangup() {
  await settle();
  const c = state.call;
  if (!c || $("btn-hangup").disabled) return;
  await command(`/api/v1/calls/${c.call_id}/hangup`);
  refresh();
}

function toggleMute() {
  if (!state.phone) return;
  const on = $("btn-mute").getAttribute("aria-pressed") !== "true";
  state.phone.mute(on);
  $("btn-mute").setAttribute("aria-pressed", String(on));
}

// ---- transfer dialog --------------------------------------------------------------------------------
const dialog = $("transfer-dialog");

async function openTransfer() {
  await settle();
  if (!state.call || $("btn-transfer").disabled) return;
  const r = await api("/api/v1/transfer-targets");
  if (!r.ok) return status(r.body?.detail || S.networkError, "error");
  state.targets = r.body;
  $("t-agent").replaceChildren(...r.body.agents.map((a) =>
    h("option", { value: a.name, disabled: a.state !== "available" },
      `${a.display_name}（${a.name}）— ${stateLabel(a.state)}`)));
  const firstFree = r.body.agents.find((a) => a.state === "available");
  if (firstFree) $("t-agent").value = firstFree.name;
  $("t-queue").replaceChildren(...r.body.queues.map((q) => h("option", { value: q.name }, q.label)));
  $("transfer-error").hidden = true;
  showKind();
  dialog.showModal();
  $("t-agent").focus();
}

function kind() {
  return dialog.querySelector("input[name=kind]:checked").value;
}

function showKind() {
  for (const el of dialog.querySelectorAll("[data-kind]")) el.hidden = el.dataset.kind !== kind();
}

async function submitTransfer(e) {
  e.preventDefault();
  const to = kind();
  const target = { agent: $("t-agent").value, queue: $("t-queue").value, number: $("t-number").value.trim() }[to];
  if (!target) {
    $("transfer-error").textContent = S["desk.pickTarget"];
    $("transfer-error").hidden = false;
    return;
  }
  const attended = to === "agent" && $("t-attended").checked;
  const c = state.call;
  const r = await api(`/api/v1/calls/${c.call_id}/transfer`, {
    method: "POST", body: JSON.stringify({ to, target, attended }),
  });
  if (!r.ok) {
    $("transfer-error").textContent = r.body?.detail || S.networkError;
    $("transfer-error").hidden = false;
    return;
  }
  if (!attended) state.handoff = { call_id: c.call_id, customer_id: c.customer_id };
  dialog.close();
  status(attended ? S["desk.consultStarted"] : S["desk.transferred"], "ok");
  refresh();
}

async function completeTransfer() {
  const c = state.call;
  if (!c) return;
  const r = await command(`/api/v1/calls/${c.call_id}/transfer/complete`);
  if (r.ok) state.handoff = { call_id: c.call_id, customer_id: c.customer_id };
  refresh();
}

async function cancelTransfer() {
  if (state.call) await command(`/api/v1/calls/${state.call.call_id}/transfer/cancel`);
  refresh();
}

// ---- wrap-up ----------------------------------------------------------------------------------------
function wrapError(id, message) {
  const err = $(`${id}-err`);
  err.textContent = message;
  err.hidden = !message;
  if (message) $(id).setAttribute("aria-invalid", "true");
  else $(id).removeAttribute("aria-invalid");
}

async function finishWrap(e) {
  e?.preventDefault();
  const disposition = $("w-disposition").value;
  const notes = $("w-notes").value.trim();
  wrapError("w-disposition", disposition ? "" : S["desk.needDisposition"]);
  wrapError("w-notes", notes ? "" : S["desk.needNotes"]);
  if (!disposition) return $("w-disposition").focus();
  if (!notes) return $("w-notes").focus();
  let r;
  if (state.wrapCall) {
    const body = { disposition, notes };
    if (state.wrapCall.customer_id == null && state.customer) body.customer_id = state.customer.id;
    r = await api(`/api/v1/calls/${state.wrapCall.call_id}/wrap-up`, { method: "POST", body: JSON.stringify(body) });
  } else {
    // A call I transferred: it is closed by whoever has it; my notes go on the customer's timeline.
    const customer = state.handoff?.customer_id ?? state.customer?.id;
    if (customer != null) {
      await api(`/api/v1/customers/${customer}/contacts`, { method: "POST", body: JSON.stringify({
        channel: "call", direction: "inbound", summary: `${S["desk.transferNote"]} ${disposition}`, body: notes,
      }) });
    }
    r = await api("/api/v1/agents/me/wrap-up-done", { method: "POST" });
  }
  if (!r.ok) {
    $("wrap-errors").textContent = r.body?.detail || S.networkError;
    $("wrap-errors").hidden = false;
    return;
  }
  $("wrap-errors").hidden = true;
  $("wrap-form").reset();
  state.handoff = null;
  state.wrapCall = null;
  if (state.customer) await openCustomer({ id: state.customer.id }); // the call and notes on the timeline
  status(S["desk.wrapDone"], "ok");
  refresh();
  $("phone").focus();
}

// ---- a new order from the keyboard ------------------------------------------------------------------
let lineSeq = 0;

function addLine() {
  const n = lineSeq++;
  const input = (name, attrs) => h("input", { id: `o-${name}-${n}`, "data-name": name, autocomplete: "off", ...attrs });
  const row = h("tr", { "data-line": String(n) },
    h("td", {}, h("label", { for: `o-name-${n}`, class: "sr-only" }, S["desk.product"]),
      input("name", { maxlength: "200" })),
    h("td", { class: "num" }, h("label", { for: `o-quantity-${n}`, class: "sr-only" }, S["desk.quantity"]),
      input("quantity", { inputmode: "numeric", value: "1", size: "4" })),
    h("td", { class: "num" }, h("label", { for: `o-price-${n}`, class: "sr-only" }, S["desk.price"]),
      input("price", { inputmode: "numeric", size: "8" })),
    h("td", { class: "num amount" }, ""));
  $("order-lines").append(row);
  return row;
}

function focusLine(i) {
  const rows = $("order-lines").children;
  (rows[i] || addLine()).querySelector("input").focus();
}

const digits = (v) => v.normalize("NFKC").replace(/[,，¥円\s]/g, "");

function orderLines() {
  const lines = [];
  for (const row of $("order-lines").children) {
    const get = (name) => row.querySelector(`[data-name=${name}]`).value.trim();
    if (!get("name") && !get("price")) continue;
    lines.push({ row, name: get("name"), quantity: digits(get("quantity")), price: digits(get("price")) });
  }
  return lines;
}

function updateTotals() {
  let total = 0;
  for (const row of $("order-lines").children) {
    const q = Number(digits(row.querySelector("[data-name=quantity]").value));
    const p = Number(digits(row.querySelector("[data-name=price]").value));
    const ok = Number.isInteger(q) && Number.isInteger(p) && q > 0 && p >= 0;
    row.querySelector(".amount").textContent = ok && row.querySelector("[data-name=price]").value ? yen(q * p) : "";
    if (ok) total += q * p;
  }
  $("order-total").textContent = yen(total);
}

function resetOrder() {
  $("order-lines").replaceChildren();
  $("order-errors").hidden = true;
  addLine();
  updateTotals();
}

async function submitOrder(e) {
  e?.preventDefault();
  if (!state.customer) return;
  const problems = [];
  const lines = orderLines();
  for (const l of lines) {
    for (const input of l.row.querySelectorAll("input")) input.removeAttribute("aria-invalid");
    if (!l.name) problems.push([l.row.querySelector("[data-name=name]"), S["desk.needProduct"]]);
    if (!/^\d+$/.test(l.quantity) || Number(l.quantity) < 1) {
      problems.push([l.row.querySelector("[data-name=quantity]"), S["desk.badQuantity"]]);
    }
    if (!/^\d+$/.test(l.price)) problems.push([l.row.querySelector("[data-name=price]"), S["desk.badPrice"]]);
  }
  if (!lines.length) problems.push([$("order-lines").querySelector("input"), S["desk.needProduct"]]);
  const box = $("order-errors");
  if (problems.length) {
    for (const [input] of problems) input?.setAttribute("aria-invalid", "true");
    box.replaceChildren(h("ul", {}, problems.map(([, m]) => h("li", {}, m))));
    box.hidden = false;
    problems[0][0]?.focus();
    return;
  }
  const body = { channel: "phone", lines: lines.map((l) => ({ name: l.name, quantity: Number(l.quantity),
    unit_price: Number(l.price) })) };
  const r = await api(`/api/v1/customers/${state.customer.id}/orders`, { method: "POST", body: JSON.stringify(body) });
  if (!r.ok) {
    box.replaceChildren(h("p", {}, r.body?.detail || S.networkError));
    box.hidden = false;
    return;
  }
  resetOrder();
  await openCustomer({ id: state.customer.id }); // the new order in the card's history
  status(`${S["desk.orderSaved"]}: ${r.body.order_no || ""} ${yen(r.body.total)}`, "ok");
  if (!$("wrap").hidden) $("w-disposition").focus();
}

$("order-lines")?.addEventListener("input", updateTotals);
// A quantity or price field is overwritten when typed into (the 1 in a new line is only a default).
$("order-lines")?.addEventListener("focusin", (e) => { if (e.target.dataset.name !== "name") e.target.select(); });
$("order-lines")?.addEventListener("keydown", (e) => {
  if (e.key !== "Enter" || e.isComposing || e.keyCode === 229 || e.ctrlKey || e.metaKey) return;
  e.preventDefault(); // Enter moves on; only Ctrl+Enter registers the order
  const inputs = [...$("order-lines").querySelectorAll("input")];
  const i = inputs.indexOf(e.target);
  if (e.target.dataset.name === "price" && i === inputs.length - 1) addLine().querySelector("input").focus();
  else inputs[i + 1]?.focus();
});

// ---- the browser softphone --------------------------------------------------------------------------
async function startSoftphone() {
  if (!$("deskbar").dataset.softphone) return; // the center has no browser softphone: desk phones only
  let Softphone;
  try {
    ({ Softphone } = await import("/static/softphone.js"));
  } catch {
    return; // no softphone module: desk phones only
  }
  // A center (or a test) may set window.kakehashiSoftphoneOptions before the page runs, e.g. to turn the
  // browser's echo cancellation / noise suppression off for a headset that does its own.
  const phone = await Softphone.fromServer(window.kakehashiSoftphoneOptions || {}).catch(() => null);
  if (!phone) return;
  state.phone = phone;
  window.softphone = phone; // for integrations and the browser tests
  const say = (text) => { $("phone-status").textContent = text; };
  say(S["desk.phoneConnecting"]);
  phone.addEventListener("registered", () => say(S["desk.phoneReady"]));
  phone.addEventListener("unregistered", () => say(S["desk.phoneOffline"]));
  phone.addEventListener("failed", () => say(S["desk.phoneFailed"]));
  phone.addEventListener("incoming", () => { state.incoming = true; renderCall(); });
  phone.addEventListener("connected", () => { state.incoming = false; refresh(); });
  phone.addEventListener("ended", () => { state.incoming = false; refresh(); });
  phone.start();
  for (const b of $("dtmf").querySelectorAll("button")) b.addEventListener("click", () => phone.sendDTMF(b.dataset.key));
}

// ---- wiring -----------------------------------------------------------------------------------------
if (ME) {
  $("go-available").addEventListener("click", () => chooseState({ state: "available" }));
  $("go-break").addEventListener("click", () => chooseState({ state: "break", reason: $("break-reason").value }));
  $("go-logout").addEventListener("click", () => chooseState({ state: "logged_out" }));
  $("btn-answer").addEventListener("click", answer);
  $("btn-hold").addEventListener("click", toggleHold);
  $("btn-mute").addEventListener("click", toggleMute);
  $("btn-transfer").addEventListener("click", openTransfer);
  $("btn-complete").addEventListener("click", completeTransfer);
  $("btn-cancel").addEventListener("click", cancelTransfer);
  $("btn-hangup").addEventListener("click", hangup);
  $("transfer-form").addEventListener("submit", submitTransfer);
  $("transfer-close").addEventListener("click", () => dialog.close());
  for (const r of dialog.querySelectorAll("input[name=kind]")) r.addEventListener("change", showKind);
  $("wrap-form").addEventListener("submit", finishWrap);
  $("wrap-form").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) finishWrap(e);
  });
  $("order-form").addEventListener("submit", submitOrder);
  $("order-form").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.stopPropagation();
      submitOrder(e);
    }
  });
  $("order-add-line").addEventListener("click", () => addLine().querySelector("input").focus());
  document.addEventListener("keydown", (e) => {
    if (dialog.open) return;
    const keys = { F6: () => chooseState({ state: "available" }), F7: answer, F8: toggleHold, F9: openTransfer,
      F10: hangup };
    if (keys[e.key]) {
      e.preventDefault();
      keys[e.key]();
    }
  });
  document.addEventListener("customer:shown", (e) => {
    const c = e.detail.customer;
    state.customer = { id: c.id, name: c.name };
    $("order-customer").textContent = c.name;
    $("order").hidden = false;
    if (!$("order-lines").children.length) resetOrder();
  });
  document.addEventListener("customer:form", () => {
    state.customer = null;
    $("order").hidden = true;
  });
  setInterval(tick, 1000);
  refresh().then(() => { document.body.dataset.ready = "1"; }); // keys work from here (tests wait on it)
  connect();
  startSoftphone();
}
