// The label picker: offers only labels the user may create — a classification at or below
// the user's clearance, caveats the user holds, releasability that includes the user's own
// member. The node checks the same again when the form is sent.

import { api } from "./api.js";
import { banner, CLASSIFICATIONS, fill, h } from "./dom.js";

const WELL_KNOWN = ["NATO", "IP4"];

export function renderBanner({ classification, releasable_to: rel, caveats }) {
  const ordered = [...WELL_KNOWN.filter((c) => rel.includes(c)), ...rel.filter((c) => !WELL_KNOWN.includes(c)).sort()];
  return [classification, ...[...caveats].sort(), ordered.length ? `REL TO ${ordered.join(", ")}` : null]
    .filter(Boolean).join(" // ");
}

/** The directory the picker needs: communities and active members (neither is classified). */
export async function directory(signal) {
  const [communities, members] = await Promise.all([api("/communities", { signal }), api("/members", { signal })]);
  return { communities, members: members.filter((m) => m.status === "active") };
}

/**
 * A label picker bound to the user `me`. `initial` pre-fills it (a report's label);
 * `extraCheck(value)` returns a problem text or null (the RFI form checks addressees).
 * Returns {element, value(), problem(), refresh()}.
 */
export function labelPicker(me, dir, { initial = null, extraCheck = null, idPrefix = "label" } = {}) {
  const allowed = CLASSIFICATIONS.slice(0, CLASSIFICATIONS.indexOf(me.clearance) + 1);
  const own = me.member;
  const defaultRel = initial ? initial.releasable_to
    : Object.entries(dir.communities).filter(([, codes]) => codes.includes(own)).map(([name]) => name);
  const chosen = new Set(defaultRel.length ? defaultRel : [own]);
  const chosenCaveats = new Set(initial ? initial.caveats.filter((c) => me.caveats.includes(c)) : []);

  const select = h("select", { id: `${idPrefix}-classification`, name: "classification" },
    allowed.map((c) => h("option", { value: c, selected: initial ? initial.classification === c : c === "NATO UNCLASSIFIED" && allowed.includes(c) }, c)));
  const preview = h("div", { class: "label-preview", id: `${idPrefix}-preview`, "aria-live": "polite" });
  const problemBox = h("p", { class: "field-problem", id: `${idPrefix}-problem`, role: "alert" });

  const box = (kind, code, text, title) => {
    const id = `${idPrefix}-${kind}-${code.replace(/\W+/g, "_")}`;
    const input = h("input", { type: "checkbox", id, value: code, checked: (kind === "caveat" ? chosenCaveats : chosen).has(code),
      onchange: () => {
        const set = kind === "caveat" ? chosenCaveats : chosen;
        if (input.checked) set.add(code); else set.delete(code);
        update();
      } });
    return h("div", { class: "check", dataset: { code: code.toLowerCase(), name: (text || "").toLowerCase() } },
      input, h("label", { for: id, title }, code, text ? h("span", { class: "muted" }, ` ${text}`) : null));
  };

  const communityBoxes = Object.entries(dir.communities).map(([name, codes]) =>
    box("rel", name, codes.includes(own) ? `(${codes.length} members, yours among them)` : `(${codes.length} members)`, codes.join(", ")));
  const memberBoxes = dir.members.map((m) => box("rel", m.code, m.code === own ? `${m.name} (your member)` : m.name));
  const filter = h("input", { type: "search", id: `${idPrefix}-member-filter`, placeholder: "Filter members",
    "aria-label": "Filter the member list", oninput: () => {
      const text = filter.value.trim().toLowerCase();
      for (const el of memberBoxes) el.hidden = !!text && !el.dataset.code.includes(text) && !el.dataset.name.includes(text);
    } });
  const caveatBoxes = me.caveats.map((c) => box("caveat", c, ""));

  const element = h("fieldset", { class: "label-picker", id: idPrefix },
    h("legend", {}, "Label"),
    h("div", { class: "field" }, h("label", { for: select.id }, "Classification"), select,
      h("p", { class: "hint" }, `Up to your clearance, ${me.clearance}.`)),
    h("fieldset", { class: "rel" }, h("legend", {}, "Releasable to"),
      h("p", { class: "hint" }, `Must include your member, ${own}, directly or through a community.`),
      h("div", { class: "check-grid communities" }, communityBoxes),
      filter,
      h("div", { class: "check-grid members scroll" }, memberBoxes)),
    h("fieldset", { class: "caveats" }, h("legend", {}, "Caveats"),
      caveatBoxes.length ? h("div", { class: "check-grid" }, caveatBoxes) : h("p", { class: "hint" }, "You hold no caveats, so none can be set.")),
    h("div", { class: "field" }, h("span", { class: "preview-title" }, "Banner"), preview),
    problemBox);

  function value() {
    return { classification: select.value, releasable_to: [...chosen], caveats: [...chosenCaveats] };
  }

  function problem() {
    const v = value();
    if (!v.releasable_to.length) return "Choose at least one member or community to release to.";
    const reaches = v.releasable_to.includes(own) || v.releasable_to.some((c) => (dir.communities[c] || []).includes(own));
    if (!reaches) return `The label must be releasable to your own member, ${own}.`;
    return extraCheck ? extraCheck(v, dir) : null;
  }

  function update() {
    const v = value();
    fill(preview, banner({ classification: v.classification, banner: renderBanner(v) }, "preview"));
    problemBox.textContent = problem() || "";
  }

  select.addEventListener("change", update);
  update();
  return { element, value, problem, refresh: update };
}

/** Whether a label value reaches member `code` (directly or through a community). */
export function reaches(value, dir, code) {
  return value.releasable_to.includes(code) || value.releasable_to.some((c) => (dir.communities[c] || []).includes(code));
}
