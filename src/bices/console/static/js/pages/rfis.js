// The RFI board: requests for information by state, and a form to ask one.

import { api } from "../api.js";
import { navigate, session, setTitle } from "../app.js";
import { chip, classSlug, clear, empty, failure, fill, h, plural, time, truncate } from "../dom.js";
import { directory, labelPicker, reaches } from "../labelpicker.js";
import { utcFromInput } from "./write.js";

const STATES = [["open", "Open"], ["accepted", "Accepted"], ["answered", "Answered"], ["closed", "Closed"]];
const PRIORITIES = ["ROUTINE", "PRIORITY", "IMMEDIATE", "FLASH"];

function card(rfi) {
  const accepted = rfi.addressees.filter((a) => a.accepted).map((a) => a.member);
  return h("li", { class: ["rfi-card", classSlug(rfi.label), rfi.overdue && "overdue"] },
    h("div", { class: "feed-top" }, h("span", { class: ["priority", `p-${rfi.priority}`] }, rfi.priority), chip(rfi.label)),
    h("h3", {}, h("a", { href: `#/rfi/${rfi.id}` }, truncate(rfi.question, 140))),
    h("p", { class: "meta" }, `${rfi.asker_member} → ${rfi.addressees.map((a) => a.member).join(", ")}`,
      accepted.length ? ` · accepted by ${accepted.join(", ")}` : "",
      rfi.answers.length ? ` · ${plural(rfi.answers.length, "answer")}` : ""),
    h("p", { class: "meta" }, rfi.overdue ? h("strong", { class: "bad" }, "Overdue · ") : null, "Due ", time(rfi.deadline)));
}

async function askForm(signal, onDone) {
  const dir = await directory(signal);
  const addresseeBoxes = dir.members.filter((m) => m.code !== session.me.member).map((m) => {
    const id = `ask-to-${m.code}`;
    return h("div", { class: "check", dataset: { code: m.code.toLowerCase(), name: m.name.toLowerCase() } },
      h("input", { type: "checkbox", id, value: m.code, onchange: () => picker.refresh() }),
      h("label", { for: id }, m.code, h("span", { class: "muted" }, ` ${m.name}`)));
  });
  const addressees = () => addresseeBoxes.map((b) => b.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
  const picker = labelPicker(session.me, dir, { idPrefix: "ask-label", extraCheck: (value) => {
    const missing = addressees().filter((code) => !reaches(value, dir, code));
    return missing.length ? `The label must be releasable to every addressee: not to ${missing.join(", ")}.` : null;
  } });
  const question = h("input", { id: "ask-question", type: "text", required: true, maxlength: 1000 });
  const detail = h("textarea", { id: "ask-detail", rows: 4 });
  const priority = h("select", { id: "ask-priority" }, PRIORITIES.map((p) => h("option", { value: p }, p)));
  const soon = new Date(Date.now() + 3 * 86_400_000).toISOString().slice(0, 16);
  const deadline = h("input", { id: "ask-deadline", type: "datetime-local", required: true, value: soon });
  const filter = h("input", { type: "search", placeholder: "Filter members", "aria-label": "Filter addressees", oninput: () => {
    const text = filter.value.trim().toLowerCase();
    for (const b of addresseeBoxes) b.hidden = !!text && !b.dataset.code.includes(text) && !b.dataset.name.includes(text);
  } });
  const errors = h("div");
  const form = h("form", { class: "card ask-form", id: "ask-form", onsubmit: async (event) => {
    event.preventDefault();
    clear(errors);
    const to = addressees();
    const problem = !question.value.trim() ? "Write the question."
      : !to.length ? "Choose at least one addressee." : picker.problem();
    if (problem) { errors.append(failure({ message: problem })); return; }
    try {
      const rfi = await api("/rfis", { method: "POST", signal, body: {
        question: question.value.trim(), detail: detail.value, priority: priority.value,
        deadline: utcFromInput(deadline.value), addressees: to, label: picker.value() } });
      onDone(rfi);
    } catch (error) {
      if (error.name !== "AbortError") errors.append(failure(error));
    }
  } },
  h("h2", {}, "Ask an RFI"),
  h("div", { class: "field" }, h("label", { for: "ask-question" }, "Question"), question),
  h("div", { class: "field" }, h("label", { for: "ask-detail" }, "Detail"), detail),
  h("div", { class: "field-pair" },
    h("div", { class: "field" }, h("label", { for: "ask-priority" }, "Priority"), priority),
    h("div", { class: "field" }, h("label", { for: "ask-deadline" }, "Deadline (UTC)"), deadline)),
  h("fieldset", {}, h("legend", {}, "Addressed to"), filter, h("div", { class: "check-grid members scroll" }, addresseeBoxes)),
  picker.element, errors,
  h("button", { type: "submit", class: "primary" }, "Ask"));
  return form;
}

export async function render({ view, query, signal }) {
  setTitle("RFI board");
  const flags = { addressed_to_me: query.get("addressed_to_me") === "true", mine: query.get("mine") === "true",
    overdue: query.get("overdue") === "true" };
  const columns = await Promise.all(STATES.map(([state]) =>
    api("/rfis", { params: { state, limit: 50, ...flags }, signal })));
  const toggles = h("form", { class: "inline-form", "aria-label": "Filter the board" },
    [["addressed_to_me", `Addressed to ${session.me.member}`], ["mine", "Asked by me"], ["overdue", "Overdue"]].map(([name, text]) =>
      h("span", { class: "check" }, h("input", { type: "checkbox", id: `rf-${name}`, checked: flags[name], onchange: (event) => {
        const next = new URLSearchParams();
        for (const [k, v] of Object.entries({ ...flags, [name]: event.target.checked })) if (v) next.set(k, "true");
        navigate(`#/rfis?${next}`);
      } }), h("label", { for: `rf-${name}` }, text))));
  const askBox = h("div", { id: "ask-box" });
  const askButton = h("button", { type: "button", class: "primary", id: "ask-open", "aria-expanded": "false", onclick: async () => {
    if (askBox.firstChild) { clear(askBox); askButton.setAttribute("aria-expanded", "false"); return; }
    askButton.setAttribute("aria-expanded", "true");
    try {
      askBox.append(await askForm(signal, (rfi) => navigate(`#/rfi/${rfi.id}`)));
      askBox.querySelector("input").focus();
    } catch (error) {
      if (error.name !== "AbortError") askBox.append(failure(error));
    }
  } }, "Ask an RFI");
  const total = columns.reduce((n, c) => n + c.total, 0);
  fill(view, 
    h("div", { class: "page-head" }, h("h1", {}, "RFI board"), h("p", { class: "count", id: "rfi-count" }, `${plural(total, "request")} you may see`)),
    h("div", { class: "actions" }, askButton, toggles),
    askBox,
    h("div", { class: "board", id: "board" }, STATES.map(([state, title], i) =>
      h("section", { class: "column", "aria-labelledby": `col-${state}` },
        h("h2", { id: `col-${state}` }, title, h("span", { class: "facet-count" }, String(columns[i].total))),
        columns[i].items.length ? h("ol", { class: "cards" }, columns[i].items.map(card))
          : empty(`No ${title.toLowerCase()} requests.`),
        columns[i].next_cursor ? h("p", { class: "hint" }, `Showing the first ${columns[i].items.length}.`) : null))),
  );
}
