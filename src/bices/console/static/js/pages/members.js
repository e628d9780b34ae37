// Members, accession, communities and users: read by everyone, changed by administrators
// (the node decides who may do what; the console only hides buttons that would be refused).

import { api } from "../api.js";
import { announce, navigate, session, setTitle } from "../app.js";
import { CLASSIFICATIONS, clear, empty, failure, fill, h, plural } from "../dom.js";

const ROLES = ["analyst", "collector", "releaser", "member-admin", "operator"];

function table(caption, head, rows, id) {
  return h("div", { class: "table-wrap" }, h("table", { id },
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, head.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows)));
}

/** Runs a change, then reloads the page; errors shown next to the control. */
function doer(signal, where) {
  return async (what, path, options = {}) => {
    if (options.confirm && !window.confirm(options.confirm)) return null;
    clear(where);
    try {
      const result = await api(path, { method: options.method || "POST", body: options.body, signal });
      announce(what);
      if (options.keep) return result;
      navigate("#/members");
      return result;
    } catch (error) {
      if (error.name !== "AbortError") where.append(failure(error));
      return null;
    }
  };
}

function input(id, text, attrs = {}) {
  return h("div", { class: "field" }, h("label", { for: id }, text), h("input", { id, type: "text", ...attrs }));
}

function membersSection(members, signal) {
  const errors = h("div");
  const run = doer(signal, errors);
  const operator = session.has("operator");
  const rows = members.map((m) => h("tr", { class: `status-${m.status}` },
    h("th", { scope: "row" }, m.code), h("td", {}, m.name), h("td", {}, m.kind),
    h("td", {}, h("span", { class: ["status", m.status] }, m.status)), h("td", {}, m.communities.join(", ") || "—"),
    h("td", {}, m.sponsor || "—"),
    operator ? h("td", {}, m.status === "active"
      ? h("button", { type: "button", onclick: () => run(`${m.code} suspended`, `/members/${m.code}/suspend`, { confirm: `Suspend ${m.code}? Its users see nothing more at once.` }) }, "Suspend")
      : m.status === "suspended" ? [h("button", { type: "button", onclick: () => run(`${m.code} reinstated`, `/members/${m.code}/reinstate`) }, "Reinstate"), " ",
        h("button", { type: "button", onclick: () => run(`${m.code} withdrawn`, `/members/${m.code}/withdraw`, { confirm: `Withdraw ${m.code} for good?` }) }, "Withdraw")]
        : "—") : null));
  const head = ["Code", "Name", "Kind", "Status", "Communities", "Sponsor", ...(operator ? ["Action"] : [])];
  return h("section", { "aria-labelledby": "members-h" }, h("h2", { id: "members-h" }, "Members"), errors,
    table(`${plural(members.length, "member")}; membership itself is not classified.`, head, rows, "members-table"));
}

function accessionSection(accessions, communities, signal) {
  const me = session.me;
  const errors = h("div");
  const run = doer(signal, errors);
  const admin = session.has("member-admin");
  const rows = accessions.map((a) => {
    const voted = a.approvals.includes(me.member) || a.rejections.includes(me.member);
    return h("tr", {}, h("th", { scope: "row" }, a.code), h("td", {}, a.name), h("td", {}, a.sponsor),
      h("td", {}, h("span", { class: ["status", a.status] }, a.status)),
      h("td", { title: a.approvals.join(", ") }, String(a.approvals.length)),
      h("td", { title: a.rejections.join(", ") }, String(a.rejections.length)),
      h("td", {}, admin && a.status === "pending" && !voted ? [
        h("button", { type: "button", onclick: () => run(`Approved ${a.code}`, `/accessions/${a.code}/approve`) }, "Approve"), " ",
        h("button", { type: "button", onclick: () => run(`Rejected ${a.code}`, `/accessions/${a.code}/reject`, { confirm: `Reject ${a.code}'s application?` }) }, "Reject")]
        : voted ? `${me.member} voted` : "—"));
  });
  const form = admin ? applyForm(communities, signal) : null;
  return h("section", { "aria-labelledby": "accessions-h" }, h("h2", { id: "accessions-h" }, "Accession"),
    h("p", { class: "hint" }, "A member's administrator files an application; administrators of active members vote; at the quorum the applicant becomes active."),
    errors,
    accessions.length ? table("Applications", ["Applicant", "Name", "Sponsor", "Status", "Approvals", "Rejections", "Vote"], rows, "accessions-table")
      : empty("No applications."),
    form);
}

function applyForm(communities, signal) {
  const errors = h("div");
  const run = doer(signal, errors);
  const boxes = Object.keys(communities).map((name) => h("span", { class: "check" },
    h("input", { type: "checkbox", id: `apply-c-${name}`, value: name }), h("label", { for: `apply-c-${name}` }, name)));
  const form = h("form", { class: "card", id: "apply-form", onsubmit: (event) => {
    event.preventDefault();
    const value = (id) => form.querySelector(`#${id}`).value.trim();
    run(`Application filed for ${value("apply-code")}`, "/accessions", { body: {
      code: value("apply-code"), name: value("apply-name"), kind: form.querySelector("#apply-kind").value,
      sponsor: session.me.member, public_key: value("apply-key") || null,
      communities: boxes.map((b) => b.querySelector("input")).filter((i) => i.checked).map((i) => i.value) } });
  } },
  h("h3", {}, `File an application, sponsored by ${session.me.member}`),
  h("div", { class: "field-pair" }, input("apply-code", "Code (ISO 3166 alpha-3 or organisation)", { required: true, maxlength: 16 }),
    input("apply-name", "Name", { required: true })),
  h("div", { class: "field" }, h("label", { for: "apply-kind" }, "Kind"),
    h("select", { id: "apply-kind" }, h("option", { value: "nation" }, "nation"), h("option", { value: "organisation" }, "organisation"))),
  h("fieldset", {}, h("legend", {}, "Communities"), boxes),
  input("apply-key", "Its own Ed25519 public key (base64, optional)"),
  errors, h("button", { type: "submit", class: "primary" }, "File the application"));
  return form;
}

function communitySection(communities, signal) {
  const errors = h("div");
  const run = doer(signal, errors);
  const operator = session.has("operator");
  return h("section", { "aria-labelledby": "communities-h" }, h("h2", { id: "communities-h" }, "Communities"),
    h("ul", { class: "plain", id: "communities" }, Object.entries(communities).map(([name, codes]) =>
      h("li", {}, h("strong", {}, name), ` — ${codes.join(", ") || "no members"}`))),
    operator ? h("form", { class: "card inline-form", onsubmit: (event) => {
      event.preventDefault();
      const name = event.target.querySelector("#community-name").value.trim();
      const codes = event.target.querySelector("#community-members").value.split(/[\s,]+/).filter(Boolean);
      run(`Community ${name} defined`, `/communities/${encodeURIComponent(name)}`, { method: "PUT", body: { members: codes } });
    } }, input("community-name", "Community", { required: true }), input("community-members", "Members (codes, comma-separated)"),
    h("button", { type: "submit" }, "Define"), errors) : null);
}

function usersSection(users, signal) {
  const errors = h("div");
  const tokenBox = h("div", { id: "new-token", "aria-live": "polite" });
  const run = doer(signal, errors);
  const showToken = (who, token) => fill(tokenBox, h("div", { class: "card token-card" },
    h("p", {}, `Token for ${who} (shown once; copy it now):`), h("code", { class: "token" }, token)));
  const rows = users.map((u) => h("tr", {}, h("th", { scope: "row" }, u.name), h("td", {}, u.member), h("td", {}, u.clearance),
    h("td", {}, u.caveats.join(", ") || "—"), h("td", {}, u.roles.join(", ")),
    h("td", {}, h("button", { type: "button", onclick: async () => {
      const result = await run(`New token for ${u.name}`, `/users/${encodeURIComponent(u.name)}/tokens`, { keep: true });
      if (result) showToken(u.name, result.token);
    } }, "New token"), " ",
    h("button", { type: "button", onclick: () => run(`Tokens of ${u.name} revoked`, `/users/${encodeURIComponent(u.name)}/tokens`,
      { method: "DELETE", confirm: `Revoke every token of ${u.name}?`, keep: true }) }, "Revoke tokens"))));
  const member = session.has("operator") ? input("user-member", "Member", { required: true, value: session.me.member })
    : h("input", { type: "hidden", id: "user-member", value: session.me.member });
  const form = h("form", { class: "card", id: "user-form", onsubmit: async (event) => {
    event.preventDefault();
    const value = (id) => form.querySelector(`#${id}`).value.trim();
    const result = await run("User added", "/users", { keep: true, body: {
      member: value("user-member"), name: value("user-name"), clearance: form.querySelector("#user-clearance").value,
      caveats: value("user-caveats").split(",").map((c) => c.trim()).filter(Boolean),
      roles: [...form.querySelectorAll(".role-box:checked")].map((i) => i.value) } });
    if (result) showToken(result.user.name, result.token);
  } },
  h("h3", {}, "Add a user"),
  h("div", { class: "field-pair" }, member, input("user-name", "Name", { required: true })),
  h("div", { class: "field" }, h("label", { for: "user-clearance" }, "Clearance"),
    h("select", { id: "user-clearance" }, CLASSIFICATIONS.map((c) => h("option", { value: c, selected: c === "NATO SECRET" }, c)))),
  input("user-caveats", "Caveats (comma-separated)"),
  h("fieldset", {}, h("legend", {}, "Roles"), ROLES.filter((r) => r !== "operator" || session.has("operator")).map((r) =>
    h("span", { class: "check" }, h("input", { type: "checkbox", class: "role-box", id: `role-${r}`, value: r, checked: r === "analyst" }),
      h("label", { for: `role-${r}` }, r)))),
  h("button", { type: "submit", class: "primary" }, "Add"));
  return h("section", { "aria-labelledby": "users-h" }, h("h2", { id: "users-h" }, "Users"), errors, tokenBox,
    table(session.has("operator") ? "Every user of the node" : `Users of ${session.me.member}`,
      ["Name", "Member", "Clearance", "Caveats", "Roles", "Tokens"], rows, "users-table"), form);
}

export async function render({ view, signal }) {
  setTitle("Members");
  const [members, accessions, communities, users] = await Promise.all([
    api("/members", { signal }), api("/accessions", { signal }), api("/communities", { signal }),
    session.isAdmin ? api("/users", { signal }).catch(() => null) : null,
  ]);
  fill(view, 
    h("h1", {}, session.isAdmin ? "Members and accession" : "Members"),
    accessionSection(accessions, communities, signal),
    membersSection(members, signal),
    communitySection(communities, signal),
    users ? usersSection(users, signal) : null,
  );
}
