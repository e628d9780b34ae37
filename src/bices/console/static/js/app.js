// The console's shell: sign-in, navigation, routing by the URL's hash, the live stream.

import { api, ApiError, onSignedOut, setToken, token } from "./api.js";
import { clear, failure, fill, h, loading, utcText } from "./dom.js";
import { LiveStream } from "./stream.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const sessionBox = document.getElementById("session");

/** What every page may use: the signed-in user, the live stream, the feed's memory. */
export const session = {
  me: null,
  stream: null,
  feed: null, // kept by pages/feed.js across visits
  has(...roles) {
    return !!this.me && roles.some((role) => this.me.roles.includes(role));
  },
  get mayWrite() {
    return this.has("analyst", "collector", "releaser");
  },
  get isAdmin() {
    return this.has("member-admin", "operator");
  },
};

const ROUTES = [
  ["feed", () => import("./pages/feed.js")],
  ["report/:id", () => import("./pages/report.js")],
  ["report/:id/v/:version", () => import("./pages/report.js")],
  ["search", () => import("./pages/search.js")],
  ["entity/:id", () => import("./pages/entity.js")],
  ["graph", () => import("./pages/graph.js")],
  ["map", () => import("./pages/map.js")],
  ["timeline", () => import("./pages/timeline.js")],
  ["rfis", () => import("./pages/rfis.js")],
  ["rfi/:id", () => import("./pages/rfi.js")],
  ["write", () => import("./pages/write.js")],
  ["members", () => import("./pages/members.js")],
  ["audit", () => import("./pages/audit.js")],
];

const NAV = [
  ["feed", "Feed"],
  ["search", "Search"],
  ["map", "Map"],
  ["graph", "Graph"],
  ["timeline", "Timeline"],
  ["rfis", "RFIs"],
  ["write", "Write", () => session.mayWrite],
  ["members", "Members"],
  ["audit", "Audit", () => session.isAdmin],
];

function parseHash() {
  const raw = location.hash.startsWith("#/") ? location.hash.slice(2) : "feed";
  const [path, search = ""] = raw.split("?");
  return { path: path.replace(/\/+$/, "") || "feed", query: new URLSearchParams(search) };
}

function match(path) {
  const parts = path.split("/").map(decodeURIComponent);
  for (const [pattern, load] of ROUTES) {
    const want = pattern.split("/");
    if (want.length !== parts.length) continue;
    const params = {};
    if (want.every((w, i) => (w.startsWith(":") ? ((params[w.slice(1)] = parts[i]), true) : w === parts[i]))) {
      return { load, params, name: want[0] };
    }
  }
  return null;
}

export function announce(text) {
  const box = document.getElementById("announce");
  box.textContent = "";
  setTimeout(() => { box.textContent = text; }, 50);
}

/** The page's title: what it shows (only ever text the user may see), then the console. */
export function setTitle(text) {
  document.title = text ? `${text} · BICES console` : "BICES console";
}

export function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

let current = null; // the controller of the page on screen: aborted when it is left

async function route({ focus = true } = {}) {
  if (current) current.abort();
  const controller = (current = new AbortController());
  if (!token() || !session.me) return showSignIn();
  const { path, query } = parseHash();
  const found = match(path);
  renderNav(found ? found.name : null);
  fill(main, loading());
  if (!found) {
    setTitle("Not found");
    fill(main, h("h1", { tabindex: "-1" }, "Not found"), failure(new ApiError(404, "")));
    return focusHeading(focus);
  }
  try {
    const page = await found.load();
    if (controller.signal.aborted) return undefined;
    const view = h("div", { class: `page page-${found.name}` });
    await page.render({ view, params: found.params, query, signal: controller.signal });
    if (controller.signal.aborted) return undefined;
    fill(main, view);
  } catch (error) {
    if (error.name === "AbortError" || controller.signal.aborted) return undefined;
    setTitle(error.status === 404 ? "Not found" : "Error");
    fill(main, h("h1", { tabindex: "-1" }, error.status === 404 ? "Not found" : "Something went wrong"),
      failure(error, () => route()));
  }
  return focusHeading(focus);
}

function focusHeading(focus) {
  if (!focus) return;
  const heading = main.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: false });
  }
}

function renderNav(active) {
  nav.hidden = false;
  fill(nav, h("ul", {}, NAV.filter(([, , show]) => !show || show()).map(([name, text]) =>
    h("li", {}, h("a", { href: `#/${name}`, "aria-current": name === active ? "page" : null,
      id: `nav-${name}` }, text,
      name === "feed" ? h("span", { class: "badge", id: "feed-badge", hidden: true }) : null)))));
}

function renderSession() {
  const me = session.me;
  sessionBox.hidden = false;
  fill(sessionBox, 
    h("span", { class: "live", id: "live", role: "status", "aria-live": "polite" }, "…"),
    h("span", { class: "who", title: `roles: ${me.roles.join(", ")}; caveats: ${me.caveats.join(", ") || "none"}` },
      h("strong", { id: "who-name" }, me.name), ` · ${me.member} · ${me.clearance}`),
    h("button", { type: "button", class: "link-button", id: "sign-out", onclick: signOut }, "Sign out"),
  );
}

const LIVE_TEXT = {
  idle: "stream off", connecting: "connecting…", resuming: "resuming…", live: "live",
  reconnecting: "reconnecting…", closed: "stream closed",
};

function startStream() {
  const stream = (session.stream = new LiveStream(token));
  stream.addEventListener("state", ({ detail }) => {
    const box = document.getElementById("live");
    if (!box) return;
    box.textContent = detail.state === "reconnecting" && detail.retryIn
      ? `reconnecting in ${Math.round(detail.retryIn / 1000)} s` : LIVE_TEXT[detail.state];
    box.dataset.state = detail.state;
  });
  stream.addEventListener("closed", ({ detail }) => {
    announce(`The live stream was closed: ${detail.reason || detail.detail || "by the node"}`);
  });
  stream.start();
}

async function signIn(value, expectedName) {
  const me = await api("/users/me", { auth: value });
  if (expectedName && expectedName.trim() && me.name !== expectedName.trim()) {
    throw new ApiError(401, `this token belongs to another user than ${expectedName.trim()}`);
  }
  setToken(value);
  session.me = me;
  session.feed = null;
  renderSession();
  startStream();
  (await import("./pages/feed.js")).attach();
}

function signOut() {
  if (session.stream) session.stream.stop();
  setToken(null);
  session.me = null;
  session.stream = null;
  session.feed = null;
  sessionBox.hidden = true;
  nav.hidden = true;
  announce("Signed out");
  showSignIn();
}

function showSignIn(message) {
  if (current) current.abort();
  setTitle("Sign in");
  nav.hidden = true;
  const error = h("div", { id: "signin-error", role: "alert" }, message ? failure(message) : null);
  const tokenInput = h("input", { id: "token", name: "token", type: "password", required: true,
    autocomplete: "current-password", spellcheck: "false", "aria-describedby": "token-help" });
  const nameInput = h("input", { id: "username", name: "username", type: "text", autocomplete: "username",
    spellcheck: "false" });
  const submit = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h("form", { class: "card signin", onsubmit: async (event) => {
    event.preventDefault();
    submit.disabled = true;
    clear(error);
    try {
      await signIn(tokenInput.value.trim(), nameInput.value);
      if (!location.hash.startsWith("#/") || location.hash === "#/signin") location.hash = "#/feed";
      else route();
    } catch (failed) {
      error.append(failure(failed));
      tokenInput.focus();
    } finally {
      submit.disabled = false;
    }
  } },
  h("h1", { tabindex: "-1" }, "Sign in"),
  h("p", {}, "Use an API token from your node administrator (", h("code", {}, "bices user add"),
    " or ", h("code", {}, "bices user token"), " print one). The token stays in this browser tab only."),
  h("label", { for: "username" }, "User name ", h("span", { class: "muted" }, "(optional, checked against the token)")),
  nameInput,
  h("label", { for: "token" }, "API token"),
  tokenInput,
  h("p", { id: "token-help", class: "hint" }, "Starts with bices_. Every page then shows only what this token may see."),
  submit, error);
  fill(main, form);
  tokenInput.focus();
}

function tick() {
  const now = new Date();
  const clock = document.getElementById("clock");
  if (clock) clock.textContent = `${utcText(now)} · ${now.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" })} local`;
}

async function boot() {
  document.getElementById("skip-link").addEventListener("click", (event) => {
    event.preventDefault();
    const heading = main.querySelector("h1") || main;
    heading.setAttribute("tabindex", "-1");
    heading.focus();
  });
  onSignedOut((error) => {
    if (session.stream) session.stream.stop();
    setToken(null);
    session.me = null;
    sessionBox.hidden = true;
    showSignIn(new ApiError(401, `Signed out: ${error.message}`));
  });
  window.addEventListener("hashchange", () => {
    if (location.hash.startsWith("#/")) route();
  });
  tick();
  setInterval(tick, 15_000);
  if (token()) {
    try {
      await signIn(token());
    } catch (error) {
      setToken(null);
      return showSignIn(error);
    }
    return route({ focus: false });
  }
  return showSignIn();
}

boot();
