// The audit trail as the node gives it to this user: operators see events about items they
// may see, member administrators their own member's.

import { api } from "../api.js";
import { navigate, session, setTitle } from "../app.js";
import { empty, fill, h, time, truncate } from "../dom.js";

const PAGE = 100;

function targetLink(event) {
  const t = event.target;
  if (!t) return "—";
  if (/^report\./.test(event.action) && /^[0-9a-f-]{36}$/.test(t)) return h("a", { href: `#/report/${t}` }, t.slice(0, 8));
  if (/^rfi\./.test(event.action) && /^[0-9a-f-]{36}$/.test(t)) return h("a", { href: `#/rfi/${t}` }, t.slice(0, 8));
  if (/^entity\./.test(event.action) && /^[0-9a-f]{16}$/.test(t)) return h("a", { href: `#/entity/${t}` }, t);
  return truncate(t, 40);
}

function row(e) {
  const detail = JSON.stringify(e.detail);
  return h("tr", {}, h("th", { scope: "row" }, String(e.seq)), h("td", {}, time(e.at)), h("td", {}, e.actor),
    h("td", {}, e.member || "—"), h("td", {}, h("code", {}, e.action)), h("td", {}, targetLink(e)),
    h("td", { class: "detail" }, detail.length > 2 ? h("details", {}, h("summary", {}, truncate(detail, 60)), h("pre", {}, JSON.stringify(e.detail, null, 2))) : "—"));
}

/** The after-cursor of the last page: follow the pages to the end (at most `cap` steps). */
async function lastPage(signal, cap = 30) {
  let after = 0;
  for (let i = 0; i < cap; i += 1) {
    const page = await api("/audit", { params: { after, limit: 1000 }, signal });
    if (page.next_after === null) return Math.max(0, (page.items.length ? page.items[page.items.length - 1].seq : after) - PAGE);
    after = page.next_after;
  }
  return after;
}

export async function render({ view, query, signal }) {
  setTitle("Audit trail");
  if (!session.isAdmin) {
    fill(view, h("h1", {}, "Audit trail"), empty("The audit trail is for operators and member administrators."));
    return;
  }
  let after = Number(query.get("after") || 0);
  if (query.get("last") === "1") after = await lastPage(signal);
  const filterText = query.get("filter") || "";
  const page = await api("/audit", { params: { after, limit: PAGE }, signal });
  const needle = filterText.toLowerCase();
  const items = needle ? page.items.filter((e) => `${e.action} ${e.actor} ${e.member} ${e.target}`.toLowerCase().includes(needle)) : page.items;
  const afterInput = h("input", { id: "audit-after", type: "number", min: 0, value: after });
  const filterInput = h("input", { id: "audit-filter", type: "search", value: filterText, placeholder: "report.read, usa.analyst…" });
  const go = (params) => navigate(`#/audit?${new URLSearchParams(params)}`);
  fill(view, 
    h("div", { class: "page-head" }, h("h1", {}, "Audit trail"),
      h("p", { class: "count" }, page.items.length ? `Events ${page.items[0].seq}–${page.items[page.items.length - 1].seq}` : "No events")),
    h("p", { class: "hint" }, "An append-only hash chain: every write, refusal and read. `bices audit verify` checks it."),
    h("form", { class: "inline-form", onsubmit: (event) => {
      event.preventDefault();
      go({ after: afterInput.value || 0, filter: filterInput.value.trim() });
    } },
    h("label", { for: "audit-after" }, "After event"), afterInput,
    h("label", { for: "audit-filter" }, "Filter this page"), filterInput,
    h("button", { type: "submit" }, "Show"),
    h("button", { type: "button", onclick: () => go({ last: "1", filter: filterInput.value.trim() }) }, "Newest")),
    items.length ? h("div", { class: "table-wrap" }, h("table", { id: "audit-table" },
      h("caption", { class: "sr-only" }, "Audit events, oldest first"),
      h("thead", {}, h("tr", {}, ["Seq", "Time", "Actor", "Member", "Action", "Target", "Detail"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, items.map(row)))) : empty(needle ? "No event on this page matches the filter." : "No events after this one."),
    h("div", { class: "actions" },
      after > 0 ? h("button", { type: "button", onclick: () => go({ after: Math.max(0, after - PAGE), filter: filterText }) }, "Earlier") : null,
      page.next_after !== null ? h("button", { type: "button", id: "audit-next", onclick: () => go({ after: page.next_after, filter: filterText }) }, "Later") : null),
  );
}
