// The live feed: the newest reports the user may see, updated in place from the stream.

import { api } from "../api.js";
import { announce, session, setTitle } from "../app.js";
import { chip, classSlug, empty, failure, fill, h, plural, time, truncate } from "../dom.js";

const PAGE = 30;

/** One shape for a report from the REST list and from a stream event. */
function summary(r, live = false) {
  return {
    id: r.id,
    version: r.version,
    type: r.type,
    title: r.title,
    label: r.label,
    originator: r.originator,
    source: typeof r.source === "string" ? r.source : r.source.name,
    grading: r.grading || (r.source && r.source.grading),
    reported_at: r.reported_at,
    stored_at: r.stored_at,
    excerpt: r.body ? truncate(r.body.replace(/\s+/g, " "), 220) : null,
    requirements: r.requirements || [],
    live,
  };
}

/** The feed's memory lives in the session, so arrivals are kept while on other pages. */
function feedState() {
  if (session.feed) return session.feed;
  const state = (session.feed = {
    items: [], // newest first
    total: null,
    nextCursor: null,
    unseen: 0,
    activity: [], // rfi and alert events, newest first
    loaded: false,
    view: null, // the list element while the feed page is on screen
  });
  const stream = session.stream;
  stream.addEventListener("report", ({ detail }) => arrive(state, summary(detail, true)));
  stream.addEventListener("rfi", ({ detail }) => activity(state, { kind: "rfi", data: detail }));
  stream.addEventListener("alert", ({ detail }) => activity(state, { kind: "alert", data: detail }));
  return state;
}

function arrive(state, item) {
  const index = state.items.findIndex((r) => r.id === item.id);
  const isNew = index < 0;
  if (!isNew) {
    if (state.items[index].version >= item.version) return; // already shown
    state.items.splice(index, 1);
  }
  state.items.unshift(item);
  if (isNew && state.total !== null) state.total += 1;
  if (state.view && document.body.contains(state.view.list)) {
    const old = state.view.list.querySelector(`[data-id="${CSS.escape(item.id)}"]`);
    if (old) old.remove();
    state.view.list.prepend(row(item));
    if (state.view.emptyBox) state.view.emptyBox.remove();
    state.view.count.textContent = countText(state);
    announce(`${isNew ? "New report" : `Version ${item.version}`}: ${item.title}`);
  } else {
    state.unseen += 1;
    badge(state);
  }
}

function activity(state, entry) {
  state.activity.unshift({ ...entry, at: new Date().toISOString() });
  state.activity.length = Math.min(state.activity.length, 50);
  if (state.view && document.body.contains(state.view.activity)) {
    state.view.activity.prepend(activityRow(state.activity[0]));
    const none = state.view.activity.querySelector(".none");
    if (none) none.remove();
  } else {
    state.unseen += 1;
    badge(state);
  }
}

function badge(state) {
  const box = document.getElementById("feed-badge");
  if (!box) return;
  box.hidden = state.unseen === 0;
  box.textContent = state.unseen ? `${state.unseen} new` : "";
}

function countText(state) {
  return state.total === null ? "" : `${plural(state.total, "report")} you may see`;
}

function row(r) {
  return h("li", { class: ["feed-item", classSlug(r.label), r.live && "arrived"], dataset: { id: r.id } },
    h("article", { "aria-labelledby": `t-${r.id}` },
      h("div", { class: "feed-top" }, chip(r.label),
        r.live ? h("span", { class: "new-flag" }, r.version > 1 ? `updated · v${r.version}` : "new") : null),
      h("h2", { class: "feed-title", id: `t-${r.id}` }, h("a", { href: `#/report/${r.id}` }, r.title)),
      h("p", { class: "meta" },
        h("span", { class: "type" }, r.type), " · ", h("span", { title: "originator" }, r.originator),
        " · ", r.source, " ", h("span", { class: "grading-chip", title: "Admiralty grading" }, r.grading),
        r.version > 1 ? ` · v${r.version}` : "", " · ", time(r.reported_at)),
      r.requirements.length ? h("p", { class: "matched" },
        `Matches your requirement${r.requirements.length > 1 ? "s" : ""} #${r.requirements.join(", #")}`) : null,
      r.excerpt ? h("p", { class: "excerpt" }, r.excerpt) : null));
}

function activityRow(entry) {
  const d = entry.data;
  if (entry.kind === "alert") {
    return h("li", { class: "activity alert" }, h("strong", {}, "Alert "),
      `${d.watch || "watched entity"}: `, h("a", { href: `#/report/${d.report || d.id}` }, d.title || "report"),
      " ", time(entry.at, { compact: true }));
  }
  return h("li", { class: "activity rfi" }, h("strong", {}, `RFI ${d.state || ""} `),
    h("a", { href: `#/rfi/${d.id}` }, truncate(d.question || "request for information", 90)),
    " ", time(entry.at, { compact: true }));
}

async function loadMore(state, signal) {
  const page = await api("/reports", { params: { limit: PAGE, cursor: state.nextCursor }, signal });
  const known = new Set(state.items.map((r) => r.id));
  const fresh = page.items.filter((r) => !known.has(r.id)).map((r) => summary(r));
  state.items.push(...fresh);
  if (state.total === null || !state.loaded) state.total = page.total;
  state.nextCursor = page.next_cursor;
  state.loaded = true;
  return fresh;
}

/** Start keeping arrivals from the moment of sign-in (app.js calls this). */
export function attach() {
  feedState();
}

/** Wait until the stream is open (or a moment has passed), so that nothing stored between
 * the first page of the list and the stream's start falls between the two. */
function streamOpen(timeoutMs) {
  const stream = session.stream;
  if (!stream || stream.state === "live") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { stream.removeEventListener("state", check); clearTimeout(timer); resolve(); };
    const check = () => { if (stream.state === "live" || stream.state === "closed") done(); };
    const timer = setTimeout(done, timeoutMs);
    stream.addEventListener("state", check);
  });
}

export async function render({ view, signal }) {
  setTitle("Live feed");
  const state = feedState();
  if (!state.loaded) {
    await streamOpen(3000);
    await loadMore(state, signal);
  }
  state.unseen = 0;
  badge(state);
  const list = h("ol", { class: "feed", id: "feed-list", "aria-label": "Reports, newest first" },
    state.items.map(row));
  const count = h("p", { class: "count", id: "feed-count" }, countText(state));
  const activityList = h("ul", { class: "activity-list", id: "activity" },
    state.activity.length ? state.activity.map(activityRow)
      : h("li", { class: "none muted" }, "RFI changes and alerts on your watch list appear here as they happen."));
  const emptyBox = state.items.length ? null
    : empty("No reports you may see yet. New ones appear here as soon as they are stored.");
  const more = h("button", { type: "button", id: "feed-more", hidden: !state.nextCursor, onclick: async () => {
    more.disabled = true;
    try {
      const fresh = await loadMore(state, signal);
      list.append(...fresh.map(row));
      more.hidden = !state.nextCursor;
    } catch (error) {
      more.after(failure(error));
    } finally {
      more.disabled = false;
    }
  } }, "Older reports");
  state.view = { list, count, activity: activityList, emptyBox };
  fill(view, 
    h("div", { class: "page-head" }, h("h1", {}, "Live feed"), count),
    h("p", { class: "hint" }, "Reports appear at the top as they are stored; a new version replaces its report in place."),
    h("div", { class: "two-col" },
      h("section", { "aria-label": "Reports" }, emptyBox, list, more),
      h("aside", { "aria-labelledby": "activity-h", class: "side" },
        h("h2", { id: "activity-h" }, "Activity"), activityList,
        h("p", { class: "hint" }, h("a", { href: "#/rfis" }, "RFI board"), " · ",
          h("a", { href: "#/search" }, "Search")))),
  );
}
