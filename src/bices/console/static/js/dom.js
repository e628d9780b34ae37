// Building the DOM without innerHTML: every text from the API is set as text, never parsed.

const SVG_NS = "http://www.w3.org/2000/svg";

function build(el, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") el.textContent = value;
    else if (key === "class") el.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** An HTML element: h("a", {href: "#/feed", class: "x"}, "text", child, ...). */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** An SVG element, same call shape as h(). */
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

/** Append children, leaving out null, undefined and false (Element.append would write them). */
export function add(el, ...children) {
  return build(el, {}, children);
}

/** Replace an element's children. */
export function fill(el, ...children) {
  return add(clear(el), ...children);
}

// --- times: every time is shown in UTC and in the browser's local time ----------------

const pad = (n) => String(n).padStart(2, "0");

export function utcText(date) {
  return `${date.getUTCFullYear()}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())} ` +
    `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())} UTC`;
}

export function localText(date) {
  const sameDay = date.toDateString() === new Date().toDateString();
  const options = { hour: "2-digit", minute: "2-digit" };
  if (!sameDay) Object.assign(options, { year: "numeric", month: "short", day: "numeric" });
  return date.toLocaleString(undefined, options) + " local";
}

/** A <time> showing `2024-11-05 09:30 UTC · 5 Nov 2024, 18:30 local`. */
export function time(iso, { compact = false } = {}) {
  if (!iso) return h("span", { class: "muted" }, "—");
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return h("span", {}, iso);
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "local";
  return h("time", { datetime: date.toISOString(), title: `${utcText(date)} — ${localText(date)} (${zone})` },
    h("span", { class: "utc" }, utcText(date)),
    compact ? null : h("span", { class: "local" }, ` · ${localText(date)}`));
}

/** A calendar day (YYYY-MM-DD) as written, with no time-zone shift. */
export function day(text) {
  return text ? h("time", { datetime: text }, text) : h("span", { class: "muted" }, "undated");
}

// --- labels --------------------------------------------------------------------------

export const CLASSIFICATIONS = [
  "PUBLIC", "NATO UNCLASSIFIED", "NATO RESTRICTED", "NATO CONFIDENTIAL", "NATO SECRET",
  "COSMIC TOP SECRET",
];

export function classOf(label) {
  if (!label) return "";
  const text = typeof label === "string" ? label.split(" // ")[0] : label.classification;
  return text.trim().toUpperCase();
}

export function classSlug(label) {
  const index = CLASSIFICATIONS.indexOf(classOf(label));
  return `cls-${index < 0 ? "unknown" : index}`;
}

export function bannerText(label) {
  return typeof label === "string" ? label : label.banner;
}

/** The label as a coloured banner (top and bottom of a page, by classification). */
export function banner(label, where = "top") {
  return h("div", { class: ["label-banner", classSlug(label), `banner-${where}`], role: "note",
    "aria-label": `Classification: ${bannerText(label)}` }, bannerText(label));
}

/** A small label chip for lists. */
export function chip(label) {
  return h("span", { class: ["label-chip", classSlug(label)], title: bannerText(label) }, bannerText(label));
}

// --- Admiralty grading ---------------------------------------------------------------

export const RELIABILITY = {
  A: "completely reliable", B: "usually reliable", C: "fairly reliable",
  D: "not usually reliable", E: "unreliable", F: "reliability cannot be judged",
};
export const CREDIBILITY = {
  1: "confirmed by other sources", 2: "probably true", 3: "possibly true",
  4: "doubtful", 5: "improbable", 6: "truth cannot be judged",
};

export function grading(source) {
  const rel = RELIABILITY[source.reliability] || "";
  const cred = CREDIBILITY[source.credibility] || "";
  return h("abbr", { class: "grading", title: `Source ${rel}; information ${cred}` },
    source.grading || `${source.reliability}${source.credibility}`);
}

// --- states --------------------------------------------------------------------------

export function empty(text, ...more) {
  return h("div", { class: "state empty", role: "status" }, h("p", {}, text), ...more);
}

export function loading(text = "Loading…") {
  return h("div", { class: "state loading", role: "status", "aria-live": "polite" }, text);
}

export function failure(error, retry) {
  const status = error && error.status;
  const title = status === 404 ? "Not found"
    : status === 403 ? "Not allowed"
    : status === 401 ? "Not signed in"
    : status ? `The node answered ${status}` : "The node could not be reached";
  const detail = status === 404
    ? "Nothing here that you may see. It may not exist, or it may not be releasable to you."
    : (error && error.message) || String(error);
  return h("div", { class: "state error", role: "alert" },
    h("p", { class: "error-title" }, title),
    h("p", {}, detail),
    error && error.errors ? h("ul", {}, error.errors.map((e) => h("li", {}, fieldError(e)))) : null,
    retry ? h("button", { type: "button", onclick: retry }, "Try again") : null);
}

export function fieldError(e) {
  if (typeof e === "string") return e;
  const where = Array.isArray(e.loc) ? e.loc.filter((p) => p !== "body").join(".") : e.field || "";
  return where ? `${where}: ${e.msg || e.message}` : e.msg || e.message || JSON.stringify(e);
}

export function truncate(text, n) {
  const chars = Array.from(text || "");
  return chars.length > n ? chars.slice(0, n - 1).join("") + "…" : chars.join("");
}

export function plural(n, one, many = `${one}s`) {
  return `${n.toLocaleString()} ${n === 1 ? one : many}`;
}

/** Run `work` over `items` with at most `width` at once; results in order. */
export async function pool(items, width, work) {
  const results = new Array(items.length);
  let next = 0;
  async function lane() {
    while (next < items.length) {
      const i = next++;
      try { results[i] = await work(items[i], i); } catch (error) { results[i] = { error }; }
    }
  }
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, lane));
  return results;
}

export const ENTITY_TYPES = {
  PERSON: "Person", ORG: "Organisation", GPE: "Country / city", LOC: "Place",
  UNIT: "Unit", EQUIPMENT: "Equipment",
};
