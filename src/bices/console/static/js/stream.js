// The live stream: Server-Sent Events read with fetch(), because EventSource cannot send
// an Authorization header. Resumes with Last-Event-ID after any break, so nothing the user
// may see is missed or received twice.

/** An incremental parser of the text/event-stream format (the WHATWG rules). */
export class SseParser {
  constructor(onEvent) {
    this.onEvent = onEvent; // ({id, event, data}) for each dispatched event
    this.buffer = "";
    this.reset();
    this.lastEventId = "";
    this.retry = null;
  }

  reset() {
    this.data = [];
    this.event = "";
    this.sawId = false;
  }

  /** Feed decoded text; complete lines are parsed, a partial line waits for more. */
  push(text) {
    this.buffer += text;
    let start = 0;
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer.slice(start));
      if (!match) break;
      // A lone \r at the end might be the first half of \r\n: wait for the next chunk.
      if (match[0] === "\r" && start + match.index === this.buffer.length - 1) break;
      this.line(this.buffer.slice(start, start + match.index));
      start += match.index + match[0].length;
    }
    this.buffer = this.buffer.slice(start);
  }

  line(line) {
    if (line === "") return this.dispatch();
    if (line.startsWith(":")) return undefined; // a comment (keep-alive)
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.data.push(value);
    else if (field === "event") this.event = value;
    else if (field === "id" && !value.includes("\0")) { this.lastEventId = value; this.sawId = true; }
    else if (field === "retry" && /^\d+$/.test(value)) this.retry = Number(value);
    return undefined;
  }

  dispatch() {
    if (this.data.length) {
      this.onEvent({
        id: this.sawId ? this.lastEventId : null,
        event: this.event || "message",
        data: this.data.join("\n"),
      });
    }
    this.reset();
  }
}

/**
 * One stream per signed-in console. Dispatches `report`, `rfi`, `alert` (detail: the
 * parsed data plus `eventId`), `state` (detail: {state, retryIn}) and `closed`.
 */
export class LiveStream extends EventTarget {
  constructor(getToken) {
    super();
    this.getToken = getToken;
    this.lastEventId = null;
    this.state = "idle";
    this.controller = null;
    this.stopped = true;
    this.received = 0;
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.run();
  }

  stop() {
    this.stopped = true;
    if (this.controller) this.controller.abort();
    this.setState("idle");
  }

  setState(state, retryIn = null) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, retryIn } }));
  }

  async run() {
    let delay = 1000;
    while (!this.stopped) {
      const outcome = await this.connect();
      if (this.stopped || outcome === "closed") break;
      if (outcome === "connected") delay = 1000; // a stream that ran resets the back-off
      this.setState("reconnecting", delay);
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 30_000);
    }
  }

  async connect() {
    this.controller = new AbortController();
    this.setState(this.lastEventId ? "resuming" : "connecting");
    const headers = { Accept: "text/event-stream", Authorization: `Bearer ${this.getToken()}` };
    if (this.lastEventId) headers["Last-Event-ID"] = this.lastEventId;
    let response;
    try {
      response = await fetch("/api/v1/stream", { headers, signal: this.controller.signal, cache: "no-store" });
    } catch {
      return "failed";
    }
    if (response.status === 401 || response.status === 403) {
      this.closed({ reason: `the node refused the stream (${response.status})` });
      return "closed";
    }
    if (response.status === 422 && this.lastEventId) {
      this.lastEventId = null; // an id the node no longer knows: start again from now
      return "failed";
    }
    if (!response.ok || !response.body) return "failed";
    this.setState("live");
    let ended = "connected";
    const parser = new SseParser((message) => { ended = this.deliver(message) || ended; });
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.push(value);
        if (ended === "closed" || ended === "overflow") break;
      }
    } catch {
      /* the connection broke: resume below */
    } finally {
      this.controller.abort();
    }
    return ended === "closed" ? "closed" : "connected";
  }

  deliver({ id, event, data }) {
    let parsed;
    try { parsed = JSON.parse(data); } catch { parsed = { raw: data }; }
    if (event === "closed") {
      this.closed(parsed);
      return "closed";
    }
    if (event === "overflow") {
      if (parsed.resume_after) this.lastEventId = parsed.resume_after;
      return "overflow";
    }
    if (id) this.lastEventId = id;
    this.received += 1;
    this.dispatchEvent(new CustomEvent(event, { detail: { ...parsed, eventId: id } }));
    return null;
  }

  closed(detail) {
    this.stopped = true;
    this.setState("closed");
    this.dispatchEvent(new CustomEvent("closed", { detail }));
  }
}
