// Write a report, a new version of one of the member's reports, or an RFI's answer.

import { api } from "../api.js";
import { navigate, session, setTitle } from "../app.js";
import { clear, CREDIBILITY, empty, failure, fill, h, RELIABILITY } from "../dom.js";
import { directory, labelPicker } from "../labelpicker.js";

const TYPES = ["INTREP", "INTSUM", "SPOTREP", "OSINT", "TRACK", "ISR", "RFI-RESPONSE"];
const LANGUAGES = [["en", "English"], ["id", "Indonesian"], ["ko", "Korean"], ["ja", "Japanese"], ["fr", "French"],
  ["de", "German"], ["es", "Spanish"], ["pl", "Polish"], ["et", "Estonian"], ["ru", "Russian"]];

/** A datetime-local value read as UTC (the form says so), or null. */
export function utcFromInput(value) {
  return value ? `${value.length === 16 ? `${value}:00` : value}Z` : null;
}

function toInput(iso) {
  return iso ? new Date(iso).toISOString().slice(0, 16) : "";
}

function field(id, text, control, hint) {
  return h("div", { class: "field" }, h("label", { for: id }, text), control, hint ? h("p", { class: "hint" }, hint) : null);
}

function locationRow(location = {}) {
  const n = Math.random().toString(36).slice(2, 8);
  const row = h("div", { class: "location-row" },
    h("label", { for: `lat-${n}` }, "Lat"), h("input", { id: `lat-${n}`, type: "number", step: "any", min: -90, max: 90, value: location.lat ?? "", class: "lat" }),
    h("label", { for: `lon-${n}` }, "Lon"), h("input", { id: `lon-${n}`, type: "number", step: "any", min: -180, max: 180, value: location.lon ?? "", class: "lon" }),
    h("label", { for: `loc-${n}` }, "Name"), h("input", { id: `loc-${n}`, type: "text", value: location.name ?? "", class: "loc-name" }),
    h("button", { type: "button", class: "link-button", onclick: () => row.remove() }, "Remove"));
  return row;
}

export async function render({ view, query, signal }) {
  const editId = query.get("edit");
  const rfiId = query.get("rfi");
  if (!session.mayWrite) {
    setTitle("Write a report");
    fill(view, h("h1", {}, "Write a report"), empty("Writing reports needs the analyst, collector or releaser role."));
    return;
  }
  const [dir, original, rfi] = await Promise.all([
    directory(signal),
    editId ? api(`/reports/${editId}`, { signal }) : null,
    rfiId ? api(`/rfis/${rfiId}`, { signal }) : null,
  ]);
  const heading = original ? `New version of “${original.title}”` : rfi ? "Answer an RFI" : "Write a report";
  setTitle(original ? `New version: ${original.title}` : heading);

  const type = h("select", { id: "w-type", disabled: !!rfi }, TYPES.map((t) => h("option", { value: t,
    selected: rfi ? t === "RFI-RESPONSE" : original ? t === original.type : t === "INTREP" }, t)));
  const title = h("input", { id: "w-title", type: "text", required: true, maxlength: 500, value: original ? original.title : rfi ? `Answer: ${rfi.question}`.slice(0, 500) : "" });
  const body = h("textarea", { id: "w-body", rows: 12, required: true }, original ? original.body : "");
  const language = h("select", { id: "w-language" }, LANGUAGES.map(([code, name]) => h("option", { value: code, selected: code === (original ? original.language : "en") }, `${name} (${code})`)));
  const sourceName = h("input", { id: "w-source", type: "text", required: true, value: original ? original.source.name : "" });
  const reliability = h("select", { id: "w-reliability" }, Object.entries(RELIABILITY).map(([k, v]) =>
    h("option", { value: k, selected: original ? original.source.reliability === k : k === "C" }, `${k} — ${v}`)));
  const credibility = h("select", { id: "w-credibility" }, Object.entries(CREDIBILITY).map(([k, v]) =>
    h("option", { value: k, selected: original ? String(original.source.credibility) === k : k === "3" }, `${k} — ${v}`)));
  const observed = h("input", { id: "w-observed", type: "datetime-local", value: original ? toInput(original.observed_at) : "" });
  const locations = h("div", { class: "locations", id: "w-locations" }, (original ? original.locations : []).map(locationRow));
  const picker = labelPicker(session.me, dir, { initial: original ? original.label : rfi ? rfi.label : null, idPrefix: "w-label" });
  const errors = h("div", { id: "w-errors" });
  const submit = h("button", { type: "submit", class: "primary", id: "w-submit" }, original ? "Store the new version" : rfi ? "Send the answer" : "Store the report");

  const form = h("form", { class: "card write-form", novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    clear(errors);
    const problem = picker.problem();
    if (problem) { errors.append(failure({ message: problem })); return; }
    if (!title.value.trim() || !sourceName.value.trim()) {
      errors.append(failure({ message: "A title and a source name are needed." }));
      return;
    }
    const draft = {
      type: rfi ? "RFI-RESPONSE" : type.value,
      title: title.value.trim(),
      body: body.value,
      language: language.value,
      label: picker.value(),
      source: { name: sourceName.value.trim(), reliability: reliability.value, credibility: Number(credibility.value) },
      observed_at: utcFromInput(observed.value),
      locations: [...locations.querySelectorAll(".location-row")].map((row) => ({
        lat: Number(row.querySelector(".lat").value), lon: Number(row.querySelector(".lon").value),
        name: row.querySelector(".loc-name").value.trim() || null,
      })).filter((l) => !Number.isNaN(l.lat) && !Number.isNaN(l.lon) && (l.lat || l.lon)),
    };
    submit.disabled = true;
    try {
      if (original) {
        const stored = await api(`/reports/${editId}`, { method: "PUT", body: draft, signal });
        navigate(`#/report/${stored.id}`);
      } else if (rfi) {
        await api(`/rfis/${rfiId}/answers`, { method: "POST", body: { report: draft }, signal });
        navigate(`#/rfi/${rfiId}`);
      } else {
        const stored = await api("/reports", { method: "POST", body: draft, signal });
        navigate(`#/report/${stored.id}`);
      }
    } catch (error) {
      if (error.name === "AbortError") return;
      errors.append(failure(error));
      errors.querySelector("[role=alert]")?.focus?.();
    } finally {
      submit.disabled = false;
    }
  } },
  rfi ? h("p", { class: "hint" }, "Answering: ", h("a", { href: `#/rfi/${rfi.id}` }, rfi.question),
    ". The label must be releasable to the asker's member, ", rfi.asker_member, ".") : null,
  h("div", { class: "form-grid" },
    field("w-type", "Type", type),
    field("w-language", "Language", language),
    field("w-title", "Title", title),
    field("w-body", "Text", body, "Entities, events and places are extracted after the report is stored."),
    field("w-source", "Source", sourceName, "Who or what reported it."),
    h("div", { class: "field-pair" }, field("w-reliability", "Source reliability", reliability),
      field("w-credibility", "Information credibility", credibility)),
    field("w-observed", "Observed at (UTC)", observed, "Leave empty if unknown; the time is read as UTC."),
    h("fieldset", { class: "field" }, h("legend", {}, "Locations"), locations,
      h("button", { type: "button", onclick: () => locations.append(locationRow()) }, "Add a location"))),
  picker.element,
  errors,
  h("div", { class: "actions" }, submit,
    h("a", { href: original ? `#/report/${editId}` : rfi ? `#/rfi/${rfiId}` : "#/feed", class: "button" }, "Cancel")));
  fill(view, h("h1", {}, heading), form);
}
