// The desk's outbound panel (issue 17; /api/v1/desk/outbound): the running campaigns the agent works (join,
// leave, the next lead in preview), the lead's card with the campaign's opening statement and its confirmation
// (特定商取引法 第16条), dial or skip (an optional countdown dials by itself), the line's progress as the dialer
// reports it (agent.outbound on the live stream, which desk.js re-announces as "desk:event"), the result with a
// callback picker in Japan time, and a manual dial refused for DNC / refused (第17条) / suspended numbers.
// The API answers in English: its messages are shown in the page's language (strings/outbound.py).
// Rule as everywhere: data from the API goes into the page as text (h(), textContent), never as HTML.

import { openCustomer } from "/static/customers.js";
import { $, S, api, h, setText, status, text } from "/static/lib.js";

const ME = $("deskbar")?.dataset.agent || "";
const BASE = "/api/v1/desk/outbound";
const JA = document.documentElement.lang !== "en";
const JST_MS = 9 * 3600 * 1000;
const fmtTime = new Intl.DateTimeFormat(JA ? "ja-JP" : "en-GB", {
  timeZone: "Asia/Tokyo", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
});

const ob = {
  desk: null, // the last OutboundDesk
  call: null, // the card's call as /calls/live shows it (null: none, or over)
  reason: null, // why /next handed out no lead
  customerShown: null, // the attempt whose customer card was opened (once: the agent may browse away)
  auto: null, // the preview auto-dial countdown: { attempt, deadline, timer }
  autoStopped: new Set(), // attempts whose countdown the agent stopped
  codesFor: "", // the result codes drawn for (attempt, opening confirmed)
};
window.kakehashiOutbound = ob; // for the browser tests

const mode = (m) => S[`ob.mode.${m}`] || m;
const paren = (x) => (JA ? `（${x}）` : ` (${x})`);
const lineLabel = (r) => (r ? S[`ob.line.${r}`] || S[`ch.result.${r}`] || r : "—");

// ---- the API's messages in the page's language -----------------------------------------------------------
const WHY = {
  dnc: "ob.why.dnc", refused: "ob.why.refused", do_not_contact: "ob.why.do_not_contact",
  outbound_excluded: "ob.why.outbound_excluded", "outside the calling window": "ob.why.outside",
};

/** A reason a number may not be dialled (a scrub reason, the window, the campaign's status). */
function why(reason) {
  const r = String(reason || "").trim();
  if (WHY[r]) return S[WHY[r]];
  const st = r.match(/^the campaign is (\w+)$/i);
  if (st) return text("ob.err.campaignStatus", { status: S[`ob.status.${st[1]}`] || st[1] });
  if (/dialled already/i.test(r)) return S["ob.err.dialledAlready"];
  return r;
}

const DETAILS = [
  [/^the number cannot be dialled now: (.+)$/i, (m) => text("ob.err.cannotDial", { reason: why(m[1]) })],
  [/^this number may not be called: (.+)$/i, (m) => text("ob.err.mayNotCall", { reason: why(m[1]) })],
  [/not available$|not logged in to take calls/i, () => S["ob.err.notAvailable"]],
  [/no telephony is running/i, () => S["ob.err.noTelephony"]],
  [/no number to call from/i, () => S["ob.err.noNumber"]],
  [/does not work this campaign/i, () => S["ob.err.notYours"]],
  [/finish the current lead first/i, () => S["ob.err.finishFirst"]],
  [/no lead is on your desk|not on your desk/i, () => S["ob.err.noLead"]],
  [/^the campaign is \w+$/i, (m) => why(m[0])],
  [/was not dialled: skip it/i, () => S["ob.err.notDialled"]],
  [/was dialled: save its result/i, () => S["ob.err.dialledSave"]],
  [/the attempt is finished/i, () => S["ob.err.finished"]],
  [/opening statement/i, () => S["ob.err.opening"]],
  [/nobody answered/i, () => S["ob.err.nobody"]],
  [/not a phone number/i, () => S["ob.err.number"]],
];

/** A problem's detail (no field) in the page's language; an unknown one as the API wrote it. */
function sayDetail(detail) {
  const d = String(detail || "");
  for (const [re, say] of DETAILS) {
    const m = d.match(re);
    if (m) return say(m);
  }
  return d;
}

/** A field's error in the page's language. */
function sayField(field, message) {
  const msg = String(message || "");
  if (field === "opening") return S["ob.err.opening"];
  if (field === "callback_at") return /past/i.test(msg) ? S["ob.err.callbackPast"] : S["ob.err.callbackRequired"];
  if (field === "code") return /^the line was/i.test(msg) ? S["ob.err.nobody"] : /unknown/i.test(msg) ? S["ob.err.unknownCode"] : S["ob.err.pickCode"];
  if (field === "reason") return S["ob.err.reason"];
  if (field === "number") return S["ob.err.number"];
  return sayDetail(msg);
}

// Where each API field's error goes.
const BOXES = {
  opening: "ob-opening-err", callback_at: "ob-callback-at-err", code: "ob-code-err", reason: "ob-skip-reason-err",
  number: "ob-manual-number-err",
};
const INPUTS = { "ob-callback-at-err": "ob-callback-at", "ob-code-err": "ob-code", "ob-skip-reason-err": "ob-skip-reason",
  "ob-manual-number-err": "ob-manual-number" };

function showError(id, message) {
  const box = $(id);
  if (!box) return;
  box.textContent = message || "";
  box.hidden = !message;
  const input = INPUTS[id] && $(INPUTS[id]);
  if (input) {
    if (message) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }
}

function clearErrors() {
  for (const id of ["ob-error", ...Object.values(BOXES)]) showError(id, "");
}

/** A refused command: each field's error beside its field, the rest in ``fallback`` (the panel's line). */
function showProblem(r, fallback = "ob-error") {
  const errors = r.body?.errors || [];
  const rest = [];
  for (const e of errors) {
    const field = String(e.field || "");
    const box = BOXES[field];
    const message = sayField(field, e.message);
    if (box && !$(box).parentElement.closest("[hidden]")) showError(box, message);
    else rest.push(message);
  }
  if (!errors.length) rest.push(r.status === 0 ? S.networkError : sayDetail(r.body?.detail || r.body?.title || r.status));
  if (rest.length) showError(fallback, rest.join(" / "));
}

// ---- loading and drawing ----------------------------------------------------------------------------------
let loading = 0;
let reloadTimer = 0;

async function load() {
  const mine = ++loading;
  const [r, calls] = await Promise.all([api(BASE), api("/api/v1/calls/live")]);
  if (mine !== loading) return; // a newer load is under way
  if (!r.ok) return showProblem(r);
  take(r.body, calls.ok ? calls.body : null);
}

/** A fresh OutboundDesk (and, when known, the live calls, to tell whether the card's call is still on). */
function take(desk, calls) {
  ob.desk = desk;
  const ref = desk.card?.call_ref;
  if (calls) ob.call = (ref && calls.find((c) => c.call_ref === ref)) || null;
  else if (!ref) ob.call = null;
  render();
}

function reloadSoon() {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(load, 50); // a burst of events makes one load
}

function render() {
  const d = ob.desk;
  if (!d) return;
  const list = d.campaigns;
  $("ob-none").hidden = list.length > 0;
  $("ob-none").textContent = S["ob.noCampaigns"];
  $("ob-work").hidden = !list.length;
  fillCampaigns($("ob-campaign"), list, d.joined ?? d.card?.campaign.id ?? null, false);
  fillCampaigns($("ob-manual-campaign"), list, null, true);
  const selected = list.find((c) => c.id === Number($("ob-campaign").value));
  const joined = list.find((c) => c.id === d.joined);
  setText($("ob-joined"), joined
    ? `${text("ob.working", { name: `${joined.name}${paren(mode(joined.dial_mode))}` })} — ${S[joined.dial_mode === "preview" ? "ob.previewHint" : "ob.progressiveHint"]}`
    : S["ob.notWorking"]);
  $("ob-join").hidden = !selected || d.joined === selected.id;
  $("ob-leave").hidden = d.joined == null;
  $("ob-next").hidden = !selected || selected.dial_mode !== "preview" || Boolean(d.card);
  $("ob-reason").hidden = !ob.reason || Boolean(d.card);
  $("ob-reason").textContent = ob.reason ? sayReason(ob.reason) : "";
  renderCard(d.card);
  renderCallbacks(d.callbacks || []);
  // For the page's CSS (the desk's own wrap-up form gives way to the result while the lead's call is on) and tests.
  document.body.dataset.outbound = d.card ? d.card.stage : "";
  document.body.dataset.outboundReady = "1";
}

/** The callbacks the agent promised, soonest first: when, the campaign and the number. */
function renderCallbacks(list) {
  $("ob-callbacks").hidden = !list.length;
  $("ob-callback-list").replaceChildren(...list.map((c) => h("li", {},
    h("time", { datetime: c.at }, fmtTime.format(new Date(c.at))), " ",
    h("span", { class: "tel" }, c.phone), " ",
    h("span", { class: "muted" }, c.campaign))));
}

function sayReason(reason) {
  if (/outside the calling window/i.test(reason)) return S["ob.reason.outside"];
  if (/no lead is due/i.test(reason)) return S["ob.reason.noLead"];
  return why(reason);
}

/** The campaigns as options, keeping the agent's choice (else ``preferred``); ``blank``: a first "none". */
function fillCampaigns(select, list, preferred, blank) {
  const before = select.value;
  const key = list.map((c) => `${c.id}:${c.name}:${c.dial_mode}`).join("|");
  if (select.dataset.key !== key) {
    const options = list.map((c) => h("option", { value: String(c.id) }, `${c.name}${paren(mode(c.dial_mode))}`));
    select.replaceChildren(...(blank ? [select.options[0] || h("option", { value: "" }, "")] : []), ...options);
    select.dataset.key = key;
    select.value = list.some((c) => String(c.id) === before) || (blank && before === "") ? before : "";
  }
  if (preferred != null && select.dataset.preferred !== String(preferred)) {
    select.value = String(preferred); // the campaign joined (or on the card) comes first once
    select.dataset.preferred = String(preferred);
  }
  if (!blank && !select.value && list.length) select.value = String(list[0].id);
}

function stageText(card) {
  if (card.stage !== "talking") return S[`ob.stage.${card.stage}`] || card.stage;
  const c = ob.call;
  if (c && c.state === "ringing") return S["ob.stage.ringingMe"];
  if (c && c.state !== "wrap_up") return S["ob.stage.talking"];
  return S["ob.stage.ended"];
}

/** Whether the card's call is still on the line (the result is saved once it is over). */
const callOn = () => Boolean(ob.call && ob.call.state !== "wrap_up");

function renderCard(card) {
  $("ob-card").hidden = !card;
  if (!card) {
    stopAuto();
    return;
  }
  const c = card.campaign;
  const lead = card.lead;
  $("ob-card").dataset.attempt = String(card.attempt_id);
  setText($("ob-card-campaign"), c.name);
  setText($("ob-card-mode"), mode(c.dial_mode));
  setText($("ob-card-phone"), lead.phone);
  setText($("ob-card-attempts"), String(lead.attempts));
  setText($("ob-card-last"), lineLabel(lead.last_result));
  setText($("ob-card-customer"), lead.customer_id ? text("ob.customerId", { id: lead.customer_id }) : S["ob.noCustomer"]);
  $("ob-open-customer").hidden = !lead.customer_id;
  if (lead.customer_id && ob.customerShown !== card.attempt_id) {
    ob.customerShown = card.attempt_id;
    openCustomer({ id: lead.customer_id }); // the desk's own card (customers.js), as for a screen pop
  }
  const badge = $("ob-stage");
  setText(badge, stageText(card));
  badge.dataset.stage = card.stage;
  // The opening: read before dialing, given at the start of the conversation, confirmed once given.
  setText($("ob-opening-text"), c.opening_statement || S["ob.noOpening"]);
  const confirmed = card.opening_confirmed_at;
  $("ob-opening-confirm").hidden = Boolean(confirmed);
  $("ob-opening-confirm").disabled = card.stage !== "talking";
  setText($("ob-opening-hint"), confirmed || card.stage === "talking" ? "" : S["ob.openingWhenTalking"]);
  $("ob-opening-hint").hidden = Boolean(confirmed) || card.stage === "talking";
  $("ob-opening-done").hidden = !confirmed;
  if (confirmed) setText($("ob-opening-done"), text("ob.openingAt", { time: fmtTime.format(new Date(confirmed)) }));
  $("ob-opening").dataset.confirmed = confirmed ? "1" : "";
  // Preview: dial or skip (the countdown, when the campaign has one).
  $("ob-preview").hidden = card.stage !== "preview";
  renderAuto(card);
  // The result, once a person answered.
  $("ob-result-form").hidden = card.stage !== "talking";
  if (card.stage === "talking") renderCodes(card);
}

function renderCodes(card) {
  const codes = card.campaign.result_codes;
  const confirmed = Boolean(card.opening_confirmed_at);
  const key = `${card.attempt_id}:${confirmed}`;
  const select = $("ob-code");
  if (ob.codesFor !== key) {
    const before = select.value;
    select.replaceChildren(h("option", { value: "" }, "—"), ...codes.map((code) => {
      const blocked = (code.contact || code.success) && !confirmed; // Art.16: a conversation needs the opening
      const label = `${code.code}${flagsOf(code)}${blocked ? ` — ${S["ob.openingFirst"]}` : ""}`;
      return h("option", { value: code.code, disabled: blocked, dataset: { callback: code.callback ? "1" : "" } }, label);
    }));
    select.value = codes.some((x) => x.code === before && !((x.contact || x.success) && !confirmed)) ? before : "";
    ob.codesFor = key;
  }
  showCallback();
  const on = callOn();
  $("ob-save").disabled = on;
  $("ob-save-hint").hidden = !on;
  setText($("ob-save-hint"), on ? S["ob.saveAfterCall"] : "");
}

function flagsOf(code) {
  const names = ["success", "contact", "refusal", "dnc", "callback", "unworkable", "final"].filter((f) => code[f]);
  if (!code.human) names.unshift("noHuman");
  return names.length ? paren(names.map((f) => S[`ob.flag.${f}`]).join(JA ? "・" : ", ")) : "";
}

function chosenCode() {
  const value = $("ob-code").value;
  return ob.desk?.card?.campaign.result_codes.find((c) => c.code === value) || null;
}

// ---- the callback picker (Japan time) ------------------------------------------------------------------------
/** ``date`` as a datetime-local value in Japan time. */
const jstLocal = (date) => new Date(date.getTime() + JST_MS).toISOString().slice(0, 16);

/** A datetime-local value read as Japan time, as ISO 8601 with its offset. */
const fromJst = (value) => `${value.length === 16 ? `${value}:00` : value}+09:00`;

function showCallback() {
  const code = chosenCode();
  const show = Boolean(code?.callback);
  const box = $("ob-callback");
  const opening = box.hidden && show;
  box.hidden = !show;
  const input = $("ob-callback-at");
  input.min = jstLocal(new Date());
  if (opening && !input.value) {
    const inAnHour = new Date(Date.now() + 3600 * 1000);
    inAnHour.setUTCSeconds(0, 0);
    input.value = jstLocal(inAnHour); // a sensible default: in an hour
  }
}

// ---- preview auto-dial ----------------------------------------------------------------------------------------
function renderAuto(card) {
  const secs = card.stage === "preview" ? card.campaign.preview_autodial_s : null;
  if (!secs || ob.autoStopped.has(card.attempt_id)) {
    if (ob.auto) stopAuto();
    return;
  }
  if (ob.auto?.attempt === card.attempt_id) return; // running already
  stopAuto();
  ob.auto = { attempt: card.attempt_id, deadline: Date.now() + secs * 1000, timer: setInterval(tickAuto, 250) };
  $("ob-stop-auto").hidden = false;
  tickAuto();
}

function tickAuto() {
  const auto = ob.auto;
  if (!auto) return;
  const left = Math.max(0, Math.ceil((auto.deadline - Date.now()) / 1000));
  const box = $("ob-countdown");
  box.hidden = false;
  setText(box, text("ob.autodial", { n: left }));
  box.dataset.left = String(left);
  if (left > 0) return;
  stopAuto();
  const card = ob.desk?.card;
  if (card && card.attempt_id === auto.attempt && card.stage === "preview") dial();
}

function stopAuto() {
  if (ob.auto) clearInterval(ob.auto.timer);
  ob.auto = null;
  $("ob-countdown").hidden = true;
  $("ob-stop-auto").hidden = true;
}

/** The agent stops the countdown (or starts to skip): the lead waits for them. */
function cancelAuto() {
  if (!ob.auto) return;
  ob.autoStopped.add(ob.auto.attempt);
  stopAuto();
  $("ob-countdown").hidden = false;
  setText($("ob-countdown"), S["ob.autodialStopped"]);
}

// ---- commands ---------------------------------------------------------------------------------------------
let queue = Promise.resolve(); // commands go one after the other, in the order the agent gave them

/**
 * POST a command once the ones before it are answered; on success the answer is the new desk. ``still()`` is
 * asked just before sending (false: the desk moved on — e.g. a second press of dial — and nothing is sent).
 * Errors are shown (``fallback``: where a message without a field goes).
 */
function command(path, body, fallback = "ob-error", still = () => true) {
  const run = queue.then(async () => {
    if (!still()) return null;
    clearErrors();
    const r = await api(`${BASE}/${path}`, { method: "POST", body: body ?? undefined });
    if (!r.ok) {
      showProblem(r, fallback);
      load(); // a refused dial may have given the lead back: show the desk as it is
      return null;
    }
    return r;
  });
  queue = run.catch(() => null);
  return run;
}

const inPreview = () => ob.desk?.card?.stage === "preview";

const campaignId = () => Number($("ob-campaign").value);

async function join() {
  const r = await command("join", { campaign_id: campaignId() });
  if (!r) return;
  ob.reason = null;
  status(S["ob.joined"], "ok");
  take(r.body, null);
}

async function leave() {
  const r = await command("leave");
  if (!r) return;
  status(S["ob.left"], "ok");
  take(r.body, null);
}

async function next() {
  const r = await command("next", { campaign_id: campaignId() }, "ob-error", () => !ob.desk?.card);
  if (!r) return;
  ob.reason = r.body.card ? null : r.body.reason;
  take(r.body, null);
  if (r.body.card) $("ob-dial").focus();
}

async function dial() {
  stopAuto();
  $("ob-dial").disabled = true; // pressed once: the card's stage says what comes next
  const r = await command("dial", null, "ob-error", inPreview);
  $("ob-dial").disabled = false;
  if (!r) return;
  status(S["ob.dialled"], "ok");
  take(r.body, null);
  reloadSoon();
}

async function skip(e) {
  e.preventDefault();
  cancelAuto();
  const reason = $("ob-skip-reason").value.trim();
  if (!reason) {
    showError("ob-skip-reason-err", S["ob.err.reason"]);
    return $("ob-skip-reason").focus();
  }
  const r = await command("skip", { reason }, "ob-skip-reason-err", inPreview);
  if (!r) return;
  $("ob-skip-form").reset();
  status(S["ob.skipped"], "ok");
  take(r.body, null);
}

async function confirmOpening() {
  const r = await command("opening", null, "ob-opening-err");
  if (!r) return;
  status(S["ob.confirmed"], "ok");
  take(r.body, null);
  $("ob-code").focus();
}

async function saveResult(e) {
  e.preventDefault();
  clearErrors();
  const code = chosenCode();
  if (!code) {
    showError("ob-code-err", S["ob.err.pickCode"]);
    return $("ob-code").focus();
  }
  const body = { code: code.code };
  if (code.callback) {
    const at = $("ob-callback-at").value;
    if (!at) {
      showError("ob-callback-at-err", S["ob.err.callbackRequired"]);
      return $("ob-callback-at").focus();
    }
    body.callback_at = fromJst(at);
    body.callback_personal = $("ob-callback-personal").checked;
  }
  const r = await command("result", body, "ob-code-err");
  if (!r) return;
  $("ob-result-form").reset();
  $("ob-callback").hidden = true;
  ob.codesFor = "";
  status(S["ob.saved"], "ok");
  take(r.body, null);
}

async function manualDial(e) {
  e.preventDefault();
  clearErrors();
  const number = $("ob-manual-number").value.trim();
  if (!number) {
    showError("ob-manual-number-err", S["ob.err.enterNumber"]);
    return $("ob-manual-number").focus();
  }
  const chosen = $("ob-manual-campaign").value;
  const body = { number, ...(chosen ? { campaign_id: Number(chosen) } : {}) };
  const r = await command("manual", body, "ob-manual-number-err");
  if (!r) return;
  $("ob-manual-number").value = "";
  status(S["ob.manualDialled"], "ok");
}

// ---- the live stream (desk.js's, re-announced) -----------------------------------------------------------------
function onDeskEvent(e) {
  const m = e.detail;
  const p = m?.payload || {};
  if (m?.name === "agent.outbound" && p.agent === ME) {
    if (p.stage === "done" && p.result && p.result !== "answered") {
      const last = $("ob-last");
      setText(last, text("ob.lastLine", { result: lineLabel(p.result) }));
      last.dataset.result = p.result;
      last.hidden = false;
    }
    reloadSoon();
    return;
  }
  // The card's call changed (answered at my phone, hung up, wrap-up over): redraw its line and the save button.
  const card = ob.desk?.card;
  if (card && card.call_ref && p.call_ref === card.call_ref) reloadSoon();
  else if (card && m?.name?.startsWith("agent.") && p.agent === ME) reloadSoon();
}

// ---- wiring ----------------------------------------------------------------------------------------------------
if (ME && $("outbound")) {
  $("ob-join").addEventListener("click", join);
  $("ob-leave").addEventListener("click", leave);
  $("ob-next").addEventListener("click", next);
  $("ob-campaign").addEventListener("change", () => { ob.reason = null; render(); });
  // A campaign started since the page was drawn shows up when the agent goes to pick one.
  $("ob-campaign").addEventListener("focus", () => { if (!ob.desk?.card) load(); });
  $("ob-dial").addEventListener("click", dial);
  $("ob-stop-auto").addEventListener("click", cancelAuto);
  $("ob-skip-reason").addEventListener("focus", cancelAuto); // starting to skip stops the countdown
  $("ob-skip-form").addEventListener("submit", skip);
  $("ob-opening-confirm").addEventListener("click", confirmOpening);
  $("ob-code").addEventListener("change", () => { showError("ob-code-err", ""); showCallback(); });
  $("ob-result-form").addEventListener("submit", saveResult);
  $("ob-manual").addEventListener("submit", manualDial);
  $("ob-open-customer").addEventListener("click", () => {
    const id = ob.desk?.card?.lead.customer_id;
    if (id) openCustomer({ id });
  });
  document.addEventListener("desk:event", onDeskEvent);
  document.addEventListener("desk:resync", load);
  load();
}
