// One RFI: its label banner, addressees, answers the user may see, history and actions.

import { api } from "../api.js";
import { navigate, session, setTitle } from "../app.js";
import { banner, chip, clear, empty, failure, fill, h, time } from "../dom.js";

function actions(rfi, signal, reload) {
  const me = session.me;
  const box = h("div", { class: "actions", id: "rfi-actions" });
  const errors = h("div");
  const act = async (path, body) => {
    clear(errors);
    try {
      await api(`/rfis/${rfi.id}/${path}`, { method: "POST", body, signal });
      reload();
    } catch (error) {
      if (error.name !== "AbortError") errors.append(failure(error));
    }
  };
  const mine = rfi.addressees.find((a) => a.member === me.member);
  if (rfi.state !== "closed" && mine && !mine.accepted) {
    box.append(h("button", { type: "button", class: "primary", id: "rfi-accept", onclick: () => act("accept") }, `Accept for ${me.member}`));
  }
  if (rfi.state !== "closed" && mine && mine.accepted && session.mayWrite) {
    box.append(h("a", { class: "button primary", href: `#/write?rfi=${rfi.id}` }, "Write an answer"));
    const select = h("select", { id: "answer-with", "aria-label": "Answer with a report of your member" }, h("option", { value: "" }, "Loading your member's reports…"));
    api("/reports", { params: { member: me.member, limit: 50 }, signal }).then((page) => {
      fill(select, h("option", { value: "" }, page.items.length ? "Choose a report…" : "No reports of your member"),
        ...page.items.map((r) => h("option", { value: r.id }, `${r.title.slice(0, 80)} (${r.label.banner})`)));
    }).catch(() => fill(select, h("option", { value: "" }, "Reports could not be listed")));
    box.append(h("span", { class: "inline-form" }, select,
      h("button", { type: "button", onclick: () => select.value && act("answers", { report_id: select.value }) }, "Answer with it")));
  }
  if (rfi.state !== "closed" && rfi.asker_member === me.member) {
    const reason = h("input", { type: "text", id: "close-reason", placeholder: "Reason (optional)", "aria-label": "Reason for closing" });
    box.append(h("span", { class: "inline-form" }, reason,
      h("button", { type: "button", id: "rfi-close", onclick: () => act("close", { reason: reason.value.trim() || null }) }, "Close")));
  }
  return [box, errors];
}

export async function render({ view, params, signal }) {
  const rfi = await api(`/rfis/${params.id}`, { signal });
  setTitle(`RFI: ${rfi.question}`);
  const row = (term, ...value) => [h("dt", {}, term), h("dd", {}, ...value)];
  fill(view, 
    banner(rfi.label, "top"),
    h("p", { class: "kicker" }, h("a", { href: "#/rfis" }, "RFI board"), ` · ${rfi.state}`),
    h("h1", {}, rfi.question),
    ...actions(rfi, signal, () => navigate(`#/rfi/${rfi.id}`)),
    h("div", { class: "two-col" },
      h("div", {},
        h("dl", { class: "meta-list" },
          row("State", h("strong", { id: "rfi-state" }, rfi.state), rfi.closed_reason ? ` — ${rfi.closed_reason}` : ""),
          row("Priority", h("span", { class: ["priority", `p-${rfi.priority}`] }, rfi.priority)),
          row("Deadline", time(rfi.deadline), rfi.overdue ? h("strong", { class: "bad" }, " overdue") : null),
          row("Asked by", `${rfi.asker} (${rfi.asker_member})`, " ", time(rfi.created_at)),
          row("Addressed to", h("ul", { class: "plain", id: "addressees" }, rfi.addressees.map((a) => h("li", {}, a.member,
            a.accepted ? [` accepted by ${a.accepted_by} `, time(a.accepted_at, { compact: true })] : h("span", { class: "muted" }, " not accepted yet")))))),
        rfi.detail ? [h("h2", {}, "Detail"), h("p", { class: "report-body" }, rfi.detail)] : null,
        h("h2", {}, "Answers"),
        rfi.answers.length ? h("ul", { class: "related", id: "answers" }, rfi.answers.map((a) => h("li", {}, chip(a.label), " ",
          h("a", { href: `#/report/${a.report_id}` }, a.title), h("span", { class: "muted" }, ` — ${a.member}, ${a.author} `), time(a.at, { compact: true }))))
          : empty("No answers that you may see.")),
      h("aside", { class: "side" }, h("h2", {}, "History"),
        h("ol", { class: "plain history" }, rfi.history.map((c) => h("li", {}, time(c.at, { compact: true }), " ",
          h("strong", {}, c.action), ` by ${c.actor} (${c.member}) → ${c.state}`))))),
    banner(rfi.label, "bottom"),
  );
}
