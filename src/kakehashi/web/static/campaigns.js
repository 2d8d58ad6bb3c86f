// The campaign pages: the list (/campaigns: start / pause / stop, the results' figures), the editor
// (/campaigns/new, /campaigns/{id}: the form sent as JSON — with the predictive settings and answering-machine
// detection for a predictive campaign —, the API's field errors beside their fields, save and start, the call-list
// upload with its progress and report) and the do-not-call page (/campaigns/dnc: the list, its import, the Art.17
// refusals and their lifting). Which part runs is <main data-page>. Data from the API goes into the page as text
// (lib.js's h()), never as HTML; the API's English messages are shown in the page's language where known.

import { connectEvents } from "/static/events.js";
import { $, S, api, h, problem, status, text, upload } from "/static/lib.js";

const main = document.querySelector("main");
const page = main?.dataset.page;
const JA = document.documentElement.lang === "ja";

// ---- the API's words in the page's language ----------------------------------------------------------------
const ERRORS = [
  [/needs a calling window/i, "cmp.err.needsWindow"],
  [/^inside 21:00/i, "cmp.err.night"],
  [/required for a window inside/i, "cmp.err.nightReason"],
  [/only an admin may allow calls at night/i, "cmp.err.nightAdmin"],
  [/^admin only$/i, "cmp.err.adminOnly"],
  [/start must be before end/i, "cmp.err.order"],
  [/not an active result code/i, "cmp.err.code"],
  [/listed twice/i, "cmp.err.twice"],
  [/^already used$|campaign of that name exists/i, "cmp.err.nameUsed"],
  [/already listed|on the list already/i, "cmp.err.listed"],
  [/already lifted/i, "cmp.err.alreadyLifted"],
  [/only an admin may lift/i, "cmp.err.liftAdmin"],
  [/stopped campaign takes no more/i, "cmp.err.stoppedLeads"],
  [/valid integer/i, "cmp.err.integer"],
  [/valid number/i, "cmp.err.number"],
  [/field required|at least 1 character|^required$|give the reason/i, "cmp.err.required"],
  [/^input should be '/i, "cmp.err.choice"],
  [/^empty$/i, "cmp.err.empty"],
  [/too large|entity too large/i, "cmp.err.tooLarge"],
];

/** One API message (of ``field``, if any) in the page's language; unknown ones as the API wrote them. */
function say(message, field = "", extra = {}) {
  const msg = String(message || "");
  if (JA && extra.message_ja) return extra.message_ja; // the lists' problems carry their Japanese
  // Fields whose own words say more than the generic ones: the identification message a predictive campaign needs
  // to start, and the abandon target, which the API takes as a fraction and the form as a percentage.
  if (field === "predictive.abandon_message" && /^empty$|required|at least 1/i.test(msg)) return S["cmp.err.abandonMessage"];
  if (field === "predictive.abandon_target" && /than or equal|valid number/i.test(msg)) return S["cmp.err.abandonTarget"];
  const moved = msg.match(/^a (\w+) campaign cannot become (\w+)/i);
  if (moved) return text("cmp.err.transition", { from: S[`cmp.status.${moved[1]}`] || moved[1], to: S[`cmp.status.${moved[2]}`] || moved[2] });
  if (/should match pattern/i.test(msg) && /^windows\./.test(field)) return S["cmp.err.clock"];
  if (/phone|digits/i.test(msg) && /caller_id|phone/.test(field)) return S["cmp.err.phone"];
  const min = msg.match(/greater than or equal to (\d+(?:\.\d+)?)/i);
  if (min) return text("cmp.err.min", { n: min[1] });
  const max = msg.match(/less than or equal to (\d+(?:\.\d+)?)/i);
  if (max) return text("cmp.err.max", { n: max[1] });
  for (const [re, key] of ERRORS) if (re.test(msg) && S[key]) return S[key];
  return msg;
}

/** A whole refusal (no field) in the page's language: its first error's message, else its detail. */
function sayProblem(body, code) {
  const first = body?.errors?.[0];
  if (first) return say(first.message, first.field, first);
  return say(problem(body, code));
}

const national = (e164) => (/^\+81\d+$/.test(e164 || "") ? `0${e164.slice(3)}` : e164 || "");
const when = (iso) =>
  iso ? new Date(iso).toLocaleString(JA ? "ja-JP" : "en-GB", { timeZone: "Asia/Tokyo", dateStyle: "short", timeStyle: "short" }) : "";

// ---- field errors (editor, upload, DNC forms) ------------------------------------------------------------------
function clearErrors(scope) {
  for (const el of scope.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  for (const el of scope.querySelectorAll(".field-error")) {
    if (el.dataset.added) el.remove();
    else {
      el.hidden = true;
      el.replaceChildren();
    }
  }
  for (const el of scope.querySelectorAll(".has-error")) el.classList.remove("has-error");
  const box = scope.querySelector(".form-errors");
  if (box) {
    box.hidden = true;
    box.replaceChildren();
  }
}

// A list's source record refused by the privacy domain names that domain's fields.
const ALIASES = { provider_name: "provider", acquisition_method: "method" };

/** The element for API field ``field`` (``a.b.c``): the most precise ``data-field`` that exists. */
function findField(scope, field) {
  const parts = (ALIASES[field] || field).split(".");
  while (parts.length) {
    const found = scope.querySelector(`[data-field="${CSS.escape(parts.join("."))}"]`);
    if (found) return found;
    parts.pop();
  }
  return null;
}

/** Show ``message`` beside the field; false when the form has no place for it. */
function fieldError(scope, field, message) {
  const target = field ? findField(scope, field) : null;
  if (!target) return false;
  let box = target.id ? $(`${target.id}-err`) : null;
  if (!box && target.id === "windows") box = $("windows-err");
  if (!box && target.id === "result-codes") box = $("result-codes-err");
  if (!box) {
    const holder = target.closest("li, tr, fieldset") || target.parentElement;
    box = h("p", { class: "field-error", id: `err-${field.replace(/\W/g, "-")}`, dataset: { added: "1" } });
    (holder.tagName === "TR" ? holder.querySelector("th") || holder.lastElementChild : holder).append(box);
    holder.classList.add("has-error");
  }
  const inputs = target.matches("input, select, textarea") ? [target] : [...target.querySelectorAll("input")];
  for (const input of inputs) {
    input.setAttribute("aria-invalid", "true");
    const described = (input.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
    if (!described.includes(box.id)) input.setAttribute("aria-describedby", [...described, box.id].join(" "));
  }
  box.append(box.childNodes.length ? ` / ${message}` : message);
  box.hidden = false;
  return true;
}

/** A refusal's every error beside its field; the rest (and the detail, when no error names a field) on top. */
function showProblem(scope, body, code) {
  const summary = [];
  for (const e of body?.errors || []) {
    const field = String(e.field || "").replace(/\[(\d+)\]/g, ".$1");
    const message = say(e.message, field, e);
    if (!fieldError(scope, field, message)) summary.push(message);
  }
  if (!body?.errors?.length) summary.push(code === 0 ? S.networkError : sayProblem(body, code));
  const box = scope.querySelector(".form-errors");
  if (box) {
    box.replaceChildren(h("p", {}, S["cmp.checkFields"]), summary.length ? h("ul", {}, summary.map((t) => h("li", {}, t))) : "");
    box.hidden = false;
  } else if (summary.length) {
    status(summary.join(" / "), "error");
  }
  for (const details of scope.querySelectorAll("details")) {
    if (details.querySelector("[aria-invalid=true]")) details.open = true; // an error under 詳細設定 is seen
  }
  const first = scope.querySelector("[aria-invalid=true]");
  if (first) first.focus();
  else if (box) box.scrollIntoView({ block: "nearest" });
}

// ---- the list ------------------------------------------------------------------------------------------
// Stopping cannot be undone: the first click asks (the button's own text), a second within STOP_CONFIRM_MS stops.
const STOP_CONFIRM_MS = 5000;

function confirmStop(button) {
  if (button.dataset.confirm === "true") return true;
  button.dataset.confirm = "true";
  button.dataset.label = button.textContent;
  button.textContent = S["cmp.confirmStop"];
  setTimeout(() => {
    if (button.dataset.confirm !== "true") return;
    delete button.dataset.confirm;
    button.textContent = button.dataset.label;
  }, STOP_CONFIRM_MS);
  return false;
}

async function changeStatus(button) {
  if (button.dataset.action === "stop" && !confirmStop(button)) return;
  if (button.dataset.confirm) {
    delete button.dataset.confirm;
    button.textContent = button.dataset.label;
  }
  const id = button.dataset.id;
  button.disabled = true;
  try {
    const res = await api(`/api/v1/campaigns/${encodeURIComponent(id)}/${button.dataset.action}`, { method: "POST" });
    if (res.ok) {
      const badge = document.querySelector(`tr[data-campaign="${CSS.escape(id)}"] .cstatus`);
      if (badge && res.body) {
        badge.className = `cstatus cstatus-${res.body.status}`;
        badge.dataset.status = res.body.status;
        badge.textContent = S[`cmp.status.${res.body.status}`] || res.body.status;
      }
      status(`${res.body?.name || ""}: ${S["cmp.changed"]}`, "ok");
    } else {
      status(`${S["cmp.failed"]}: ${res.status === 0 ? S.networkError : sayProblem(res.body, res.status)}`, "error");
    }
  } finally {
    button.disabled = false;
  }
}

/** The results' figures per campaign; false when the API has none for this role (the cells then stay out). */
async function loadFigures() {
  const table = $("campaigns");
  if (!table) return false;
  const res = await api("/api/v1/campaigns/results");
  if (!res.ok || !Array.isArray(res.body)) return false;
  for (const row of res.body) {
    const tr = table.querySelector(`tr[data-campaign="${CSS.escape(String(row.campaign_id))}"]`);
    if (!tr) continue;
    const values = { dials: row.dials, success: row.successes ?? row.success, remaining: row.remaining };
    for (const [name, value] of Object.entries(values)) {
      const cell = tr.querySelector(`[data-figure="${name}"]`);
      if (cell) cell.textContent = value === null || value === undefined ? "" : Number(value).toLocaleString();
    }
  }
  for (const cell of table.querySelectorAll(".figure")) cell.hidden = false;
  return true;
}

// Calls move the figures: after a call event they are read again, at most every FIGURES_GAP_MS.
const FIGURES_GAP_MS = 5000;
let figuresTimer = null;

function figuresSoon() {
  if (!figuresTimer) figuresTimer = setTimeout(() => {
    figuresTimer = null;
    loadFigures();
  }, FIGURES_GAP_MS);
}

async function listPage() {
  document.addEventListener("click", (event) => {
    const button = event.target.closest?.("button[data-action]");
    if (button) changeStatus(button);
  });
  // Supervisors and admins follow the live stream (client viewers may not: the stream closes with 4403 for them).
  if (await loadFigures() && main.dataset.live === "true") {
    connectEvents({ onEvent: (m) => String(m.name || "").startsWith("call.") && figuresSoon(), onResync: figuresSoon });
  }
}

// ---- the editor ----------------------------------------------------------------------------------------
const numberOrNull = (value) => (String(value).trim() === "" ? null : Number(value));

function windowRows() {
  const rows = [];
  for (const day of document.querySelectorAll("#windows fieldset[data-weekday]")) {
    for (const li of day.querySelectorAll("li.window-row")) rows.push([Number(day.dataset.weekday), li]);
  }
  return rows;
}

/** The form as the API's body; numbers the window and result-code rows as the API will name them. */
function campaignBody(form, isNew) {
  const value = (name) => form.elements[name]?.value ?? "";
  const windows = windowRows().map(([weekday, li], i) => {
    li.dataset.field = `windows.${i}`;
    li.querySelector(".w-start").dataset.field = `windows.${i}.start`;
    li.querySelector(".w-end").dataset.field = `windows.${i}.end`;
    return { weekday, start: li.querySelector(".w-start").value.trim(), end: li.querySelector(".w-end").value.trim() };
  });
  const codes = [];
  for (const tr of form.querySelectorAll("#result-codes tbody tr")) {
    delete tr.dataset.field;
    if (!tr.querySelector(".rc-use").checked) continue;
    tr.dataset.field = `result_codes.${codes.length}`;
    const code = { code: tr.dataset.code };
    for (const box of tr.querySelectorAll(".rc-flag")) code[box.dataset.flag] = box.checked;
    codes.push(code);
  }
  const delays = {};
  for (const input of form.querySelectorAll("[data-delay]")) delays[input.dataset.delay] = numberOrNull(input.value);
  const body = {
    name: value("name").trim(),
    kind: value("kind"),
    caller_id: value("caller_id").trim(),
    dial_mode: value("dial_mode"),
    goal: numberOrNull(value("goal")),
    owner: value("owner").trim() || null,
    opening_statement: value("opening_statement"),
    windows,
    holidays_off: form.elements.holidays_off.checked,
    retry_rules: {
      delays,
      max_attempts: numberOrNull(value("retry_rules.max_attempts")) ?? 5,
      max_per_day: numberOrNull(value("retry_rules.max_per_day")) ?? 3,
    },
    agents: [...form.querySelectorAll('input[name="agents"]:checked')].map((i) => i.value),
    queues: [...form.querySelectorAll('input[name="queues"]:checked')].map((i) => i.value),
    result_codes: codes,
    preview_autodial_s: numberOrNull(value("preview_autodial_s")),
    product_line: value("product_line").trim() || null,
    refusal_scope: value("refusal_scope"),
  };
  const ring = numberOrNull(value("ring_timeout_s"));
  if (ring !== null) body.ring_timeout_s = ring;
  // The predictive settings and the machine detection go with a predictive campaign only (hidden otherwise; a
  // campaign switched away from predictive keeps what it had). Blank numbers: the API's defaults.
  if (body.dial_mode === "predictive") {
    body.predictive = { abandon_message: value("predictive.abandon_message") };
    const target = numberOrNull(value("predictive.abandon_target"));
    if (target !== null) body.predictive.abandon_target = Number((target / 100).toFixed(6)); // the form's % as a fraction
    const lines = numberOrNull(value("predictive.max_lines_per_agent"));
    if (lines !== null) body.predictive.max_lines_per_agent = lines;
    body.predictive.max_in_flight = numberOrNull(value("predictive.max_in_flight"));
    body.amd = {
      enabled: form.elements["amd.enabled"].checked,
      action: value("amd.action"),
      machine_message: value("amd.machine_message"),
    };
    const falseMachines = numberOrNull(value("amd.false_machine_rate"));
    if (falseMachines !== null) body.amd.false_machine_rate = Number((falseMachines / 100).toFixed(6)); // % → fraction
    for (const input of form.querySelectorAll("[data-amd-param]")) {
      const number = numberOrNull(input.value);
      if (number !== null) body.amd[input.dataset.amdParam] = number;
    }
  }
  // Only an admin records why a campaign may call at night; a supervisor's save leaves the reason as it is.
  if (form.dataset.admin === "true") body.night_reason = value("night_reason").trim() || null;
  else if (isNew) delete body.night_reason;
  if (!isNew && body.owner === null) delete body.owner;
  return body;
}

function addWindow(day) {
  const list = document.querySelector(`#windows fieldset[data-weekday="${CSS.escape(day)}"] ul`);
  const row = $("window-template").content.firstElementChild.cloneNode(true);
  list.append(row);
  row.querySelector(".w-start").focus();
}

/** Save the form (POST a new campaign, PATCH a saved one); whether the API took it. */
async function saveCampaign(form, { quiet = false } = {}) {
  const id = form.dataset.id;
  clearErrors(form);
  const body = campaignBody(form, !id);
  const button = $("save");
  button.disabled = true;
  try {
    const res = await api(id ? `/api/v1/campaigns/${encodeURIComponent(id)}` : "/api/v1/campaigns", {
      method: id ? "PATCH" : "POST",
      body,
    });
    if (res.ok) {
      if (!id) {
        location.assign(`/campaigns/${res.body.id}?created=1`);
        return true;
      }
      if (!quiet) status(S["cmp.saved"], "ok");
      return true;
    }
    status("", "info");
    showProblem(form, res.body, res.status);
    return false;
  } finally {
    button.disabled = false;
  }
}

/** Save, then start: a refusal to start (no calling window, a predictive campaign without its identification
 * message…) shows beside its field like a refusal to save. */
async function saveAndStart(form, button) {
  button.disabled = true;
  try {
    if (!(await saveCampaign(form, { quiet: true }))) return;
    const res = await api(`/api/v1/campaigns/${encodeURIComponent(form.dataset.id)}/start`, { method: "POST" });
    if (!res.ok) {
      status("", "info");
      showProblem(form, res.body, res.status);
      return;
    }
    const badge = $("campaign-status");
    if (badge && res.body) {
      badge.className = `cstatus cstatus-${res.body.status}`;
      badge.textContent = S[`cmp.status.${res.body.status}`] || res.body.status;
    }
    button.hidden = true;
    status(S["cmp.started"], "ok");
  } finally {
    button.disabled = false;
  }
}

/** The predictive settings show while the dial mode is predictive. */
function showModeSettings() {
  const section = $("predictive-settings");
  if (section) section.hidden = $("f-mode").value !== "predictive";
}

function editorPage() {
  const form = $("campaign-form");
  if (new URLSearchParams(location.search).has("created")) status(S["cmp.created"], "ok");
  form.addEventListener("click", (event) => {
    const add = event.target.closest?.("[data-add-window]");
    if (add) addWindow(add.dataset.addWindow);
    const remove = event.target.closest?.("[data-remove-window]");
    if (remove) remove.closest("li").remove();
  });
  form.addEventListener("change", (event) => {
    const use = event.target.closest?.(".rc-use");
    if (use) use.closest("tr").classList.toggle("unused", !use.checked);
    if (event.target.id === "f-mode") showModeSettings();
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    saveCampaign(form);
  });
  $("save-start")?.addEventListener("click", (event) => saveAndStart(form, event.currentTarget));
  // The detector's parameters: Asterisk's defaults, or the set tuned for Japanese answers.
  for (const [button, set] of [["amd-defaults", "default"], ["amd-japanese", "japanese"]]) {
    $(button)?.addEventListener("click", () => {
      for (const input of form.querySelectorAll("[data-amd-param]")) input.value = input.dataset[set];
    });
  }
  showModeSettings();
  if ($("upload-form")) uploads(form.dataset.id);
}

// ---- the call-list upload ------------------------------------------------------------------------------
const LIST_TYPES = /\.(csv|txt|tsv|xlsx|xlsm|xls|xlsb|ods)$/i; // as lists_api.py takes them

function uploads(campaignId) {
  const form = $("upload-form");
  const drop = $("drop");
  const input = $("u-file");
  let chosen = null;

  function choose(file) {
    clearErrors(form);
    if (file && !LIST_TYPES.test(file.name)) {
      chosen = null;
      fieldError(form, "file", S["cmp.wrongType"]);
      $("u-file-name").textContent = file.name;
      return;
    }
    chosen = file || null;
    $("u-file-name").textContent = chosen ? `${chosen.name} (${Math.ceil(chosen.size / 1024).toLocaleString()} KB)` : "";
    if (chosen && !$("u-name").value.trim()) $("u-name").value = chosen.name.replace(LIST_TYPES, "");
  }

  input.addEventListener("change", () => choose(input.files[0]));
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (event) => {
      event.preventDefault();
      drop.classList.add("over");
    });
  }
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    choose(event.dataTransfer?.files?.[0]);
  });
  $("u-source-id").addEventListener("change", () => {
    $("u-new-source").hidden = $("u-source-id").value !== "";
  });
  $("u-new-source").hidden = $("u-source-id").value !== "";

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    if (!chosen) {
      fieldError(form, "file", S["cmp.noFile"]);
      return;
    }
    const data = new FormData();
    data.append("file", chosen, chosen.name);
    data.append("name", $("u-name").value.trim() || chosen.name);
    data.append("strict", $("u-strict").checked ? "true" : "false");
    if ($("u-source-id").value) data.append("source_id", $("u-source-id").value);
    else {
      for (const [name, id] of [["provider", "u-provider"], ["method", "u-method"], ["received", "u-received"], ["items", "u-items"]]) {
        const value = $(id).value.trim();
        if (value) data.append(name, value);
      }
    }
    if ($("u-sim").value.trim()) data.append("sim_outcomes", $("u-sim").value.trim());
    const bar = $("u-progress");
    const note = $("u-progress-text");
    bar.value = 0;
    note.textContent = text("cmp.uploading", { percent: 0 });
    $("u-progress-box").hidden = false;
    $("report").hidden = true;
    $("upload").disabled = true;
    try {
      const res = await upload(`/api/v1/campaigns/${encodeURIComponent(campaignId)}/lists`, data, {
        onProgress: (fraction) => {
          bar.value = Math.round(fraction * 100);
          note.textContent = fraction >= 1 ? S["cmp.uploaded"] : text("cmp.uploading", { percent: bar.value });
        },
      });
      if (res.ok && res.body) {
        bar.value = 100;
        $("u-progress-box").dataset.done = "true";
        note.textContent = text("cmp.loaded", { loaded: res.body.rows_loaded ?? 0 });
        showReport(res.body);
        status(text("cmp.loaded", { loaded: res.body.rows_loaded ?? 0 }), "ok");
        loadLists(campaignId);
      } else {
        $("u-progress-box").hidden = true;
        showProblem(form, res.body, res.status);
        status(`${S["cmp.failed"]}: ${res.status === 0 ? S.networkError : sayProblem(res.body, res.status)}`, "error");
      }
    } finally {
      $("upload").disabled = false;
    }
  });
  loadLists(campaignId);
}

function fillTable(table, rows, columns, empty) {
  const body = table.querySelector("tbody");
  if (!rows.length) {
    body.replaceChildren(h("tr", {}, h("td", { colspan: columns, class: "muted" }, empty)));
    return;
  }
  body.replaceChildren(...rows);
}

function showReport(report) {
  $("report").hidden = false;
  const parts = [text("cmp.summary", { total: report.rows_total ?? 0, loaded: report.rows_loaded ?? 0,
    bad: report.rows_bad ?? 0, scrubbed: report.rows_scrubbed ?? 0 })];
  if (report.rows_not_loaded) parts.push(text("cmp.notLoaded", { count: report.rows_not_loaded }));
  if (report.customers) parts.push(text("cmp.customers", report.customers));
  $("report-summary").textContent = parts.join(" · ");
  $("report-summary").dataset.loaded = String(report.rows_loaded ?? 0);
  const bad = report.bad_rows || [];
  const scrubbed = report.scrubbed_rows || [];
  $("bad-count").textContent = String(report.rows_bad ?? bad.length);
  $("scrubbed-count").textContent = String(report.rows_scrubbed ?? scrubbed.length);
  fillTable($("bad-rows"), bad.map((r) => h("tr", {}, h("td", { class: "num" }, String(r.row)), h("td", {}, r.column || ""),
    h("td", {}, say(r.message, r.field || "", r)))), 3, S["cmp.none"]);
  fillTable($("scrubbed-rows"), scrubbed.map((r) => h("tr", { dataset: { reason: r.reason } }, h("td", { class: "num" }, String(r.row ?? "")),
    h("td", { class: "nowrap" }, national(r.phone)), h("td", {}, S[`cmp.reason.${r.reason}`] || r.reason))), 3, S["cmp.none"]);
}

async function loadLists(campaignId) {
  const res = await api(`/api/v1/campaigns/${encodeURIComponent(campaignId)}/lists`);
  if (!res.ok || !Array.isArray(res.body)) return;
  fillTable($("list-table"), res.body.map((l) => h("tr", { dataset: { list: l.id } },
    h("td", {}, l.name), h("td", {}, l.filename || ""), h("td", {}, l.created_by), h("td", { class: "nowrap" }, when(l.created_at)),
    h("td", { class: "num" }, String(l.rows_total)), h("td", { class: "num" }, String(l.rows_loaded)),
    h("td", { class: "num" }, String(l.rows_bad)), h("td", { class: "num" }, String(l.rows_scrubbed)))), 8, S["cmp.noLists"]);
}

// ---- the do-not-call list and the refusals -------------------------------------------------------------
async function loadDnc() {
  const res = await api("/api/v1/campaigns/dnc");
  if (!res.ok) {
    status(sayProblem(res.body, res.status), "error");
    return;
  }
  $("dnc-count").textContent = String(res.body.length);
  fillTable($("dnc-table"), res.body.map((d) => h("tr", { dataset: { dnc: d.id, phone: d.e164 } },
    h("td", { class: "nowrap" }, national(d.e164)), h("td", {}, d.reason), h("td", {}, d.added_by),
    h("td", { class: "nowrap" }, when(d.added_at)),
    h("td", {}, h("button", { type: "button", class: "link", dataset: { removeDnc: d.id }, "aria-label": `${S["cmp.remove"]}: ${national(d.e164)}` }, S["cmp.remove"])))),
  5, S["cmp.noDnc"]);
}

async function loadRefusals() {
  const active = $("r-active").checked;
  const res = await api(`/api/v1/campaigns/refusals${active ? "?active=true" : ""}`);
  if (!res.ok) {
    status(sayProblem(res.body, res.status), "error");
    return;
  }
  const admin = main.dataset.admin === "true";
  $("refusal-count").textContent = String(res.body.length);
  fillTable($("refusal-table"), res.body.map((r) => {
    let last;
    if (r.lifted_at) last = h("span", { class: "muted", title: r.lifted_reason || "" }, `${S["cmp.liftedShort"]} ${when(r.lifted_at)} (${r.lifted_by || ""})`);
    else if (admin) last = h("button", { type: "button", class: "secondary small", dataset: { lift: r.id }, "aria-label": `${S["cmp.lift"]}: ${national(r.e164)}` }, S["cmp.lift"]);
    else last = "";
    return h("tr", { dataset: { refusal: r.id, phone: r.e164 } }, h("td", { class: "nowrap" }, national(r.e164)),
      h("td", {}, S[`cmp.scope.${r.scope}`] || r.scope), h("td", {}, r.by), h("td", { class: "nowrap" }, when(r.at)), h("td", {}, last));
  }), 5, S["cmp.noRefusals"]);
}

/** The lift form in the refusal's row: a reason (required) and the button that sends it. */
function openLift(button) {
  const cell = button.parentElement;
  const id = button.dataset.lift;
  const inputId = `lift-${id}`;
  const form = h("form", { class: "lift", dataset: { liftForm: id }, novalidate: true },
    h("label", { for: inputId, class: "sr-only" }, S["cmp.liftReason"]),
    h("input", { id: inputId, "data-field": "reason", placeholder: S["cmp.liftReason"], maxLength: 2000, "aria-describedby": `${inputId}-err` }),
    h("button", { type: "submit", class: "small" }, S["cmp.lift"]),
    h("button", { type: "button", class: "link", onclick: () => loadRefusals() }, S["cmp.cancel"]),
    h("p", { class: "field-error", id: `${inputId}-err`, hidden: true }));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const res = await api(`/api/v1/campaigns/refusals/${encodeURIComponent(id)}/lift`, { method: "POST", body: { reason: $(inputId).value } });
    if (res.ok) {
      status(S["cmp.lifted"], "ok");
      loadRefusals();
    } else showProblem(form, res.body, res.status);
  });
  cell.replaceChildren(form);
  $(inputId).focus();
}

function dncPage() {
  const form = $("dnc-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const res = await api("/api/v1/campaigns/dnc", { method: "POST", body: { phone: $("d-phone").value, reason: $("d-reason").value } });
    if (res.ok) {
      status(S["cmp.dncAdded"], "ok");
      form.reset();
      loadDnc();
    } else showProblem(form, res.body, res.status);
  });
  const importer = $("dnc-import");
  importer.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(importer);
    const file = $("d-file").files[0];
    if (!file) {
      fieldError(importer, "file", S["cmp.noFile"]);
      return;
    }
    const data = new FormData();
    data.append("file", file, file.name);
    const res = await upload("/api/v1/campaigns/dnc/import", data);
    if (res.ok) {
      const bad = (res.body?.bad_rows || []).map((r) => `${r.row}: ${r.problem || r.message || ""}`);
      status([text("cmp.imported", { added: res.body?.added ?? 0 }), ...bad].join(" / "), bad.length ? "warn" : "ok");
      importer.reset();
      loadDnc();
    } else showProblem(importer, res.body, res.status);
  });
  document.addEventListener("click", async (event) => {
    const remove = event.target.closest?.("button[data-remove-dnc]");
    if (remove) {
      const res = await api(`/api/v1/campaigns/dnc/${encodeURIComponent(remove.dataset.removeDnc)}`, { method: "DELETE" });
      if (res.ok) status(S["cmp.dncRemoved"], "ok");
      else status(sayProblem(res.body, res.status), "error");
      loadDnc();
    }
    const lift = event.target.closest?.("button[data-lift]");
    if (lift) openLift(lift);
  });
  $("r-active").addEventListener("change", loadRefusals);
  loadDnc();
  loadRefusals();
}

if (page === "list") listPage();
else if (page === "edit") editorPage();
else if (page === "dnc") dncPage();
