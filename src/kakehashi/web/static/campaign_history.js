// The caller's outbound campaigns on the desk (issue 17): when a number that is a lead calls in, the screen pop
// carries ``campaign_history`` (campaign, lead status, attempts, last result, last attempt) and this block shows
// it above the customer card — for a known customer and for a caller without a record alike.
// Rule as everywhere: data from the API goes into the page as text (h()), never as HTML.

import { $, S, h } from "/static/lib.js";

const fmtWhen = new Intl.DateTimeFormat("ja-JP", {
  timeZone: "Asia/Tokyo", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
});
const leadStatus = (s) => S[`ch.status.${s}`] || s;
const result = (r) => (r ? S[`ch.result.${r}`] || r : "—");

/** Draw (or clear) the block for a screen pop; placed just before the card, so it shows with the form too. */
export function showCampaignHistory(pop) {
  const rows = pop?.campaign_history || [];
  const block = $("campaign-history");
  if (!rows.length) {
    if (block) block.remove();
    return;
  }
  const table = h("table", { class: "grid" },
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, S["ch.campaign"]), h("th", { scope: "col" }, S["ch.status"]),
      h("th", { scope: "col", class: "num" }, S["ch.attempts"]), h("th", { scope: "col" }, S["ch.lastResult"]),
      h("th", { scope: "col" }, S["ch.lastAttempt"]))),
    h("tbody", {}, rows.map((x) => h("tr", { "data-lead": String(x.lead_id) },
      h("td", {}, x.campaign),
      h("td", {}, leadStatus(x.status)),
      h("td", { class: "num" }, String(x.attempts)),
      h("td", {}, result(x.last_result)),
      h("td", { class: "nowrap" }, x.last_attempt_at ? fmtWhen.format(new Date(x.last_attempt_at)) : "—")))));
  const fresh = h("section", { id: "campaign-history", class: "box", "aria-label": S["ch.title"] },
    h("h3", {}, S["ch.title"], h("span", { class: "count" }, String(rows.length))), table);
  if (block) block.replaceWith(fresh);
  else $("card").before(fresh);
}

// A customer opened from a search brings their own history (customers.js announces every card it draws).
document.addEventListener("customer:shown", (e) => showCampaignHistory(e.detail));
