// Search with facets: totals and facet counts are the node's, over what the user may see.

import { api } from "../api.js";
import { navigate, setTitle } from "../app.js";
import { add, chip, classSlug, empty, failure, fill, grading, h, plural, time, truncate } from "../dom.js";

const FACETS = [
  ["type", "Type"],
  ["member", "Originator"],
  ["classification", "Classification"],
  ["language", "Language"],
];

function hashFor(q, filters) {
  const params = new URLSearchParams();
  if (q) params.set("q", q);
  for (const [name] of [...FACETS, ["since"], ["until"]]) {
    for (const value of filters[name] || []) params.append(name, value);
  }
  return `#/search?${params}`;
}

function excerpt(body, q) {
  const words = q.toLowerCase().match(/[\p{L}\p{N}-]{3,}/gu) || [];
  const text = body.replace(/\s+/g, " ");
  const lower = text.toLowerCase();
  const hit = words.map((w) => lower.indexOf(w.replace(/\*$/, ""))).filter((i) => i >= 0).sort((a, b) => a - b)[0];
  const start = hit === undefined ? 0 : Math.max(0, hit - 80);
  const piece = (start ? "…" : "") + truncate(text.slice(start), 260);
  if (!words.length) return [piece];
  const pattern = new RegExp(`(${words.map((w) => w.replace(/\*$/, "").replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|")})`, "giu");
  return piece.split(pattern).map((part, i) => (i % 2 ? h("mark", { class: "hit" }, part) : part));
}

function result(r, q) {
  return h("li", { class: ["result", classSlug(r.label)] },
    h("div", { class: "feed-top" }, chip(r.label)),
    h("h2", { class: "feed-title" }, h("a", { href: `#/report/${r.id}` }, r.title)),
    h("p", { class: "meta" }, `${r.type} · ${r.originator} · ${r.source.name} `, grading(r.source),
      ` · ${r.language} · `, time(r.reported_at)),
    h("p", { class: "excerpt" }, ...excerpt(r.body, q)));
}

function facetBox(name, title, counts, selected, onToggle) {
  const entries = Object.entries(counts || {}).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  for (const value of selected) if (!(value in (counts || {}))) entries.push([value, 0]);
  return h("fieldset", { class: "facet", id: `facet-${name}` },
    h("legend", {}, title),
    entries.length ? entries.map(([value, n]) => {
      const id = `f-${name}-${value.replace(/\W+/g, "_")}`;
      return h("div", { class: "facet-row" },
        h("input", { type: "checkbox", id, checked: selected.includes(value), onchange: () => onToggle(name, value) }),
        h("label", { for: id }, value, h("span", { class: "facet-count" }, n.toLocaleString())));
    }) : h("p", { class: "muted" }, "—"));
}

/** Entity names the user may see, as suggestions while typing (never anything hidden). */
function suggest(input, list, signal) {
  let timer = null;
  let last = "";
  input.addEventListener("input", () => {
    clearTimeout(timer);
    const text = input.value.trim();
    if (text.length < 2 || text === last) return;
    timer = setTimeout(async () => {
      last = text;
      try {
        const found = await api("/entities", { params: { q: text, limit: 8 }, signal });
        fill(list, ...found.items.map((e) => h("option", { value: e.canonical }, `${e.type}, ${e.reports} reports`)));
      } catch { /* suggestions are a convenience: no error shown */ }
    }, 200);
  });
}

export async function render({ view, query, signal }) {
  const q = (query.get("q") || "").trim();
  const filters = Object.fromEntries([...FACETS, ["since"], ["until"]].map(([name]) => [name, query.getAll(name)]));
  setTitle(q ? `Search: ${q}` : "Search");
  const input = h("input", { type: "search", id: "q", name: "q", value: q, list: "entity-suggestions",
    autocomplete: "off", placeholder: "Hwasong OR ICBM, \"joint exercise\", rudal*", "aria-describedby": "q-help" });
  const suggestions = h("datalist", { id: "entity-suggestions" });
  suggest(input, suggestions, signal);
  const since = h("input", { type: "date", id: "since", value: (filters.since[0] || "").slice(0, 10) });
  const until = h("input", { type: "date", id: "until", value: (filters.until[0] || "").slice(0, 10) });
  const form = h("form", { class: "search-form", role: "search", onsubmit: (event) => {
    event.preventDefault();
    const next = { ...filters,
      since: since.value ? [`${since.value}T00:00:00Z`] : [],
      until: until.value ? [`${until.value}T23:59:59Z`] : [] };
    navigate(hashFor(input.value.trim(), next));
  } },
  h("label", { for: "q" }, "Search reports"),
  h("div", { class: "search-row" }, input, suggestions, h("button", { type: "submit", class: "primary" }, "Search")),
  h("p", { id: "q-help", class: "hint" }, "Words are ANDed; use OR, -word to exclude, \"a phrase\", prefix*."),
  h("div", { class: "date-row" }, h("label", { for: "since" }, "Reported from (UTC)"), since,
    h("label", { for: "until" }, "to"), until));

  const toggle = (name, value) => {
    const values = new Set(filters[name]);
    if (values.has(value)) values.delete(value); else values.add(value);
    navigate(hashFor(q, { ...filters, [name]: [...values] }));
  };

  const resultsBox = h("section", { class: "results", "aria-labelledby": "results-h" });
  const facetsBox = h("aside", { class: "facets side", "aria-label": "Refine" });
  fill(view, h("h1", {}, "Search"), form, h("div", { class: "two-col search-cols" }, facetsBox, resultsBox));
  if (!q) {
    add(resultsBox, h("h2", { id: "results-h", class: "sr-only" }, "Results"),
      empty("Type words to search the titles and texts of the reports you may see."));
    add(facetsBox, h("p", { class: "muted" }, "Facets appear with results."));
    return;
  }
  const params = { q, limit: 20 };
  for (const [name] of [...FACETS, ["since"], ["until"]]) params[name] = filters[name];
  let page;
  try {
    page = await api("/search", { params, signal });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    add(resultsBox, h("h2", { id: "results-h" }, "Results"), failure(error));
    return;
  }
  add(facetsBox, h("h2", {}, "Refine"),
    ...FACETS.map(([name, title]) => facetBox(name, title, page.facets[name], filters[name], toggle)));
  const list = h("ol", { class: "results-list", id: "results" }, page.items.map((r) => result(r, q)));
  const more = h("button", { type: "button", id: "search-more", hidden: !page.next_cursor, onclick: async () => {
    more.disabled = true;
    try {
      page = await api("/search", { params: { ...params, cursor: page.next_cursor }, signal });
      list.append(...page.items.map((r) => result(r, q)));
      more.hidden = !page.next_cursor;
    } catch (error) {
      more.after(failure(error));
    } finally {
      more.disabled = false;
    }
  } }, "More results");
  add(resultsBox, 
    h("h2", { id: "results-h" }, h("span", { id: "result-count" },
      `${page.total_exact ? "" : "at least "}${plural(page.total, "report")}`), " found"),
    page.total_exact ? null : h("p", { class: "hint" },
      "Too many matches to rank: the newest come first, and facets count the newest matches. Add words to rank by relevance."),
    page.items.length ? list : empty("Nothing you may see matches. Try fewer words or other filters."),
    more);
}
