// A report: its label as a banner at top and bottom, the text with the entities that
// exploitation found highlighted and linked, grading, versions and correlations.

import { api, download } from "../api.js";
import { session, setTitle } from "../app.js";
import { banner, chip, CREDIBILITY, day, empty, ENTITY_TYPES, failure, fill, grading, h, RELIABILITY, time } from "../dom.js";

const KINDS = {
  duplicate: "same text",
  "near-duplicate": "nearly the same text",
  related: "entities in common, within three days",
};

/** The body as text nodes and <mark> links; spans are code-point offsets (as Python counts). */
export function highlighted(body, entities) {
  const chars = Array.from(body);
  const spans = entities.filter((e) => Number.isInteger(e.start) && e.end > e.start)
    .sort((a, b) => a.start - b.start || b.end - a.end);
  const out = [];
  let at = 0;
  for (const e of spans) {
    if (e.start < at || e.end > chars.length) continue; // overlapping or out of range
    if (e.start > at) out.push(chars.slice(at, e.start).join(""));
    const text = chars.slice(e.start, e.end).join("");
    const title = `${ENTITY_TYPES[e.type] || e.type}: ${e.canonical}`;
    out.push(h("mark", { class: ["entity", `ent-${e.type}`], title },
      e.entity_id ? h("a", { href: `#/entity/${e.entity_id}`, class: "entity-link" }, text) : text));
    at = e.end;
  }
  if (at < chars.length) out.push(chars.slice(at).join(""));
  return out;
}

function legend() {
  return h("ul", { class: "legend", "aria-label": "Entity types" },
    Object.entries(ENTITY_TYPES).map(([type, text]) => h("li", {}, h("mark", { class: ["entity", `ent-${type}`] }, text))));
}

function metaList(r, verify) {
  const row = (term, ...value) => [h("dt", {}, term), h("dd", {}, ...value)];
  return h("dl", { class: "meta-list" },
    row("Type", r.type),
    row("Originator", r.originator, h("span", { class: "muted" }, ` (written by ${r.author})`)),
    row("Source", r.source.name),
    row("Grading", grading(r.source), " — ", h("span", { id: "grading-text" },
      `source ${RELIABILITY[r.source.reliability]}, information ${CREDIBILITY[r.source.credibility]}`)),
    row("Reported", time(r.reported_at)),
    row("Observed", time(r.observed_at)),
    row("Stored", time(r.stored_at)),
    row("Language", r.language),
    row("Signature", verify));
}

function entityPanel(result) {
  if (!result) return null;
  if (result.status === "pending") return empty("Exploitation has not reached this version yet.");
  if (result.status === "failed") return empty("Exploitation failed on this version.");
  const byId = new Map();
  for (const e of result.entities) {
    const key = e.entity_id || `${e.type}:${e.canonical}`;
    const seen = byId.get(key) || { ...e, mentions: 0 };
    seen.mentions += 1;
    byId.set(key, seen);
  }
  const entities = [...byId.values()].sort((a, b) => b.mentions - a.mentions || a.canonical.localeCompare(b.canonical));
  return h("div", {},
    entities.length ? h("ul", { class: "entity-list", id: "report-entities" }, entities.map((e) =>
      h("li", {}, h("mark", { class: ["entity", `ent-${e.type}`] },
        e.entity_id ? h("a", { href: `#/entity/${e.entity_id}` }, e.canonical) : e.canonical),
        h("span", { class: "muted" }, ` ${ENTITY_TYPES[e.type] || e.type}${e.mentions > 1 ? ` ×${e.mentions}` : ""}`))))
      : empty("No entities found."),
    result.events.length ? [h("h3", {}, "Events"), h("ul", { class: "plain" }, result.events.map((ev) =>
      h("li", {}, h("strong", {}, ev.type.replaceAll("_", " ")), " ", day(ev.date),
        ev.place ? ` at ${ev.place}` : "", ev.participants.length ? ` — ${ev.participants.join(", ")}` : "")))] : null,
    result.topics.length ? [h("h3", {}, "Topics"), h("ul", { class: "tags" },
      result.topics.map((t) => h("li", { title: `from: ${t.reason}` }, t.name)))] : null,
    result.quantities.length ? [h("h3", {}, "Quantities"), h("ul", { class: "plain" },
      result.quantities.map((q) => h("li", {}, q.text, q.unit ? h("span", { class: "muted" }, ` (${q.value} ${q.unit})`) : null)))] : null);
}

function versionsPanel(r, versions) {
  return h("ol", { class: "versions", id: "versions" }, versions.map((v) =>
    h("li", { "aria-current": v.version === r.version ? "true" : null },
      v.version === r.version ? h("strong", {}, `Version ${v.version}`)
        : h("a", { href: `#/report/${r.id}/v/${v.version}` }, `Version ${v.version}`),
      " · ", v.author, " · ", time(v.stored_at, { compact: true }),
      v.label.banner !== r.label.banner ? [" ", chip(v.label)] : null)));
}

function relatedPanel(related) {
  if (!related.items.length) return empty("No correlated reports that you may see.");
  return h("ul", { class: "related", id: "related" }, related.items.map((link) =>
    h("li", {}, chip(link.label), " ", h("a", { href: `#/report/${link.id}` }, link.title),
      h("span", { class: "muted" }, ` — ${KINDS[link.kind] || link.kind}` +
        (link.kind === "related" ? ` (${link.score} shared)` : ` (${Math.round(link.score * 100)}%)`)))));
}

async function signature(id, signal) {
  const box = h("span", { id: "signature" }, "checking…");
  api(`/reports/${id}/verify`, { signal }).then((result) => {
    const bad = result.versions.filter((v) => !v.valid);
    box.textContent = bad.length ? `does not verify: ${bad.map((v) => `v${v.version} ${v.reason}`).join("; ")}`
      : `valid for ${result.versions.length} version${result.versions.length > 1 ? "s" : ""}`;
    box.className = bad.length ? "bad" : "good";
  }).catch(() => { box.textContent = "could not be checked"; });
  return box;
}

/** Exploitation runs after the report is stored: ask again until it is done or we leave. */
async function extraction(id, signal, onDone) {
  for (let attempt = 0; attempt < 20 && !signal.aborted; attempt += 1) {
    const result = await api(`/reports/${id}/entities`, { signal });
    if (result.status !== "pending" || attempt === 19) return onDone(result);
    if (attempt === 0) onDone(result);
    await new Promise((resolve) => setTimeout(resolve, 1500));
  }
  return undefined;
}

export async function render({ view, params, signal }) {
  const { id } = params;
  const wanted = params.version ? Number(params.version) : null;
  const [r, versions, related] = await Promise.all([
    api(wanted ? `/reports/${id}/versions/${wanted}` : `/reports/${id}`, { signal }),
    api(`/reports/${id}/versions`, { signal }),
    api(`/reports/${id}/related`, { signal }).catch((error) => ({ items: [], error })),
  ]);
  const latest = versions[versions.length - 1];
  const isCurrent = !latest || latest.version === r.version;
  setTitle(r.title);
  const bodyBox = h("div", { class: "report-body", id: "report-body", lang: r.language }, r.body);
  const entityBox = h("div", { id: "entities-panel" }, isCurrent ? "Loading entities…"
    : empty("Entities are extracted from the current version; this is an older one."));
  if (isCurrent) {
    extraction(id, signal, (result) => {
      fill(entityBox, entityPanel(result));
      if (result.status === "done") fill(bodyBox, ...highlighted(r.body, result.entities));
    }).catch((error) => { if (error.name !== "AbortError") fill(entityBox, failure(error)); });
  }
  const mine = session.me.member === r.originator && session.mayWrite;
  const actions = h("div", { class: "actions" },
    mine && isCurrent ? h("a", { class: "button", href: `#/write?edit=${id}` }, "Write a new version") : null,
    h("a", { class: "button", href: `#/graph?report=${id}` }, "Link graph"),
    r.locations.length ? h("a", { class: "button", href: `#/map?report=${id}` }, "On the map") : null,
    h("button", { type: "button", onclick: () => download(`/reports/${id}/label.xml`, `${id}-label.xml`) },
      "Label as ADatP-4774 XML"));
  fill(view, 
    banner(r.label, "top"),
    h("article", { class: "report", "aria-labelledby": "report-title" },
      h("header", { class: "report-head" },
        h("p", { class: "kicker" }, `${r.type} · ${r.originator} · `, isCurrent ? `version ${r.version}`
          : h("strong", { class: "old-version" }, `version ${r.version} of ${latest.version} (superseded)`)),
        h("h1", { id: "report-title" }, r.title), actions),
      h("div", { class: "report-grid" },
        h("div", { class: "report-main" },
          metaList(r, await signature(id, signal)),
          h("h2", {}, "Text"), isCurrent ? legend() : null, bodyBox,
          r.attachments.length ? [h("h2", {}, "Attachments"), h("ul", { class: "plain" }, r.attachments.map((a) =>
            h("li", {}, h("button", { type: "button", class: "link-button",
              onclick: () => download(`/reports/${id}/attachments/${a.sha256}`, a.name) }, a.name),
              h("span", { class: "muted" }, ` ${a.media_type}, ${a.size.toLocaleString()} bytes`))))] : null,
          r.locations.length ? [h("h2", {}, "Locations"), h("ul", { class: "plain", id: "locations" }, r.locations.map((l) =>
            h("li", {}, l.name || "unnamed", h("span", { class: "muted" }, ` ${l.lat.toFixed(4)}, ${l.lon.toFixed(4)}`))))] : null),
        h("aside", { class: "report-side side" },
          h("h2", {}, "Entities"), entityBox,
          h("h2", {}, "Versions"), versionsPanel(r, versions),
          h("h2", {}, "Correlations"), related.error ? failure(related.error) : relatedPanel(related)))),
    banner(r.label, "bottom"),
  );
}
