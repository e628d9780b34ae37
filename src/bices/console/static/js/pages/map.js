// A map of report locations and of places the reports mention, drawn on country outlines
// that the node serves itself (Natural Earth, public domain): no tiles, nothing fetched
// from anywhere else.

import { api } from "../api.js";
import { setTitle } from "../app.js";
import { classOf, classSlug, clear, empty, failure, fill, h, plural, pool, s, truncate } from "../dom.js";

const REPORT_PAGES = 2; // up to 400 reports
const PLACE_REPORTS = 30; // places come from the extraction of the newest reports
let world = null; // the outlines, loaded once

async function outlines(signal) {
  if (!world) {
    const response = await fetch("data/world.json", { signal });
    if (!response.ok) throw new Error(`the map outlines could not be loaded (${response.status})`);
    world = await response.json();
  }
  return world;
}

async function reportLocations(signal) {
  const items = [];
  let cursor = null;
  let total = 0;
  for (let i = 0; i < REPORT_PAGES; i += 1) {
    const page = await api("/reports", { params: { limit: 200, cursor }, signal });
    items.push(...page.items);
    total = page.total;
    cursor = page.next_cursor;
    if (!cursor) break;
  }
  return { items, total };
}

async function places(reports, signal) {
  const newest = reports.slice(0, PLACE_REPORTS);
  const results = await pool(newest, 4, (r) => api(`/reports/${r.id}/entities`, { signal }));
  const found = new Map();
  results.forEach((result, i) => {
    if (!result || result.error || result.status !== "done") return;
    for (const e of result.entities) {
      if (typeof e.lat !== "number" || typeof e.lon !== "number" || !e.entity_id) continue;
      const place = found.get(e.entity_id) || { id: e.entity_id, name: e.canonical, type: e.type, lat: e.lat, lon: e.lon, reports: new Set() };
      place.reports.add(newest[i].id);
      found.set(e.entity_id, place);
    }
  });
  return { items: [...found.values()].sort((a, b) => b.reports.size - a.reports.size), from: newest.length };
}

/** The view box [x, y, w, h] (x = lon, y = -lat) around some points, 2:1, padded. */
export function fit(points) {
  if (!points.length) return [-180, -90, 360, 180];
  const lons = points.map((p) => p.lon);
  const lats = points.map((p) => p.lat);
  let x0 = Math.min(...lons) - 8; let x1 = Math.max(...lons) + 8;
  let y0 = -Math.max(...lats) - 6; let y1 = -Math.min(...lats) + 6;
  let w = Math.max(x1 - x0, 24); let hgt = Math.max(y1 - y0, 12);
  if (w / hgt > 2) hgt = w / 2; else w = hgt * 2;
  const cx = (x0 + x1) / 2; const cy = (y0 + y1) / 2;
  w = Math.min(w, 360); hgt = Math.min(hgt, 180);
  x0 = Math.max(-180, Math.min(cx - w / 2, 180 - w));
  y0 = Math.max(-90, Math.min(cy - hgt / 2, 90 - hgt));
  return [x0, y0, w, hgt];
}

function mapView(data, reportPoints, placePoints, focusId) {
  const svg = s("svg", { class: "map", id: "map", tabindex: "0", role: "group", preserveAspectRatio: "xMidYMid meet",
    "aria-label": "Map. Arrow keys pan, plus and minus zoom. The lists beside the map hold the same points." });
  const graticule = s("g", { class: "graticule" });
  for (let lon = -150; lon <= 150; lon += 30) graticule.append(s("line", { x1: lon, x2: lon, y1: -90, y2: 90 }));
  for (let lat = -60; lat <= 60; lat += 30) graticule.append(s("line", { x1: -180, x2: 180, y1: -lat, y2: -lat }));
  const countries = s("g", { class: "countries" }, data.countries.map((c) => s("path", { d: c.d, class: "country" }, s("title", {}, c.name))));
  const markers = s("g", { class: "markers" });
  svg.append(s("rect", { x: -180, y: -90, width: 360, height: 180, class: "sea" }), graticule, countries, markers);

  const focused = reportPoints.filter((p) => p.report.id === focusId);
  let vb = fit(focused.length ? focused : [...reportPoints, ...placePoints]);
  const home = [...vb];

  const draw = () => {
    svg.setAttribute("viewBox", vb.map((v) => v.toFixed(3)).join(" "));
    // Marker sizes stay the same on screen at any zoom: degrees per pixel now.
    const unit = vb[2] / (svg.getBoundingClientRect().width || 900);
    clear(markers);
    for (const p of placePoints) {
      const r = (3 + Math.min(p.reports.size, 8) * 0.35) * unit;
      markers.append(s("a", { href: `#/entity/${p.id}`, class: "marker place", "aria-label": `Place: ${p.name}` },
        s("title", {}, `${p.name} — mentioned in ${plural(p.reports.size, "report")}`),
        s("rect", { x: p.lon - r, y: -p.lat - r, width: r * 2, height: r * 2, transform: `rotate(45 ${p.lon} ${-p.lat})` })));
    }
    for (const p of reportPoints) {
      const r = (p.report.id === focusId ? 8 : 5.5) * unit;
      markers.append(s("a", { href: `#/report/${p.report.id}`, class: ["marker", "report-loc", classSlug(p.report.label), p.report.id === focusId && "focus"],
        "aria-label": `Report location: ${p.name || "unnamed"} — ${p.report.title}` },
      s("title", {}, `${p.name || "unnamed"}: ${p.report.title} (${classOf(p.report.label)})`),
      s("circle", { cx: p.lon, cy: -p.lat, r })));
    }
  };
  const zoom = (factor, cx = vb[0] + vb[2] / 2, cy = vb[1] + vb[3] / 2) => {
    const w = Math.min(360, Math.max(4, vb[2] * factor));
    const hgt = w / 2;
    const x = cx - ((cx - vb[0]) / vb[2]) * w;
    const y = cy - ((cy - vb[1]) / vb[3]) * hgt;
    vb = [Math.max(-180, Math.min(x, 180 - w)), Math.max(-90, Math.min(y, 90 - hgt)), w, hgt];
    draw();
  };
  const pan = (fx, fy) => {
    vb = [Math.max(-180, Math.min(vb[0] + vb[2] * fx, 180 - vb[2])), Math.max(-90, Math.min(vb[1] + vb[3] * fy, 90 - vb[3])), vb[2], vb[3]];
    draw();
  };
  svg.addEventListener("wheel", (event) => {
    event.preventDefault();
    const ctm = svg.getScreenCTM().inverse();
    const point = new DOMPoint(event.clientX, event.clientY).matrixTransform(ctm);
    zoom(event.deltaY > 0 ? 1.25 : 0.8, point.x, point.y);
  }, { passive: false });
  svg.addEventListener("keydown", (event) => {
    const moves = { ArrowLeft: [-0.15, 0], ArrowRight: [0.15, 0], ArrowUp: [0, -0.15], ArrowDown: [0, 0.15] };
    if (moves[event.key]) { event.preventDefault(); pan(...moves[event.key]); }
    else if (event.key === "+" || event.key === "=") { event.preventDefault(); zoom(0.8); }
    else if (event.key === "-") { event.preventDefault(); zoom(1.25); }
  });
  svg.addEventListener("pointerdown", (event) => {
    if (event.target.closest("a")) return;
    const start = [event.clientX, event.clientY, vb[0], vb[1]];
    const scale = vb[2] / svg.getBoundingClientRect().width;
    const move = (e) => {
      vb = [Math.max(-180, Math.min(start[2] - (e.clientX - start[0]) * scale, 180 - vb[2])),
        Math.max(-90, Math.min(start[3] - (e.clientY - start[1]) * scale, 90 - vb[3])), vb[2], vb[3]];
      draw();
    };
    const up = () => { window.removeEventListener("pointermove", move); window.removeEventListener("pointerup", up); };
    window.addEventListener("pointermove", move);
    window.addEventListener("pointerup", up);
  });
  draw();
  new ResizeObserver(() => draw()).observe(svg);
  const controls = h("div", { class: "map-controls", role: "toolbar", "aria-label": "Map view" },
    h("button", { type: "button", onclick: () => zoom(0.7), "aria-label": "Zoom in" }, "+"),
    h("button", { type: "button", onclick: () => zoom(1 / 0.7), "aria-label": "Zoom out" }, "−"),
    h("button", { type: "button", onclick: () => { vb = [...home]; draw(); } }, "Fit"),
    h("button", { type: "button", onclick: () => { vb = [-180, -90, 360, 180]; draw(); } }, "World"));
  return h("div", { class: "map-box" }, controls, svg,
    h("p", { class: "hint attribution" }, "Outlines: Natural Earth (public domain). Equirectangular projection."));
}

export async function render({ view, query, signal }) {
  setTitle("Map");
  const focusId = query.get("report");
  const [data, reports] = await Promise.all([outlines(signal), reportLocations(signal)]);
  const showPlaces = query.get("places") !== "0";
  let placeData = { items: [], from: 0 };
  let placeError = null;
  if (showPlaces) {
    try { placeData = await places(reports.items, signal); } catch (error) {
      if (error.name === "AbortError") throw error;
      placeError = error;
    }
  }
  const reportPoints = reports.items.flatMap((r) => r.locations.map((l) => ({ ...l, report: { id: r.id, title: r.title, label: r.label.banner } })));
  if (focusId && !reportPoints.some((p) => p.report.id === focusId)) {
    const r = await api(`/reports/${focusId}`, { signal });
    reportPoints.push(...r.locations.map((l) => ({ ...l, report: { id: r.id, title: r.title, label: r.label.banner } })));
  }
  const focused = reportPoints.filter((p) => p.report.id === focusId);
  if (focused.length) setTitle(`Map: ${focused[0].report.title}`);
  const withLocations = new Set(reportPoints.map((p) => p.report.id)).size;
  fill(view, 
    h("div", { class: "page-head" }, h("h1", {}, "Map"),
      h("p", { class: "count", id: "map-count" },
        `${plural(reportPoints.length, "report location")} from ${plural(withLocations, "report")}` +
        (showPlaces ? `; ${plural(placeData.items.length, "place")} mentioned in the ${plural(placeData.from, "newest report")}` : ""))),
    h("div", { class: "actions" },
      h("a", { class: "button", href: showPlaces ? `#/map?places=0${focusId ? `&report=${focusId}` : ""}` : `#/map${focusId ? `?report=${focusId}` : ""}` },
        showPlaces ? "Hide places mentioned" : "Show places mentioned")),
    h("div", { class: "map-wrap" },
      mapView(data, reportPoints, placeData.items, focusId),
      h("aside", { class: "side map-lists" },
        h("ul", { class: "legend" },
          h("li", {}, h("span", { class: "key key-loc" }), "Report location (colour: classification)"),
          h("li", {}, h("span", { class: "key key-place" }), "Place mentioned in a report")),
        h("h2", {}, "Report locations"),
        reportPoints.length ? h("ul", { class: "plain scroll", id: "map-reports" }, reportPoints.map((p) =>
          h("li", { class: p.report.id === focusId ? "focus" : null }, h("a", { href: `#/report/${p.report.id}` }, truncate(p.report.title, 70)),
            h("span", { class: "muted" }, ` — ${p.name || "unnamed"} (${p.lat.toFixed(2)}, ${p.lon.toFixed(2)})`))))
          : empty("No report you may see carries a location."),
        showPlaces ? [h("h2", {}, "Places mentioned"), placeError ? failure(placeError)
          : placeData.items.length ? h("ul", { class: "plain scroll", id: "map-places" }, placeData.items.map((p) =>
            h("li", {}, h("a", { href: `#/entity/${p.id}` }, p.name), h("span", { class: "muted" }, ` — ${plural(p.reports.size, "report")}`))))
            : empty("No places found yet.")] : null)),
  );
}
