// A campaign's results (/campaigns/{id}/results): the tiles, four charts (Chart.js, bundled) and the table, from
// GET /api/v1/campaigns/{id}/results?by=… . Every value from the server goes into the page as text (h, setText).
import { $, S, api, duration, h, problem, setText, status, text } from "/static/lib.js";

const main = document.querySelector("main");
const campaignId = main.dataset.campaign;
const CHARTS = ["hour", "day", "agent", "list"];
const charts = {};
let cache = {}; // by → the API's answer for the current window

const lang = document.documentElement.lang || "ja";
const fmtInt = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString(lang));
const fmtPct = (x) => (x === null || x === undefined ? "–" : `${(x * 100).toFixed(1)}%`);
const fmtNum = (x, digits = 2) => (x === null || x === undefined ? "–" : Number(x).toFixed(digits));
const fmtDur = (s) => (s === null || s === undefined ? "–" : duration(s));

/** The window's query: a "to" date is inclusive on the page, ``until`` is exclusive (the next day, 00:00 JST). */
function windowParams() {
  const params = new URLSearchParams();
  const since = $("since").value;
  const until = $("until").value;
  if (since) params.set("since", since);
  if (until) {
    const next = new Date(`${until}T00:00:00Z`);
    next.setUTCDate(next.getUTCDate() + 1);
    params.set("until", next.toISOString().slice(0, 10));
  }
  return params;
}

async function load(by) {
  if (cache[by]) return cache[by];
  const params = windowParams();
  params.set("by", by);
  const res = await api(`/api/v1/campaigns/${campaignId}/results?${params}`);
  if (!res.ok) throw new Error(problem(res.body, res.status));
  cache[by] = res.body;
  return res.body;
}

function rowLabel(by, row) {
  if (row.label !== null && row.label !== undefined) return row.label;
  if (row.key !== null && row.key !== undefined) return row.key;
  return { list: S["cr.noList"], segment: S["cr.noSegment"], agent: S["cr.noAgent"] }[by] || S["cr.none"];
}

// ---- tiles ------------------------------------------------------------------------------------------------------------
function tile(key, value, sub = "") {
  setText($(`kpi-${key}`), value);
  setText($(`kpi-${key}-sub`), sub);
}

function renderTiles(result) {
  const t = result.total;
  tile("dials", fmtInt(t.dials), text("cr.connectRate", { rate: fmtPct(t.connect_rate) }));
  tile("connects", fmtInt(t.connects), text("cr.ofDials", { n: fmtInt(t.dials) }));
  tile("contact_rate", fmtPct(t.contact_rate), text("cr.contacts", { n: fmtInt(t.contacts) }));
  tile("success_rate", fmtPct(t.success_rate), text("cr.successes", { n: fmtInt(t.successes) }));
  tile("refusals", fmtInt(t.refusals));
  tile("abandon_rate", fmtPct(t.abandon_rate), text("cr.abandoned", { n: fmtInt(t.abandoned) }));
  tile("remaining", fmtInt(t.remaining), text("cr.leadsOf", { n: fmtInt(t.leads) }));
  const f = result.forecast;
  main.querySelector('[data-kpi="forecast"]').dataset.status = f.status;
  if (f.status === "ok") {
    tile("forecast", text("cr.forecastHours", { hours: fmtNum(f.hours, 1) }), text("cr.forecastDays", { days: fmtNum(f.working_days, 1), rate: fmtNum(f.rate_per_hour, 1) }));
  } else if (f.status === "too_little_data") {
    tile("forecast", S["cr.forecastShort"], text("cr.forecastShortSub", { days: f.window_days, hours: f.working_hours, n: f.leads_completed }));
  } else {
    tile("forecast", f.status === "finished" ? S["cr.forecastDone"] : S["cr.forecastNoLeads"]);
  }
  const g = result.goal;
  if (g.goal) tile("goal", fmtPct(g.progress), text("cr.goalOf", { n: fmtInt(g.successes), goal: fmtInt(g.goal) }));
  else tile("goal", S["cr.goalNone"], text("cr.successes", { n: fmtInt(g.successes) }));
  $("masked-note").hidden = !result.agents_masked;
}

// ---- charts -----------------------------------------------------------------------------------------------------------
function renderChart(by, result) {
  const rows = result.rows;
  $(`chart-${by}-empty`).hidden = rows.some((r) => r.dials > 0);
  const Chart = window.Chart;
  const canvas = $(`chart-${by}`);
  if (!Chart) {
    const note = $(`chart-${by}-empty`);
    note.hidden = false;
    setText(note, S["cr.chart.noChart"]);
    return;
  }
  const labels = rows.map((r) => rowLabel(by, r));
  const data = {
    labels,
    datasets: [
      // Bars for counts, a dashed line with triangles for the rate (its own axis, in %): not colour alone.
      { type: "bar", label: S["cr.chart.dials"], data: rows.map((r) => r.dials), backgroundColor: "#9fb8d8", yAxisID: "y" },
      { type: "bar", label: S["cr.chart.contacts"], data: rows.map((r) => r.contacts), backgroundColor: "#0b57b5", yAxisID: "y" },
      { type: "bar", label: S["cr.chart.successes"], data: rows.map((r) => r.successes), backgroundColor: "#155e2b", yAxisID: "y" },
      { type: "line", label: S["cr.chart.contactRate"], data: rows.map((r) => (r.contact_rate === null ? null : r.contact_rate * 100)), borderColor: "#b3261e", backgroundColor: "#b3261e", borderDash: [6, 4], pointStyle: "triangle", pointRadius: 4, yAxisID: "rate", order: -1 },
    ],
  };
  if (charts[by]) {
    charts[by].data = data;
    charts[by].update();
    return;
  }
  Chart.defaults.color = "#4f5b69";
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  charts[by] = new Chart(canvas, {
    type: "bar",
    data,
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      interaction: { mode: "index", intersect: false },
      scales: {
        y: { beginAtZero: true, ticks: { precision: 0 } },
        rate: { position: "right", beginAtZero: true, suggestedMax: 100, grid: { drawOnChartArea: false }, ticks: { callback: (v) => `${v}%` } },
        x: { ticks: { autoSkip: true, maxRotation: 45 } },
      },
      plugins: { legend: { position: "bottom", labels: { usePointStyle: true, sort: (a, b) => a.datasetIndex - b.datasetIndex } } },
    },
  });
}

// ---- the table --------------------------------------------------------------------------------------------------------
function cells(row) {
  return [
    fmtInt(row.dials), fmtInt(row.connects), fmtInt(row.contacts), fmtPct(row.contact_rate), fmtInt(row.successes),
    fmtPct(row.success_rate), fmtInt(row.refusals), fmtPct(row.abandon_rate), fmtNum(row.attempts_per_lead),
    fmtDur(row.avg_talk_s), fmtDur(row.avg_wrap_s), row.remaining === null ? "–" : fmtInt(row.remaining),
  ].map((value) => h("td", { class: "num" }, value));
}

function renderTable(by, result) {
  setText($("col-group"), $("group-by").selectedOptions[0].textContent);
  $("rows").replaceChildren(...result.rows.map((r) => h("tr", { dataset: { key: r.key ?? "" } }, h("th", { scope: "row" }, rowLabel(by, r)), ...cells(r))));
  $("total-row").replaceChildren(h("tr", {}, h("th", { scope: "row" }, S["cr.total"]), ...cells(result.total)));
  const params = windowParams();
  params.set("by", by);
  $("download-csv").href = `/api/v1/campaigns/${campaignId}/results.csv?${params}`;
  $("download-xlsx").href = `/api/v1/campaigns/${campaignId}/results.xlsx?${params}`;
}

async function showTable() {
  const by = $("group-by").value;
  try {
    renderTable(by, await load(by));
  } catch (err) {
    status(text("cr.failed", { detail: err.message }), "error");
  }
}

async function refresh() {
  cache = {};
  status(S["cr.loading"]);
  try {
    const answers = await Promise.all(CHARTS.map((by) => load(by)));
    renderTiles(answers[0]);
    CHARTS.forEach((by, i) => renderChart(by, answers[i]));
    await showTable();
    if (!$("status").classList.contains("error")) status("");
    main.dataset.loaded = "true";
  } catch (err) {
    status(text("cr.failed", { detail: err.message }), "error");
  }
}

$("window").addEventListener("submit", (event) => {
  event.preventDefault();
  if ($("since").value && $("until").value && $("until").value < $("since").value) {
    status(S["cr.badWindow"], "error");
    $("until").setAttribute("aria-invalid", "true");
    return;
  }
  $("until").removeAttribute("aria-invalid");
  refresh();
});
$("group-by").addEventListener("change", showTable);
refresh();
