// A link graph of reports and the entities they mention, laid out by a small force
// simulation and drawn in SVG. Built from the API's answers for this user only.

import { api } from "../api.js";
import { setTitle } from "../app.js";
import { add, classOf, classSlug, clear, empty, ENTITY_TYPES, failure, fill, h, plural, pool, s, truncate } from "../dom.js";

const REPORTS = 15;
const MAX_ENTITIES = 45;
const WIDTH = 900;
const HEIGHT = 620;

/** A deterministic pseudo-random sequence, so that a graph is drawn the same each time. */
function random(seed) {
  let x = seed || 1;
  return () => {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    return ((x >>> 0) % 100000) / 100000;
  };
}

/** Spring-embedder (Fruchterman-Reingold flavour): repulsion between all nodes, springs on
 * links, a pull to the centre; cooled over a fixed number of steps. */
export function layout(nodes, links, { width = WIDTH, height = HEIGHT, steps = 300 } = {}) {
  const rand = random(nodes.length * 7919 + links.length);
  const k = Math.sqrt((width * height) / Math.max(nodes.length, 1)) * 0.8;
  nodes.forEach((n, i) => {
    const angle = (2 * Math.PI * i) / nodes.length;
    n.x = width / 2 + Math.cos(angle) * width * 0.3 + rand() * 10;
    n.y = height / 2 + Math.sin(angle) * height * 0.3 + rand() * 10;
  });
  const index = new Map(nodes.map((n, i) => [n.key, i]));
  let temperature = width / 8;
  for (let step = 0; step < steps; step += 1) {
    const dx = new Float64Array(nodes.length);
    const dy = new Float64Array(nodes.length);
    for (let i = 0; i < nodes.length; i += 1) {
      for (let j = i + 1; j < nodes.length; j += 1) {
        let x = nodes[i].x - nodes[j].x;
        let y = nodes[i].y - nodes[j].y;
        let d2 = x * x + y * y;
        if (d2 < 0.01) { x = rand() - 0.5; y = rand() - 0.5; d2 = 0.5; }
        const force = (k * k) / d2;
        dx[i] += x * force; dy[i] += y * force;
        dx[j] -= x * force; dy[j] -= y * force;
      }
    }
    for (const link of links) {
      const a = index.get(link.source);
      const b = index.get(link.target);
      const x = nodes[a].x - nodes[b].x;
      const y = nodes[a].y - nodes[b].y;
      const d = Math.sqrt(x * x + y * y) || 0.01;
      const pull = d / k;
      dx[a] -= x * pull; dy[a] -= y * pull;
      dx[b] += x * pull; dy[b] += y * pull;
    }
    nodes.forEach((n, i) => {
      dx[i] += (width / 2 - n.x) * 0.02;
      dy[i] += (height / 2 - n.y) * 0.02;
      const d = Math.sqrt(dx[i] * dx[i] + dy[i] * dy[i]) || 1;
      const move = Math.min(d, temperature);
      n.x += (dx[i] / d) * move;
      n.y += (dy[i] / d) * move;
    });
    temperature = Math.max(temperature * 0.97, 0.5);
  }
  // Scale the drawing to the box: room on the right for labels.
  const xs = nodes.map((n) => n.x);
  const ys = nodes.map((n) => n.y);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  for (const n of nodes) {
    n.x = 30 + ((n.x - x0) / (x1 - x0 || 1)) * (width - 200);
    n.y = 24 + ((n.y - y0) / (y1 - y0 || 1)) * (height - 48);
  }
  return nodes;
}

async function seedReports(query, signal) {
  if (query.get("entity")) {
    const entity = await api(`/entities/${query.get("entity")}`, { params: { limit: REPORTS }, signal });
    return { title: entity.canonical, seedKey: `e:${entity.id}`, reports: entity.reports,
      describe: `the ${plural(entity.reports.length, "newest report")} that mention ${entity.canonical}` };
  }
  if (query.get("report")) {
    const report = await api(`/reports/${query.get("report")}`, { signal });
    const related = await api(`/reports/${report.id}/related`, { params: { limit: REPORTS - 1 }, signal });
    return { title: report.title, seedKey: `r:${report.id}`,
      reports: [{ ...report, label: report.label.banner }, ...related.items],
      describe: `this report and ${plural(related.items.length, "correlated report")}` };
  }
  const page = await api("/reports", { params: { limit: REPORTS }, signal });
  return { title: null, seedKey: null, reports: page.items.map((r) => ({ ...r, label: r.label.banner })),
    describe: `the ${plural(page.items.length, "newest report")} you may see` };
}

export async function build(query, signal) {
  const seed = await seedReports(query, signal);
  const extractions = await pool(seed.reports, 4, (r) => api(`/reports/${r.id}/entities`, { signal }));
  const nodes = new Map();
  const links = [];
  seed.reports.forEach((r, i) => {
    nodes.set(`r:${r.id}`, { key: `r:${r.id}`, kind: "report", id: r.id, name: r.title, label: r.label, degree: 0 });
    const result = extractions[i];
    if (!result || result.error || result.status !== "done") return;
    const seen = new Set();
    for (const e of result.entities) {
      if (!e.entity_id || seen.has(e.entity_id)) continue;
      seen.add(e.entity_id);
      const key = `e:${e.entity_id}`;
      if (!nodes.has(key)) nodes.set(key, { key, kind: "entity", id: e.entity_id, name: e.canonical, type: e.type, degree: 0 });
      links.push({ source: `r:${r.id}`, target: key });
    }
  });
  for (const link of links) { nodes.get(link.source).degree += 1; nodes.get(link.target).degree += 1; }
  // Keep the entities that tie reports together (and the seed); the graph stays readable.
  const entities = [...nodes.values()].filter((n) => n.kind === "entity")
    .sort((a, b) => (b.key === seed.seedKey) - (a.key === seed.seedKey) || b.degree - a.degree || a.name.localeCompare(b.name));
  const kept = new Set(entities.filter((n, i) => n.key === seed.seedKey || (i < MAX_ENTITIES && (n.degree > 1 || entities.length <= 25)))
    .map((n) => n.key));
  const shownLinks = links.filter((l) => kept.has(l.target));
  const shown = [...nodes.values()].filter((n) => n.kind === "report" || kept.has(n.key));
  return { seed, nodes: shown, links: shownLinks, hidden: entities.length - kept.size };
}

function draw(graph, details) {
  const { nodes, links, seed } = graph;
  layout(nodes, links);
  const byKey = new Map(nodes.map((n) => [n.key, n]));
  const neighbours = new Map(nodes.map((n) => [n.key, new Set()]));
  for (const l of links) { neighbours.get(l.source).add(l.target); neighbours.get(l.target).add(l.source); }
  const svg = s("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: "graph", id: "graph", role: "group",
    "aria-label": `Link graph: ${plural(nodes.filter((n) => n.kind === "report").length, "report")}, ` +
      `${plural(nodes.filter((n) => n.kind === "entity").length, "entity", "entities")}` });
  const edgeLayer = s("g", { class: "edges" });
  const nodeLayer = s("g", { class: "nodes" });
  svg.append(edgeLayer, nodeLayer);
  const lines = links.map((l) => {
    const line = s("line", { class: "edge", dataset: { a: l.source, b: l.target } });
    edgeLayer.append(line);
    return line;
  });
  const place = () => {
    lines.forEach((line, i) => {
      const a = byKey.get(links[i].source);
      const b = byKey.get(links[i].target);
      line.setAttribute("x1", a.x.toFixed(1)); line.setAttribute("y1", a.y.toFixed(1));
      line.setAttribute("x2", b.x.toFixed(1)); line.setAttribute("y2", b.y.toFixed(1));
    });
    for (const n of nodes) n.el.setAttribute("transform", `translate(${n.x.toFixed(1)} ${n.y.toFixed(1)})`);
  };
  const focus = (node) => {
    const near = node ? neighbours.get(node.key) : null;
    for (const n of nodes) n.el.classList.toggle("dim", !!node && n !== node && !near.has(n.key));
    lines.forEach((line, i) => line.classList.toggle("lit", !!node && (links[i].source === node.key || links[i].target === node.key)));
    clear(details);
    if (!node) return;
    const linked = [...near].map((key) => byKey.get(key)).sort((a, b) => a.name.localeCompare(b.name));
    add(details, h("h3", {}, node.name),
      h("p", { class: "muted" }, node.kind === "report" ? classOf(node.label) : ENTITY_TYPES[node.type] || node.type),
      h("p", {}, h("a", { href: node.kind === "report" ? `#/report/${node.id}` : `#/entity/${node.id}` }, "Open"),
        node.kind === "entity" ? [" · ", h("a", { href: `#/graph?entity=${node.id}` }, "Graph around it")] : null,
        node.kind === "report" ? [" · ", h("a", { href: `#/graph?report=${node.id}` }, "Graph around it")] : null),
      h("p", {}, `Linked to ${plural(linked.length, "node")}:`),
      h("ul", { class: "plain" }, linked.slice(0, 20).map((n) => h("li", {}, n.name))));
  };
  for (const n of nodes) {
    const r = n.kind === "report" ? 9 : 5 + Math.min(n.degree, 8);
    const shape = n.kind === "report"
      ? s("rect", { x: -r, y: -r, width: r * 2, height: r * 2, rx: 2, class: ["node-report", classSlug(n.label)] })
      : s("circle", { r, class: ["node-entity", `ent-${n.type}`] });
    n.el = s("a", { href: n.kind === "report" ? `#/report/${n.id}` : `#/entity/${n.id}`, class: ["node", n.key === seed.seedKey && "seed"],
      "aria-label": `${n.kind === "report" ? "Report" : ENTITY_TYPES[n.type] || "Entity"}: ${n.name}`, dataset: { key: n.key } },
    s("title", {}, n.name), shape,
    s("text", { x: r + 3, y: 4, class: n.kind === "report" ? "label-report" : "label-entity" },
      truncate(n.name, n.kind === "report" ? 28 : 22)));
    n.el.addEventListener("focus", () => focus(n));
    n.el.addEventListener("mouseenter", () => focus(n));
    let dragged = false;
    n.el.addEventListener("pointerdown", (event) => {
      if (event.button !== 0) return;
      dragged = false;
      const ctm = svg.getScreenCTM();
      const move = (e) => {
        dragged = true;
        n.x = (e.clientX - ctm.e) / ctm.a;
        n.y = (e.clientY - ctm.f) / ctm.d;
        place();
      };
      const up = () => { window.removeEventListener("pointermove", move); window.removeEventListener("pointerup", up); };
      window.addEventListener("pointermove", move);
      window.addEventListener("pointerup", up);
    });
    n.el.addEventListener("click", (event) => { if (dragged) { event.preventDefault(); dragged = false; } });
    nodeLayer.append(n.el);
  }
  place();
  return svg;
}

function asList(graph) {
  const entities = graph.nodes.filter((n) => n.kind === "entity").sort((a, b) => b.degree - a.degree);
  return h("details", { class: "as-list" }, h("summary", {}, "The graph as a list"),
    h("ul", { class: "plain", id: "graph-list" }, entities.map((n) => h("li", {},
      h("a", { href: `#/entity/${n.id}` }, n.name), ` — in ${plural(n.degree, "report")}`))),
    h("p", {}, "Reports:"),
    h("ul", { class: "plain" }, graph.nodes.filter((n) => n.kind === "report").map((n) =>
      h("li", {}, h("a", { href: `#/report/${n.id}` }, n.name)))));
}

export async function render({ view, query, signal }) {
  setTitle("Link graph");
  fill(view, h("h1", {}, "Link graph"), h("p", { class: "state loading", role: "status" }, "Reading reports…"));
  let graph;
  try {
    graph = await build(query, signal);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    if (error.status === 404) throw error;
    fill(view, h("h1", {}, "Link graph"), failure(error));
    return;
  }
  if (graph.seed.title) setTitle(`Link graph: ${graph.seed.title}`);
  const details = h("div", { class: "graph-details", id: "graph-details", "aria-live": "polite" },
    h("p", { class: "muted" }, "Point at or tab to a node to see what it links to; drag to move it."));
  const legend = h("ul", { class: "legend" },
    h("li", {}, h("span", { class: "key key-report" }), "Report (colour: classification)"),
    Object.entries(ENTITY_TYPES).map(([type, text]) => h("li", {}, h("span", { class: ["key", "key-entity", `ent-${type}`] }), text)));
  fill(view, 
    h("div", { class: "page-head" }, h("h1", {}, graph.seed.title ? `Link graph: ${graph.seed.title}` : "Link graph"),
      h("p", { class: "count" }, `From ${graph.seed.describe}` +
        (graph.hidden > 0 ? `; ${plural(graph.hidden, "entity", "entities")} mentioned only once left out` : ""))),
    graph.nodes.length ? h("div", { class: "graph-wrap" },
      h("div", { class: "graph-box" }, draw(graph, details)),
      h("aside", { class: "side" }, h("h2", {}, "Selected"), details, h("h2", {}, "Key"), legend))
      : empty("Nothing to draw: no reports you may see."),
    graph.nodes.length ? asList(graph) : null);
}
