// Customer master: phone lookup → customer card; unknown caller → fast new-customer entry.
// Rule: data from the API is only ever put into the page as text (h() of lib.js), never as HTML.
// The agent desktop (desk.js) reuses this module on its own page: it imports the exports at the end and
// listens for the "customer:shown" / "customer:form" events on document (detail: the screen pop / the number).

import { $, S, api, h, status } from "/static/lib.js";

// Recordings are served to supervisors and admins only (the API checks; the page does not offer what fails).
const CAN_PLAY = ["supervisor", "admin"].includes(document.querySelector('meta[name="user-role"]')?.content);

// ---- formatting -----------------------------------------------------------------------------
const TZ = "Asia/Tokyo";
const fmtDateTime = new Intl.DateTimeFormat("ja-JP", {
  timeZone: TZ, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
});
const fmtDay = new Intl.DateTimeFormat("ja-JP", { timeZone: TZ, year: "numeric", month: "2-digit", day: "2-digit" });
const day = (iso) => (iso ? iso.slice(0, 10).replaceAll("-", "/") : "");
const yen = (n) => `¥${Number(n).toLocaleString("ja-JP")}`;
const label = (prefix, value) => S[`${prefix}.${value}`] || value;
const postal = (code) => (code && code.length === 7 ? `〒${code.slice(0, 3)}-${code.slice(3)}` : code || "");
const pad = (n) => String(n).padStart(2, "0");
const none = () => h("p", { class: "muted" }, S.none);

function ageOn(iso, today = new Date()) {
  const [y, m, d] = iso.split("-").map(Number);
  const [ty, tm, td] = fmtDay.format(today).split("/").map(Number);
  return ty - y - (tm < m || (tm === m && td < d) ? 1 : 0);
}

const ERAS = { m: 1867, t: 1911, s: 1925, h: 1988, r: 2018, 明治: 1867, 大正: 1911, 昭和: 1925, 平成: 1988, 令和: 2018 };

/** 1980/5/1, 1980-05-01, 19800501, S55.5.1, 昭和55年5月1日 (full-width too) → "1980-05-01"; null if not a date. */
function parseDate(text) {
  const s = text.normalize("NFKC").trim().toLowerCase();
  const sep = "\\s*[./\\-年月\\s]\\s*";
  let m = s.match(new RegExp(`^(明治|大正|昭和|平成|令和|[mtshr])\\s*(\\d{1,2}|元)${sep}(\\d{1,2})${sep}(\\d{1,2})日?$`));
  let y;
  if (m) y = ERAS[m[1]] + (m[2] === "元" ? 1 : Number(m[2]));
  else if ((m = s.match(new RegExp(`^(\\d{4})${sep}(\\d{1,2})${sep}(\\d{1,2})日?$`)))) y = Number(m[1]);
  else if ((m = s.match(/^(\d{4})(\d{2})(\d{2})$/))) y = Number(m[1]);
  else return null;
  const mo = Number(m[m.length - 2]);
  const d = Number(m[m.length - 1]);
  const dt = new Date(Date.UTC(y, mo - 1, d));
  if (dt.getUTCFullYear() !== y || dt.getUTCMonth() !== mo - 1 || dt.getUTCDate() !== d) return null;
  return `${y}-${pad(mo)}-${pad(d)}`;
}

// ---- page state ------------------------------------------------------------------------------
function show(view) {
  $("card").hidden = view !== "card";
  $("new").hidden = view !== "new";
}

const announce = (name, detail) => document.dispatchEvent(new CustomEvent(name, { detail }));

function setUrl(phone) {
  const url = new URL(location.href);
  url.searchParams.delete("lang");
  if (phone) url.searchParams.set("phone", phone);
  else url.searchParams.delete("phone");
  history.replaceState(null, "", url);
  for (const a of document.querySelectorAll("[data-lang]")) {
    const u = new URL(url);
    u.searchParams.set("lang", a.dataset.lang);
    a.href = u.search;
  }
}

// ---- listbox (suggestions, postal candidates): focus stays in the input ------------------------
function listbox(input, list, { render, onPick, enterPicksFirst = false }) {
  let items = [];
  let active = -1;
  const setActive = (i) => {
    list.querySelectorAll("[role=option]").forEach((li, j) => li.setAttribute("aria-selected", String(i === j)));
    active = i;
    if (i < 0) return input.removeAttribute("aria-activedescendant");
    input.setAttribute("aria-activedescendant", `${list.id}-${i}`);
    list.children[i].scrollIntoView({ block: "nearest" });
  };
  const close = () => {
    items = [];
    list.hidden = true;
    list.replaceChildren();
    input.setAttribute("aria-expanded", "false");
    setActive(-1);
  };
  const pick = (i) => {
    const item = items[i];
    close();
    onPick(item);
  };
  const open = (newItems, { activate = false } = {}) => {
    items = newItems;
    list.replaceChildren(
      ...items.map((item, i) =>
        h("li", { id: `${list.id}-${i}`, role: "option", "aria-selected": "false",
          onmousedown: (e) => { e.preventDefault(); pick(i); } }, render(item)),
      ),
    );
    list.hidden = items.length === 0;
    input.setAttribute("aria-expanded", String(items.length > 0));
    setActive(activate && items.length ? 0 : -1);
  };
  input.addEventListener("keydown", (e) => {
    if (e.isComposing || e.keyCode === 229 || list.hidden || !items.length) return;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      const step = e.key === "ArrowDown" ? 1 : -1;
      setActive(active < 0 && step < 0 ? items.length - 1 : (active + step + items.length) % items.length);
    } else if (e.key === "Enter" && !e.ctrlKey && !e.metaKey) {
      e.preventDefault(); // never submit the form while a list is open
      if (active >= 0) pick(active);
      else if (enterPicksFirst) pick(0);
      else close();
    } else if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation();
      close();
    }
  });
  input.addEventListener("blur", close);
  return { open, close };
}

/** Debounced name suggestions (GET /customers/suggest) into a listbox. */
function suggest(input, box, delay = 150) {
  let timer = 0;
  let seq = 0;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    const q = input.value.trim();
    if (!q) return box.close();
    timer = setTimeout(async () => {
      const mine = ++seq;
      const r = await api(`/api/v1/customers/suggest?q=${encodeURIComponent(q)}&limit=8`);
      if (mine === seq && r.ok && document.activeElement === input && input.value.trim() === q) box.open(r.body);
    }, delay);
  });
}

const renderSuggestion = (c) => [
  h("span", { class: "opt-name" }, c.name, c.caution ? h("span", { class: "opt-flag" }, `⚠ ${S["flag.caution"]}`) : null),
  h("span", { class: "opt-kana" }, c.name_kana || ""),
  h("span", { class: "opt-meta" }, [c.prefecture, c.city].filter(Boolean).join(" "), " ", c.phone || ""),
];

// ---- the customer card -----------------------------------------------------------------------
let lookupSeq = 0;

async function lookupPhone(raw) {
  const phone = raw.trim();
  if (!phone) return status(S.enterNumber, "warn");
  const mine = ++lookupSeq;
  $("card").setAttribute("aria-busy", "true");
  status(S.loading);
  const r = await api(`/api/v1/screenpop?phone=${encodeURIComponent(phone)}`);
  if (mine !== lookupSeq) return;
  $("card").removeAttribute("aria-busy");
  if (!r.ok) return status(r.body?.detail || S.networkError, "error");
  const pop = r.body;
  // Show the number as it is normally written, unless the operator is already typing the next one.
  if (pop.phone.valid && $("phone").value.trim() === phone) $("phone").value = pop.phone.national;
  setUrl(pop.phone.valid ? pop.phone.national : phone);
  if (pop.known) {
    status("");
    return renderCard(pop);
  }
  const n = pop.phone;
  if (n.withheld) status(S.withheld, "warn");
  else if (!n.valid) status(`${S.badNumber}: ${phone}`, "warn");
  else status(`${S.unknownNumber}: ${n.national}`, "warn");
  openForm(n.withheld ? "" : n.valid ? n.national : phone);
}

/** Open a customer picked from a list: by number when there is one, else by id (same card). */
async function openCustomer(c) {
  if (c.phone) {
    $("phone").value = c.phone;
    return lookupPhone(c.phone);
  }
  const r = await api(`/api/v1/screenpop?customer_id=${encodeURIComponent(c.id)}`);
  if (!r.ok) return status(r.body?.detail || S.networkError, "error");
  status("");
  setUrl("");
  renderCard(r.body);
}

function section(title, count, ...body) {
  return h("section", { class: "box" },
    h("h3", {}, title, count != null ? h("span", { class: "count" }, String(count)) : null), ...body);
}

function customValue(f) {
  if (f.value == null || f.value === "") return h("span", { class: "muted" }, "—");
  if (f.type === "boolean") return f.value ? S.yes : S.no;
  if (f.type === "date") return day(f.value);
  return String(f.value);
}

function renderCard(pop) {
  const c = pop.customer;
  const flags = pop.caution_flags.map((f) =>
    h("li", { class: `flag flag-${f.code}`, "data-flag": f.code },
      S[`flag.${f.code}`] || f.label,
      f.detail ? h("span", { class: "detail" }, f.detail) : null));
  const facts = [
    [S.age, c.age != null ? `${c.age}${S.years}` : "—"],
    [S.birthday, c.birthday ? day(c.birthday) : "—"],
    [S.gender, c.gender ? label("gender", c.gender) : "—"],
    [S.rank, label("rank", c.rank)],
    [S.customerId, String(c.id)],
  ];
  const phones = c.phones.map((p) =>
    h("li", { class: p.e164 === pop.phone.e164 ? "calling" : null },
      h("span", { class: "tel" }, p.national), " ",
      h("span", { class: "tag" }, label("kind", p.kind)),
      p.label ? h("span", { class: "tag" }, p.label) : null,
      p.is_primary ? h("span", { class: "tag primary" }, S.primary) : null));
  const address = [c.prefecture, c.city, c.town, c.street].filter(Boolean).join("");
  const orders = pop.orders.length
    ? h("table", { class: "grid" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, S.orderDate), h("th", { scope: "col" }, S.orderNo),
        h("th", { scope: "col" }, S.items), h("th", { scope: "col", class: "num" }, S.total))),
      h("tbody", {}, pop.orders.map((o) => h("tr", {},
        h("td", { class: "nowrap" }, fmtDay.format(new Date(o.ordered_at))),
        h("td", { class: "nowrap" }, o.order_no || "—"),
        h("td", {}, o.lines.map((l) => `${l.name} ×${l.quantity}`).join("、")),
        h("td", { class: "num" }, yen(o.total))))))
    : none();
  const complaints = pop.open_complaints.length
    ? h("ul", { class: "events" }, pop.open_complaints.map((x) => h("li", { class: `sev-${x.severity}` },
      h("div", { class: "ev-head" }, h("span", { class: "when" }, day(x.occurred_on)),
        h("span", { class: "tag danger" }, label("complaint", x.kind)), h("strong", {}, x.category),
        h("span", { class: "tag" }, label("severity", x.severity))),
      h("p", { class: "ev-text" }, x.text))))
    : none();
  const contacts = [...pop.contacts].sort((a, b) => b.occurred_at.localeCompare(a.occurred_at));
  const history = contacts.length
    ? h("ul", { class: "events" }, contacts.map((x) => h("li", {},
      h("div", { class: "ev-head" }, h("span", { class: "when" }, fmtDateTime.format(new Date(x.occurred_at))),
        h("span", { class: "tag" }, label("channel", x.channel), x.direction ? `・${label("direction", x.direction)}` : ""),
        h("span", {}, x.summary), x.agent ? h("span", { class: "muted" }, x.agent) : null),
      x.body ? h("p", { class: "ev-text" }, x.body) : null,
      CAN_PLAY && x.ref?.recording && x.ref?.call_id
        ? h("audio", { controls: true, preload: "none", src: `/api/v1/calls/${Number(x.ref.call_id)}/recording`,
          "aria-label": S.recording })
        : null)))
    : none();

  $("card").replaceChildren(
    flags.length ? h("ul", { class: "flags", "aria-label": S["flag.caution"] }, flags) : "",
    h("div", { class: "card-head" },
      h("div", { class: "who" }, h("p", { class: "kana" }, c.name_kana || ""), h("h2", { class: "name" }, c.name)),
      h("dl", { class: "facts" }, facts.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v))))),
    h("div", { class: "card-grid" },
      section(S.contact, null, h("ul", { class: "phones" }, phones),
        c.email ? h("p", { class: "email" }, c.email) : null),
      section(S.address, null, h("p", {}, postal(c.postal_code)), h("p", {}, address || "—"),
        c.building ? h("p", {}, c.building) : null),
      section(S.notes, null, c.notes ? h("p", { class: "notes" }, c.notes) : none()),
      section(S.custom, null, pop.custom_fields.length
        ? h("dl", { class: "kv" }, pop.custom_fields.map((f) => h("div", {}, h("dt", {}, f.label), h("dd", {}, customValue(f)))))
        : none())),
    h("div", { class: "card-grid wide" }, section(S.orders, pop.orders.length, orders)),
    h("div", { class: "card-grid half" },
      section(S.openComplaints, pop.open_complaints.length, complaints),
      section(S.contacts, contacts.length, history)),
  );
  show("card");
  announce("customer:shown", pop);
}

/** Show a screen pop that arrived with a call (no second request): the card, or the blank form. */
function showPop(pop) {
  lookupSeq++; // a lookup still under way must not replace the caller's card
  $("card").removeAttribute("aria-busy");
  const n = pop.phone;
  $("phone").value = n.valid ? n.national : n.input || "";
  if (pop.known) {
    status("");
    return renderCard(pop);
  }
  status(n.withheld ? S.withheld : `${S.unknownNumber}: ${n.national || n.input || ""}`, "warn");
  openForm(n.withheld ? "" : n.valid ? n.national : n.input || "");
}

// ---- new-customer form -----------------------------------------------------------------------
const form = $("customer-form");
let customDefs = [];

function clearErrors() {
  $("form-errors").hidden = true;
  $("form-errors").replaceChildren();
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  for (const el of form.querySelectorAll(".field-error")) {
    el.hidden = true;
    el.replaceChildren();
  }
}

/** Show ``message`` next to the input for API field ``field``; false if there is no such input. */
function fieldError(field, message, extra = {}) {
  const input = form.querySelector(`[data-field="${CSS.escape(field)}"]`);
  if (!input) return false;
  input.setAttribute("aria-invalid", "true");
  const box = $(`${input.id}-err`);
  box.replaceChildren(message);
  if (extra.customer_id) {
    box.append(" ", h("button", { type: "button", class: "link",
      onclick: () => openCustomer({ id: extra.customer_id, phone: input.value }) }, S.openCustomer));
  }
  box.hidden = false;
  return true;
}

const ERRORS = [
  [/already belongs/i, "err.phoneTaken"], [/listed twice/i, "err.phoneTwice"],
  [/required|missing|at least 1 character/i, "err.required"], [/email/i, "err.email"], [/kana/i, "err.kana"],
  [/postal code/i, "err.postal"], [/phone number|no digits/i, "err.phone"], [/birthday/i, "err.birthday"],
  [/date/i, "err.date"], [/must be one of/i, "err.choice"], [/number/i, "err.number"],
];

function errorText(message) {
  for (const [re, key] of ERRORS) if (re.test(message) && S[key]) return S[key];
  return message;
}

function showProblem(problem) {
  const summary = [];
  for (const e of problem?.errors || []) {
    const field = String(e.field || "").replace(/\[(\d+)\]/g, ".$1");
    const text = errorText(String(e.message));
    if (!fieldError(field, text, e)) summary.push(text);
  }
  if (!problem?.errors?.length) summary.push(problem?.detail || S.networkError);
  $("form-errors").replaceChildren(h("p", {}, S.checkFields), summary.length ? h("ul", {}, summary.map((t) => h("li", {}, t))) : "");
  $("form-errors").hidden = false;
  (form.querySelector("[aria-invalid=true]") || form.querySelector("input")).focus();
}

function openForm(phone = "") {
  form.reset();
  clearErrors();
  postalBox.close();
  nameBox.close();
  lastPostal = "";
  $("f-postal-hint").textContent = $("f-postal-hint").dataset.text;
  $("f-birthday-hint").textContent = $("f-birthday-hint").dataset.text;
  $("f-phone0").value = phone;
  show("new");
  $("f-postal").focus();
  announce("customer:form", phone);
}

function customInput(d) {
  const id = `f-cf-${d.key}`;
  const common = { id, name: d.key, "data-field": `custom.${d.key}`, "aria-describedby": `${id}-err`,
    "aria-required": d.required ? "true" : null };
  let input;
  if (d.type === "boolean") input = h("input", { ...common, type: "checkbox" });
  else if (d.type === "choice") input = h("select", common, h("option", { value: "" }, "—"), (d.choices || []).map((c) => h("option", { value: c }, c)));
  else input = h("input", { ...common, type: { number: "number", date: "date" }[d.type] || "text", autocomplete: "off",
    inputmode: d.type === "number" ? "decimal" : null, step: d.type === "number" ? "any" : null });
  return h("div", { class: `field${d.type === "boolean" ? " check" : ""}` },
    h("label", { for: id }, d.label, d.required ? h("abbr", { class: "req", title: "*" }, " *") : null),
    input, h("p", { class: "field-error", id: `${id}-err`, hidden: true }));
}

async function loadCustomFields() {
  const r = await api("/api/v1/custom-fields");
  if (!r.ok) return;
  customDefs = r.body.filter((d) => d.active).sort((a, b) => a.position - b.position);
  $("custom-fields-body").replaceChildren(...customDefs.map(customInput));
  $("custom-fields").hidden = customDefs.length === 0;
}

function formBody() {
  const value = (id) => $(id).value.trim();
  const body = { name: value("f-name"), phones: [], custom: {} };
  const plain = { name_kana: "f-kana", postal_code: "f-postal", prefecture: "f-prefecture", city: "f-city",
    town: "f-town", street: "f-street", building: "f-building", email: "f-email", gender: "f-gender", notes: "f-notes" };
  for (const [key, id] of Object.entries(plain)) if (value(id)) body[key] = value(id);
  for (const id of ["f-phone0", "f-phone1"]) if (value(id)) body.phones.push({ number: value(id) });
  if (value("f-birthday")) body.birthday = parseDate(value("f-birthday")) || value("f-birthday");
  for (const d of customDefs) {
    const input = $(`f-cf-${d.key}`);
    if (d.type === "boolean") {
      if (input.checked || d.required) body.custom[d.key] = input.checked;
    } else if (input.value.trim()) body.custom[d.key] = input.value.trim();
  }
  return body;
}

let saving = false;
async function save() {
  if (saving) return;
  clearErrors();
  const birthday = $("f-birthday").value.trim();
  if (birthday && !parseDate(birthday)) return showProblem({ errors: [{ field: "birthday", message: S["err.date"] }] });
  saving = true;
  const r = await api("/api/v1/customers", { method: "POST", body: JSON.stringify(formBody()) });
  saving = false;
  if (!r.ok) return showProblem(r.body);
  const c = r.body;
  const number = c.phones.length ? c.phones[0].national : "";
  $("phone").value = number;
  await openCustomer({ id: c.id, phone: number });
  status(`${S.saved}: ${c.name}`, "ok");
}

// postal code → address
let lastPostal = "";
const postalBox = listbox($("f-postal"), $("postal-list"), {
  render: (a) => [h("span", { class: "opt-name" }, `${a.prefecture} ${a.city} ${a.town}`),
    a.note ? h("span", { class: "opt-meta" }, a.note) : null],
  onPick: (a) => fillAddress(a),
});

function fillAddress(a) {
  $("f-prefecture").value = a.prefecture;
  $("f-city").value = a.city;
  $("f-town").value = a.town;
  $("f-postal").value = `${a.postal_code.slice(0, 3)}-${a.postal_code.slice(3)}`;
  $("f-postal-hint").textContent = `${S.postalFilled}: ${a.prefecture}${a.city}${a.town}`;
  if (document.activeElement === $("f-postal")) $("f-name").focus();
}

async function lookupPostal(code) {
  const r = await api(`/api/v1/postal/${code}`);
  if (code !== lastPostal) return;
  const err = $("f-postal-err");
  if (!r.ok) {
    fieldError("postal_code", S.postalNotFound);
    return;
  }
  err.hidden = true;
  $("f-postal").removeAttribute("aria-invalid");
  const candidates = r.body.candidates;
  if (candidates.length === 1) fillAddress(candidates[0]);
  else if (candidates.length > 1) {
    // Fill what every candidate shares (usually prefecture and city); the list picks the town.
    for (const key of ["prefecture", "city"]) {
      if (candidates.every((a) => a[key] === candidates[0][key])) $(`f-${key}`).value = candidates[0][key];
    }
    $("f-town").value = "";
    if (document.activeElement !== $("f-postal")) return;
    $("f-postal-hint").textContent = S.postalPick;
    postalBox.open(candidates, { activate: true });
  }
}

$("f-postal").addEventListener("input", () => {
  const digits = $("f-postal").value.normalize("NFKC").replace(/\D/g, "");
  if (digits.length !== 7) {
    lastPostal = "";
    return postalBox.close();
  }
  if (digits !== lastPostal) {
    lastPostal = digits;
    lookupPostal(digits);
  }
});

$("f-birthday").addEventListener("change", () => {
  const raw = $("f-birthday").value.trim();
  const iso = raw ? parseDate(raw) : "";
  const hint = $("f-birthday-hint");
  if (iso) hint.textContent = `${day(iso)}（${ageOn(iso)}${S.years}）`;
  else hint.textContent = hint.dataset.text;
  if (raw && !iso) fieldError("birthday", S["err.date"]);
  else {
    $("f-birthday").removeAttribute("aria-invalid");
    $("f-birthday-err").hidden = true;
  }
});

// ---- wiring ----------------------------------------------------------------------------------
const nameBox = listbox($("f-name"), $("name-list"), { render: renderSuggestion, onPick: openCustomer });
suggest($("f-name"), nameBox);
const searchBox = listbox($("name-search"), $("name-search-list"), {
  render: renderSuggestion,
  enterPicksFirst: true,
  onPick: (c) => {
    $("name-search").value = "";
    openCustomer(c);
  },
});
suggest($("name-search"), searchBox);

for (const id of ["f-postal-hint", "f-birthday-hint"]) $(id).dataset.text = $(id).textContent;

$("phone-form").addEventListener("submit", (e) => {
  e.preventDefault();
  lookupPhone($("phone").value);
});

form.addEventListener("submit", (e) => {
  e.preventDefault();
  save();
});
form.addEventListener("keydown", (e) => {
  if (e.key !== "Enter" || e.isComposing || e.keyCode === 229) return;
  if (e.ctrlKey || e.metaKey) {
    e.preventDefault();
    save();
  } else if (e.target === $("f-postal")) {
    e.preventDefault(); // Enter in the postal code moves on; it never saves a half-typed form
    $("f-name").focus();
  }
});

$("new-customer").addEventListener("click", () => openForm());
$("cancel-new").addEventListener("click", () => {
  show("none");
  status("");
  $("phone").focus();
});

document.addEventListener("keydown", (e) => {
  const focus = (id) => {
    e.preventDefault();
    $(id).focus();
    $(id).select();
  };
  if (e.key === "F2") focus("phone");
  else if (e.key === "F3") focus("name-search");
  else if (e.key === "F4") {
    e.preventDefault();
    openForm();
  } else if (e.key === "Escape" && !e.defaultPrevented && !document.querySelector("dialog[open]")) focus("phone");
});

loadCustomFields();
setUrl(new URL(location.href).searchParams.get("phone") || "");
if ($("phone").value.trim()) lookupPhone($("phone").value);

export { lookupPhone, openCustomer, openForm, showPop, yen };
