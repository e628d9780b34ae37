// The REST API with the signed-in user's token: the console has no other source of data.

const KEY = "bices.console.token";
const listeners = new Set();

export class ApiError extends Error {
  constructor(status, message, errors) {
    super(message);
    this.status = status;
    this.errors = errors || null;
  }
}

export function token() {
  return sessionStorage.getItem(KEY);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(KEY, value);
  else sessionStorage.removeItem(KEY);
}

/** Called with the error when the node stops accepting the token (401). */
export function onSignedOut(listener) {
  listeners.add(listener);
}

/** `?a=1&b=x&b=y` from an object; arrays repeat the key, empty values are left out. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    for (const v of Array.isArray(value) ? value : [value]) {
      if (v !== undefined && v !== null && v !== "" && v !== false) search.append(key, String(v));
    }
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

async function problem(response) {
  let detail = `${response.status} ${response.statusText}`;
  let errors = null;
  try {
    const body = await response.json();
    if (typeof body.detail === "string") detail = body.detail;
    else if (Array.isArray(body.detail)) { errors = body.detail; detail = "the node refused some fields"; }
    if (Array.isArray(body.errors)) errors = body.errors;
  } catch { /* not JSON: keep the status line */ }
  return new ApiError(response.status, detail, errors);
}

// Requests in flight, on the root element (`data-pending`): tests and the screenshot
// script wait for 0 instead of guessing how long a page takes.
let pending = 0;
function busy(step) {
  pending += step;
  document.documentElement.dataset.pending = String(pending);
}

/** A request to /api/v1; JSON in and out. Throws ApiError for any answer but 2xx. */
export async function api(path, options = {}) {
  busy(1);
  try {
    return await request(path, options);
  } finally {
    busy(-1);
  }
}

async function request(path, { method = "GET", body, params, signal, raw = false, auth } = {}) {
  const headers = { Accept: raw ? "*/*" : "application/json" };
  const bearer = auth || token();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(`/api/v1${path}${query(params)}`, {
      method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, `the node could not be reached (${error.message})`);
  }
  if (!response.ok) {
    const error = await problem(response);
    if (response.status === 401 && !auth) listeners.forEach((listener) => listener(error));
    throw error;
  }
  if (raw) return response;
  if (response.status === 204) return null;
  return response.json();
}

/** Download a protected resource (an attachment, a label's XML) as a file. */
export async function download(path, filename) {
  const response = await api(path, { raw: true });
  const url = URL.createObjectURL(await response.blob());
  const link = Object.assign(document.createElement("a"), { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
