// An entity as the user may know it: from the reports the user may see, and no other.

import { api } from "../api.js";
import { setTitle } from "../app.js";
import { chip, classSlug, empty, ENTITY_TYPES, failure, fill, h, plural, pool, s, time } from "../dom.js";

const LIMIT = 200;
const COOCCURRENCE_REPORTS = 25;

/** Reports over time: one bar per month, each month a link-free summary with a title. */
export function monthChart(dates, { width = 640, height = 110 } = {}) {
  const months = new Map();
  for (const iso of dates) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) continue;
    const key = `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, "0")}`;
    months.set(key, (months.get(key) || 0) + 1);
  }
  if (!months.size) return empty("No dated reports.");
  const keys = [...months.keys()].sort();
  const [y0, m0] = keys[0].split("-").map(Number);
  const [y1, m1] = keys[keys.length - 1].split("-").map(Number);
  const span = (y1 - y0) * 12 + (m1 - m0) + 1;
  const max = Math.max(...months.values());
  const pad = 24;
  const bw = (width - pad * 2) / span;
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img",
    "aria-label": `Reports per month from ${keys[0]} to ${keys[keys.length - 1]}` });
  svg.append(s("line", { x1: pad, x2: width - pad, y1: height - 20, y2: height - 20, class: "axis" }));
  for (let i = 0; i < span; i += 1) {
    const y = y0 + Math.floor((m0 - 1 + i) / 12);
    const m = ((m0 - 1 + i) % 12) + 1;
    const key = `${y}-${String(m).padStart(2, "0")}`;
    const n = months.get(key) || 0;
    const x = pad + i * bw;
    if (n) {
      const bh = ((height - 34) * n) / max;
      svg.append(s("rect", { x: x + 1, y: height - 20 - bh, width: Math.max(bw - 2, 1), height: bh, class: "bar" },
        s("title", {}, `${key}: ${plural(n, "report")}`)));
    }
    if (m === 1 || i === 0) svg.append(s("text", { x, y: height - 5, class: "tick" }, m === 1 ? String(y) : key));
  }
  return svg;
}

async function cooccurring(entity, reports, signal) {
  const newest = reports.slice(0, COOCCURRENCE_REPORTS);
  const results = await pool(newest, 4, (r) => api(`/reports/${r.id}/entities`, { signal }));
  const counts = new Map();
  for (const result of results) {
    if (!result || result.error || result.status !== "done") continue;
    const seen = new Set();
    for (const e of result.entities) {
      if (!e.entity_id || e.entity_id === entity.id || seen.has(e.entity_id)) continue;
      seen.add(e.entity_id);
      const entry = counts.get(e.entity_id) || { id: e.entity_id, canonical: e.canonical, type: e.type, reports: 0 };
      entry.reports += 1;
      counts.set(e.entity_id, entry);
    }
  }
  return { items: [...counts.values()].sort((a, b) => b.reports - a.reports || a.canonical.localeCompare(b.canonical)),
    from: newest.length };
}

async function watchButton(entity, signal) {
  const box = h("span", { class: "watch" });
  let watches;
  try {
    watches = (await api("/watchlist", { signal })).items;
  } catch {
    return box;
  }
  const current = watches.find((w) => w.name === entity.canonical);
  const button = h("button", { type: "button", id: "watch", "aria-pressed": current ? "true" : "false",
    onclick: async () => {
      button.disabled = true;
      try {
        const existing = (await api("/watchlist", { signal })).items.find((w) => w.name === entity.canonical);
        if (existing) await api(`/watchlist/${existing.id}`, { method: "DELETE", signal });
        else await api("/watchlist", { method: "POST", body: { name: entity.canonical }, signal });
        button.setAttribute("aria-pressed", existing ? "false" : "true");
        button.textContent = existing ? "Watch" : "Watching — stop";
      } catch (error) {
        box.append(failure(error));
      } finally {
        button.disabled = false;
      }
    } }, current ? "Watching — stop" : "Watch");
  box.append(button);
  return box;
}

export async function render({ view, params, signal }) {
  const entity = await api(`/entities/${params.id}`, { params: { limit: LIMIT }, signal });
  setTitle(entity.canonical);
  const reports = entity.reports;
  const count = reports.length >= LIMIT ? `${LIMIT}+ reports` : plural(reports.length, "report");
  const coBox = h("div", { id: "cooccurring" }, "Reading the reports…");
  fill(view, 
    h("div", { class: "page-head" },
      h("p", { class: "kicker" }, ENTITY_TYPES[entity.type] || entity.type),
      h("h1", {}, entity.canonical),
      h("p", { class: "count", id: "entity-count" }, `Mentioned in ${count} you may see`)),
    h("div", { class: "actions" }, await watchButton(entity, signal),
      h("a", { class: "button", href: `#/graph?entity=${entity.id}` }, "Link graph"),
      h("a", { class: "button", href: `#/search?q=${encodeURIComponent(`"${entity.canonical}"`)}` }, "Search its name")),
    h("div", { class: "two-col" },
      h("div", {},
        h("h2", {}, "Timeline"), monthChart(reports.map((r) => r.reported_at)),
        h("h2", {}, "Reports"),
        reports.length ? h("ol", { class: "compact-list", id: "entity-reports" }, reports.map((r) =>
          h("li", { class: classSlug(r.label) }, chip(r.label), " ", h("a", { href: `#/report/${r.id}` }, r.title),
            h("span", { class: "muted" }, ` ${r.type} · `), time(r.reported_at, { compact: true }))))
          : empty("No reports.")),
      h("aside", { class: "side" },
        h("h2", {}, "Also known as"),
        entity.aliases.length ? h("ul", { class: "tags", id: "aliases" }, entity.aliases.map((a) => h("li", {}, a)))
          : empty("No other names."),
        h("h2", {}, "Mentioned with"), coBox)),
  );
  cooccurring(entity, reports, signal).then(({ items, from }) => {
    fill(coBox, items.length ? h("ol", { class: "plain", id: "cooccurring-list" }, items.slice(0, 25).map((e) =>
      h("li", {}, h("a", { href: `#/entity/${e.id}` }, e.canonical),
        h("span", { class: "muted" }, ` ${ENTITY_TYPES[e.type] || e.type} · ${plural(e.reports, "report")}`))))
      : empty("No other entities in these reports."),
    h("p", { class: "hint" }, `Counted over the ${plural(from, "newest report")} that mention ${entity.canonical}.`));
  }).catch((error) => { if (error.name !== "AbortError") fill(coBox, failure(error)); });
}
