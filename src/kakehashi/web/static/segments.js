// Target extraction (/segments): the criteria editor with its live count, the saved segments, their schedule and
// "add to campaign" with the report. Every value from the server enters the page as text (lib.js h()).
import { $, S, api, h, problem, status, text } from "/static/lib.js";

const DATA = JSON.parse($("seg-data").textContent || "{}");
const JA = document.documentElement.lang === "ja";
const DEBOUNCE_MS = 400;
const REASONS = ["do_not_contact", "outbound_excluded", "no_phone", "refused", "dnc", "duplicate"];
const BASE = "/api/v1/campaigns/segments";

let segments = DATA.segments || [];
let current = null; // the segment being edited (null: a new one)

// ---- messages in the page's language ----------------------------------------------------------------------------
const MESSAGES = [
  [/^a segment of that name exists|^already used$/i, "seg.err.nameUsed"],
  [/min must not be above max/i, "seg.err.minMax"],
  [/give min or max|range needs min or max/i, "seg.err.minOrMax"],
  [/within_days must be more than/i, "seg.err.recency"],
  [/give within_days or older_than_days/i, "seg.err.recencyEmpty"],
  [/give codes or names/i, "seg.err.product"],
  [/unknown custom field/i, "seg.err.unknownField"],
  [/range: numbers and dates only/i, "seg.err.rangeType"],
  [/yes\/no fields take equals/i, "seg.err.boolIn"],
  [/not a result code/i, "seg.err.code"],
  [/required with a schedule|scheduled segment needs/i, "seg.err.scheduleCampaign"],
  [/no such campaign/i, "seg.err.campaign"],
  [/stopped campaign takes no more/i, "seg.err.stopped"],
  [/required: the segment has none|which campaign/i, "seg.err.campaign"],
  [/too many counts/i, "seg.err.tooMany"],
  [/canceling statement|statement timeout/i, "seg.err.timeout"],
  [/greater than or equal|less than or equal|valid integer|valid number/i, "seg.err.number"],
  [/field required|at least 1 character|should have at least 1/i, "seg.err.required"],
];

function say(message) {
  const msg = String(message || "");
  for (const [pattern, key] of MESSAGES) if (pattern.test(msg)) return S[key];
  return JA ? S["seg.err.generic"] : msg || S["seg.err.generic"];
}

function fieldOf(error) {
  return String(error?.field || "").replace(/^criteria\./, "");
}

function clearErrors() {
  for (const el of document.querySelectorAll("#editor [aria-invalid]")) el.removeAttribute("aria-invalid");
  for (const el of document.querySelectorAll("#editor .field-error")) el.remove();
  const box = document.querySelector("#editor .form-errors");
  box.hidden = true;
  box.replaceChildren();
}

/** Each error beside its field (the closest data-field), the rest in the form's error box. */
function showErrors(body, code) {
  clearErrors();
  const rest = [];
  for (const e of body?.errors || []) {
    const parts = fieldOf(e).split(".");
    let target = null;
    while (parts.length && !target) {
      target = document.querySelector(`#editor [data-field="${CSS.escape(parts.join("."))}"]`);
      if (!target) parts.pop();
    }
    const message = say(e.message);
    if (!target) {
      rest.push(message);
      continue;
    }
    if (target.matches("input, select")) target.setAttribute("aria-invalid", "true");
    const holder = target.closest("fieldset, p, li") || target.parentElement;
    holder.append(h("p", { class: "field-error" }, message));
  }
  if (!(body?.errors || []).length) rest.push(say(problem(body, code)));
  if (rest.length) {
    const box = document.querySelector("#editor .form-errors");
    box.replaceChildren(...rest.map((m) => h("p", {}, m)));
    box.hidden = false;
  }
}

// ---- reading the form -------------------------------------------------------------------------------------------
const num = (id) => {
  const value = $(id).value.trim();
  return value === "" ? null : Number(value);
};
const list = (id) =>
  $(id)
    .value.split(/[,、，;]+/)
    .map((s) => s.trim())
    .filter(Boolean);
const checked = (name) => [...document.querySelectorAll(`#editor input[name="${name}"]:checked`)].map((i) => i.value);

function pair(min, max, extra = {}) {
  if (min === null && max === null) return null;
  const out = { ...extra };
  if (min !== null) out.min = min;
  if (max !== null) out.max = max;
  return out;
}

function criteria() {
  const c = {};
  const age = pair(num("age-min"), num("age-max"));
  if (age) c.age = age;
  const genders = checked("gender");
  if (genders.length) c.genders = genders;
  const prefectures = checked("prefecture");
  if (prefectures.length) c.prefectures = prefectures;
  if (list("cities").length) c.cities = list("cities");
  if (list("ranks").length) c.ranks = list("ranks");
  const custom = [...document.querySelectorAll("#custom-rows li")].map(readCustom).filter(Boolean);
  if (custom.length) c.custom = custom;
  const within = num("rec-within");
  const older = num("rec-older");
  if (within !== null || older !== null) {
    c.recency = {};
    if (within !== null) c.recency.within_days = within;
    if (older !== null) c.recency.older_than_days = older;
  }
  for (const [key, prefix] of [["frequency", "freq"], ["monetary", "mon"]]) {
    const days = num(`${prefix}-days`);
    const group = pair(num(`${prefix}-min`), num(`${prefix}-max`), days !== null ? { period_days: days } : {});
    if (group) c[key] = group;
  }
  const codes = list("prod-codes");
  const names = list("prod-names");
  if (codes.length || names.length) {
    c.product = { codes, names, bought: !$("prod-not").checked };
    if (num("prod-days") !== null) c.product.period_days = num("prod-days");
  }
  const results = checked("result");
  if (results.length) c.last_contact = { results };
  if ($("cmp-has").value) {
    c.complaints = { has: $("cmp-has").value === "yes", open_only: $("cmp-open").checked };
    c.complaints.kinds = $("cmp-returns").checked ? ["complaint", "return"] : ["complaint"];
    if (num("cmp-days") !== null) c.complaints.within_days = num("cmp-days");
  }
  return c;
}

// ---- custom-field conditions --------------------------------------------------------------------------------------
const FIELDS = DATA.custom_fields || [];

function typed(field, raw) {
  if (field?.type === "number" && raw !== "" && !Number.isNaN(Number(raw))) return Number(raw);
  return raw;
}

function readCustom(row) {
  const key = row.querySelector(".c-key").value;
  const op = row.querySelector(".c-op").value;
  const field = FIELDS.find((f) => f.key === key);
  const value = row.querySelector(".c-value").value.trim();
  const min = row.querySelector(".c-min").value.trim();
  const max = row.querySelector(".c-max").value.trim();
  if (op === "equals") return value === "" ? null : { key, op, value: field?.type === "boolean" ? value : typed(field, value) };
  if (op === "in") {
    const values = value.split(/[,、，;]+/).map((s) => s.trim()).filter(Boolean).map((v) => typed(field, v));
    return values.length ? { key, op, values } : null;
  }
  if (min === "" && max === "") return null;
  const cond = { key, op };
  if (min !== "") cond.min = typed(field, min);
  if (max !== "") cond.max = typed(field, max);
  return cond;
}

function customRow(cond = null) {
  const n = document.querySelectorAll("#custom-rows li").length;
  const keySelect = h("select", { class: "c-key", "aria-label": S["seg.customField"], "data-field": `custom.${n}.key` },
    ...FIELDS.map((f) => h("option", { value: f.key }, f.label)));
  const opSelect = h("select", { class: "c-op", "aria-label": S["seg.customOp"], "data-field": `custom.${n}.op` },
    h("option", { value: "equals" }, S["seg.op.equals"]),
    h("option", { value: "in" }, S["seg.op.in"]),
    h("option", { value: "range" }, S["seg.op.range"]));
  const value = h("input", { class: "c-value", "aria-label": S["seg.customValue"], "data-field": `custom.${n}.value` });
  const min = h("input", { class: "c-min short", "aria-label": S["seg.min"], "data-field": `custom.${n}.min` });
  const max = h("input", { class: "c-max short", "aria-label": S["seg.max"], "data-field": `custom.${n}.max` });
  const dash = h("span", { class: "c-dash" }, " – ");
  const row = h("li", {}, keySelect, " ", opSelect, " ", value, min, dash, max, " ",
    h("button", { type: "button", class: "link", onclick: () => { row.remove(); changed(); } }, S["seg.remove"]));
  const showOperands = () => {
    const range = opSelect.value === "range";
    value.hidden = range;
    min.hidden = max.hidden = dash.hidden = !range;
  };
  opSelect.addEventListener("change", showOperands);
  if (cond) {
    keySelect.value = cond.key;
    opSelect.value = cond.op;
    if (cond.op === "equals") value.value = String(cond.value ?? "");
    if (cond.op === "in") value.value = (cond.values || []).join(", ");
    if (cond.min !== undefined && cond.min !== null) min.value = String(cond.min);
    if (cond.max !== undefined && cond.max !== null) max.value = String(cond.max);
  }
  showOperands();
  $("custom-rows").append(row);
}

// ---- the live count ----------------------------------------------------------------------------------------------
let timer = null;
let asked = 0;

function changed() {
  clearTimeout(timer);
  $("count-state").textContent = S["seg.counting"];
  timer = setTimeout(count, DEBOUNCE_MS);
  $("pref-count").textContent = checked("prefecture").length ? text("seg.selected", { n: checked("prefecture").length }) : "";
}

async function count() {
  const mine = ++asked;
  const res = await api(`${BASE}/count`, { method: "POST", body: criteria() });
  if (mine !== asked) return; // an older answer after a newer question: dropped
  if (!res.ok) {
    $("count-state").textContent = say(problem(res.body, res.status));
    if (res.status === 422) showErrors(res.body, res.status);
    return;
  }
  clearErrors();
  const c = res.body;
  $("count-matching").textContent = c.matching.toLocaleString();
  $("count-callable").textContent = c.callable.toLocaleString();
  $("count-reasons").replaceChildren(
    ...Object.entries(c.scrubbed_by_reason)
      .filter(([, n]) => n)
      .map(([reason, n]) => h("li", { dataset: { reason } }, `${S[`seg.reason.${reason}`] || reason}: ${n.toLocaleString()}`)),
  );
  $("count-state").textContent = "";
}

// ---- saved segments ------------------------------------------------------------------------------------------------
const campaignName = (id) => (DATA.campaigns || []).find((c) => c.id === id)?.name || "";
const when = (iso) =>
  iso ? new Date(iso).toLocaleString(JA ? "ja-JP" : "en-GB", { timeZone: "Asia/Tokyo", dateStyle: "short", timeStyle: "short" }) : "";

function scheduleText(schedule) {
  if (!schedule) return S["seg.manual"];
  return text("seg.every", { days: schedule.weekdays.map((d) => S[`seg.day.${d}`]).join("・"), time: schedule.time });
}

function renderList() {
  $("segments").replaceChildren(
    ...segments.map((s) =>
      h("li", { dataset: { segment: String(s.id) }, class: current?.id === s.id ? "current" : "" },
        h("button", { type: "button", class: "link", onclick: () => load(s) }, s.name),
        h("span", { class: "muted small" }, ` ${campaignName(s.campaign_id)} · ${scheduleText(s.schedule)}`),
        s.next_run_at ? h("span", { class: "muted small" }, ` · ${text("seg.nextRun", { at: when(s.next_run_at) })}`) : null),
    ),
  );
  $("no-segments").hidden = segments.length > 0;
}

function setChecks(name, values) {
  for (const box of document.querySelectorAll(`#editor input[name="${name}"]`)) box.checked = values.includes(box.value);
}

function fill(c) {
  $("age-min").value = c.age?.min ?? "";
  $("age-max").value = c.age?.max ?? "";
  setChecks("gender", c.genders || []);
  setChecks("prefecture", c.prefectures || []);
  $("cities").value = (c.cities || []).join(", ");
  $("ranks").value = (c.ranks || []).join(", ");
  $("custom-rows").replaceChildren();
  for (const cond of c.custom || []) customRow(cond);
  $("rec-within").value = c.recency?.within_days ?? "";
  $("rec-older").value = c.recency?.older_than_days ?? "";
  for (const [key, prefix] of [["frequency", "freq"], ["monetary", "mon"]]) {
    $(`${prefix}-min`).value = c[key]?.min ?? "";
    $(`${prefix}-max`).value = c[key]?.max ?? "";
    $(`${prefix}-days`).value = c[key]?.period_days ?? "";
  }
  $("prod-codes").value = (c.product?.codes || []).join(", ");
  $("prod-names").value = (c.product?.names || []).join(", ");
  $("prod-days").value = c.product?.period_days ?? "";
  $("prod-not").checked = c.product ? c.product.bought === false : false;
  setChecks("result", c.last_contact?.results || []);
  $("cmp-has").value = c.complaints ? (c.complaints.has === false ? "no" : "yes") : "";
  $("cmp-days").value = c.complaints?.within_days ?? "";
  $("cmp-open").checked = Boolean(c.complaints?.open_only);
  $("cmp-returns").checked = (c.complaints?.kinds || []).includes("return");
}

function load(segment) {
  current = segment;
  clearErrors();
  $("seg-name").value = segment?.name || "";
  fill(segment?.criteria || {});
  $("seg-campaign").value = segment?.campaign_id ? String(segment.campaign_id) : "";
  setChecks("weekday", (segment?.schedule?.weekdays || []).map(String));
  $("sched-time").value = segment?.schedule?.time || "09:00";
  $("next-run").textContent = segment?.next_run_at ? text("seg.nextRun", { at: when(segment.next_run_at) }) : "";
  $("editing").textContent = segment ? segment.name : S["seg.new"];
  $("delete").hidden = !segment;
  $("run").disabled = !segment;
  if (segment?.campaign_id && [...$("run-campaign").options].some((o) => o.value === String(segment.campaign_id))) {
    $("run-campaign").value = String(segment.campaign_id);
  }
  $("report").hidden = true;
  renderList();
  changed();
}

async function refresh() {
  const res = await api(BASE);
  if (res.ok) segments = res.body;
  renderList();
}

async function save(event) {
  event.preventDefault();
  const weekdays = checked("weekday").map(Number);
  const campaign = $("seg-campaign").value;
  const body = {
    name: $("seg-name").value.trim(),
    criteria: criteria(),
    campaign_id: campaign ? Number(campaign) : null,
    schedule: weekdays.length ? { weekdays, time: $("sched-time").value } : null,
  };
  const res = current
    ? await api(`${BASE}/${current.id}`, { method: "PATCH", body })
    : await api(BASE, { method: "POST", body });
  if (!res.ok) {
    showErrors(res.body, res.status);
    status(S["seg.notSaved"], "error");
    return;
  }
  status(text("seg.saved", { name: res.body.name }), "ok");
  await refresh();
  load(res.body);
}

async function remove() {
  if (!current || !confirm(text("seg.confirmDelete", { name: current.name }))) return;
  const res = await api(`${BASE}/${current.id}`, { method: "DELETE" });
  if (!res.ok) {
    status(say(problem(res.body, res.status)), "error");
    return;
  }
  status(S["seg.deleted"], "ok");
  await refresh();
  load(null);
}

// ---- add to campaign ------------------------------------------------------------------------------------------------
async function run() {
  if (!current) return;
  $("run").disabled = true;
  status(S["seg.running"]);
  const res = await api(`${BASE}/${current.id}/run`, { method: "POST", body: { campaign_id: Number($("run-campaign").value) || null } });
  $("run").disabled = false;
  if (!res.ok) {
    status(say(problem(res.body, res.status)), "error");
    return;
  }
  const r = res.body;
  $("report-added").textContent = r.added.toLocaleString();
  $("report-skipped").textContent = r.skipped_already_in_campaign.toLocaleString();
  $("report-scrubbed").textContent = r.scrubbed.length.toLocaleString();
  $("report-table").tBodies[0].replaceChildren(
    ...r.scrubbed.map((s) =>
      h("tr", { dataset: { reason: s.reason } },
        h("td", {}, String(s.customer_id)),
        h("td", {}, s.phone || "–"),
        h("td", {}, S[`seg.reason.${s.reason}`] || s.reason)),
    ),
  );
  $("report").hidden = false;
  status(text("seg.ran", { added: r.added }), "ok");
  await refresh();
}

// ---- wiring ----------------------------------------------------------------------------------------------------------
$("editor").addEventListener("input", changed);
$("editor").addEventListener("change", changed);
$("editor").addEventListener("submit", save);
$("add-custom").addEventListener("click", () => {
  customRow();
  changed();
});
$("new-segment").addEventListener("click", () => load(null));
$("delete").addEventListener("click", remove);
$("run").addEventListener("click", run);
for (const reason of REASONS) S[`seg.reason.${reason}`] ??= reason;
load(null);
