// A timeline of the events extracted from the reports the user may see, the same event
// merged across reports, with the number of independent sources for each.

import { api } from "../api.js";
import { navigate, setTitle } from "../app.js";
import { day, empty, failure, fill, h, plural, pool, s } from "../dom.js";

const TYPES = ["missile_launch", "troop_deployment", "arms_transfer", "military_exercise", "meeting",
  "visit", "agreement_signed", "statement", "phone_call"];
const WIDTH = 960;

const nice = (type) => type.replaceAll("_", " ");

function axisChart(events, onPick) {
  const dated = events.filter((e) => e.date);
  if (!dated.length) return empty("No dated events in this period.");
  const times = dated.map((e) => Date.parse(`${e.date}T00:00:00Z`));
  let t0 = Math.min(...times); let t1 = Math.max(...times);
  if (t1 - t0 < 86_400_000 * 30) { t0 -= 86_400_000 * 15; t1 += 86_400_000 * 15; }
  const types = [...new Set(dated.map((e) => e.type))].sort();
  const lane = 28; const left = 150; const right = 20; const top = 10;
  const height = top + types.length * lane + 34;
  const x = (t) => left + ((t - t0) / (t1 - t0)) * (WIDTH - left - right);
  const svg = s("svg", { viewBox: `0 0 ${WIDTH} ${height}`, class: "chart timeline-chart", id: "timeline-chart", role: "group",
    "aria-label": `Timeline of ${plural(dated.length, "dated event")}` });
  types.forEach((type, i) => {
    const y = top + i * lane + lane / 2;
    svg.append(s("line", { x1: left, x2: WIDTH - right, y1: y, y2: y, class: "lane" }),
      s("text", { x: left - 8, y: y + 4, class: "lane-label", "text-anchor": "end" }, nice(type)));
  });
  const axisY = top + types.length * lane + 6;
  svg.append(s("line", { x1: left, x2: WIDTH - right, y1: axisY, y2: axisY, class: "axis" }));
  const y0 = new Date(t0).getUTCFullYear(); const y1 = new Date(t1).getUTCFullYear();
  const step = y1 - y0 > 8 ? 2 : 1;
  for (let y = y0; y <= y1 + 1; y += 1) {
    for (const month of step === 1 && y1 - y0 < 3 ? [0, 3, 6, 9] : [0]) {
      const t = Date.UTC(y, month, 1);
      if (t < t0 || t > t1) continue;
      svg.append(s("line", { x1: x(t), x2: x(t), y1: axisY, y2: axisY + 5, class: "axis" }),
        s("text", { x: x(t), y: axisY + 18, class: "tick", "text-anchor": "middle" }, month ? `${y}-${String(month + 1).padStart(2, "0")}` : String(y)));
    }
  }
  dated.forEach((e) => {
    const cy = top + types.indexOf(e.type) * lane + lane / 2;
    const r = 4 + Math.min(e.sources, 6);
    const marker = s("a", { href: `#/report/${e.reports[0]}`, class: ["event-marker", `ev-${e.type}`],
      "aria-label": `${nice(e.type)} on ${e.date}, ${plural(e.sources, "source")}` },
    s("title", {}, `${e.date} ${nice(e.type)}: ${[...e.participants].slice(0, 6).join(", ")} (${plural(e.sources, "source")})`),
    s("circle", { cx: x(Date.parse(`${e.date}T00:00:00Z`)), cy, r }));
    marker.addEventListener("click", (event) => { event.preventDefault(); onPick(e); });
    marker.addEventListener("keydown", (event) => { if (event.key === " ") { event.preventDefault(); onPick(e); } });
    svg.append(marker);
  });
  return svg;
}

/** The titles of an event's reports, read when the user opens it (each read is audited). */
function reportList(ids, signal) {
  const list = h("ul", { class: "plain" }, h("li", { class: "muted" }, "Loading titles…"));
  pool(ids.slice(0, 12), 4, (id) => api(`/reports/${id}`, { signal })).then((reports) => {
    fill(list, ...reports.map((r, i) => h("li", {},
      h("a", { href: `#/report/${ids[i]}` }, r && !r.error ? r.title : `report ${ids[i].slice(0, 8)}`))),
    ids.length > 12 ? h("li", { class: "muted" }, `and ${ids.length - 12} more`) : null);
  });
  return list;
}

function eventRow(e, index, signal) {
  const details = h("details", { id: `event-${index}`, class: "event" },
    h("summary", {}, day(e.date), " ", h("strong", {}, nice(e.type)),
      e.places.length ? ` at ${e.places.slice(0, 3).join(", ")}` : "",
      h("span", { class: "sources", title: "independent sources: distinct originator and source name" },
        ` ${plural(e.sources, "source")}`)),
    e.participants.length ? h("p", {}, "Participants: ", e.participants.join(", ")) : null);
  details.addEventListener("toggle", () => {
    if (details.open && !details.dataset.loaded) {
      details.dataset.loaded = "1";
      details.append(h("p", {}, `${plural(e.reports.length, "report")}:`), reportList(e.reports, signal));
    }
  }, { once: false });
  return h("li", {}, details);
}

export async function render({ view, query, signal }) {
  setTitle("Timeline");
  const since = query.get("since") || "";
  const until = query.get("until") || "";
  const type = query.get("type") || "";
  const sinceInput = h("input", { type: "date", id: "tl-since", value: since });
  const untilInput = h("input", { type: "date", id: "tl-until", value: until });
  const typeSelect = h("select", { id: "tl-type" }, h("option", { value: "" }, "all types"),
    TYPES.map((t) => h("option", { value: t, selected: t === type }, nice(t))));
  const form = h("form", { class: "inline-form", onsubmit: (event) => {
    event.preventDefault();
    const params = new URLSearchParams();
    if (sinceInput.value) params.set("since", sinceInput.value);
    if (untilInput.value) params.set("until", untilInput.value);
    if (typeSelect.value) params.set("type", typeSelect.value);
    navigate(`#/timeline?${params}`);
  } },
  h("label", { for: "tl-since" }, "Reported from (UTC)"), sinceInput,
  h("label", { for: "tl-until" }, "to"), untilInput,
  h("label", { for: "tl-type" }, "Type"), typeSelect,
  h("button", { type: "submit" }, "Show"));
  let result;
  try {
    result = await api("/events", { params: { since: since && `${since}T00:00:00Z`, until: until && `${until}T23:59:59Z`,
      type, limit: 300 }, signal });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    fill(view, h("h1", {}, "Timeline"), form, failure(error));
    return;
  }
  const events = result.items;
  const dated = events.filter((e) => e.date).sort((a, b) => a.date.localeCompare(b.date));
  const undated = events.filter((e) => !e.date);
  const list = h("ol", { class: "events", id: "events" }, dated.map((e, i) => eventRow(e, i, signal)).reverse());
  const pick = (e) => {
    const el = view.querySelector(`#event-${dated.indexOf(e)}`);
    if (!el) return;
    el.open = true;
    el.scrollIntoView({ block: "center" });
    el.querySelector("summary").focus();
  };
  fill(view, 
    h("div", { class: "page-head" }, h("h1", {}, "Timeline"),
      h("p", { class: "count", id: "events-count" }, `${plural(dated.length, "dated event")}, ${plural(undated.length, "undated event")}`)),
    form,
    h("p", { class: "hint" }, "Events extracted from the reports you may see (reported in the period), merged across reports. ",
      "A larger dot has more independent sources. Dates are calendar days as the text gives them."),
    axisChart(events, pick),
    h("div", { class: "two-col" },
      h("section", { "aria-labelledby": "dated-h" }, h("h2", { id: "dated-h" }, "Dated events, newest first"),
        dated.length ? list : empty("No dated events.")),
      h("section", { "aria-labelledby": "undated-h", class: "side" }, h("h2", { id: "undated-h" }, "Undated"),
        undated.length ? h("ol", { class: "events" }, undated.map((e, i) => eventRow(e, `u${i}`, signal)))
          : empty("None."))),
  );
}
