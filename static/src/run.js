// Run and Check: POST the code, stream the run's events over SSE, and feed them to the panels.
import { request } from "./api.js";
import { INTERNAL_ERROR_DEFAULT, LIMIT_DEFAULTS } from "./status.js";

export class RunController {
  /**
   * @param {object} options
   * @param {string} options.lessonKey  "course/lesson"
   * @param {() => string} options.getCode
   * @param {{console, tests, model, loss}} options.panels
   * @param {import("./tabs.js").Tabs} options.tabs
   * @param {import("./status.js").RunStatus} options.status
   * @param {{run: HTMLButtonElement, check: HTMLButtonElement, stop: HTMLButtonElement|null}} options.buttons
   * @param {(line: number|null) => void} [options.markErrorLine]
   * @param {(done: object, mode: string) => void} [options.onFinished]
   */
  constructor(options) {
    Object.assign(this, options);
    this.active = false;
    this.mode = "run";
    this.runId = null;
    this.source = null;
    this.lastSeq = -1;
    this.cancelWanted = false;
    this.started = false; // the runner began it (its `started` event came): no longer queued
    this.position = null; // its place in line, while a `queued` event says it waits
    this.stopping = false;
    this.buttons.stop?.addEventListener("click", () => this.stop());
  }

  setBusy(busy) {
    this.active = busy;
    this.buttons.run.disabled = busy;
    this.buttons.check.disabled = busy;
    if (this.buttons.stop) this.buttons.stop.disabled = !busy;
    document.body.classList.toggle("is-running", busy);
  }

  resetPanels(mode) {
    this.panels.console.reset();
    this.panels.tests.reset();
    if (mode === "check") this.panels.tests.running();
    this.panels.model.reset();
    this.panels.loss.reset();
    this.tabs.clearNews();
    this.markErrorLine?.(null);
    this.lastSeq = -1;
  }

  async start(mode) {
    if (this.active) return;
    const code = this.getCode();
    this.mode = mode === "check" ? "check" : "run";
    this.runId = null;
    this.cancelWanted = false;
    this.started = false;
    this.stopping = false;
    this.setBusy(true);
    this.resetPanels(this.mode);
    this.position = null;
    this.status.starting(); // `queued` events say if it waits in line; `started` that it runs

    const answer = await request("/api/runs", {
      method: "POST",
      json: { lesson: this.lessonKey, code, mode: this.mode },
    });
    if (!answer.ok || !answer.data || !answer.data.id) {
      this.setBusy(false);
      const detail = answer.detail || "The server did not start the run.";
      this.status.rejected(detail, { signIn: answer.status === 401 });
      this.panels.console.notice(detail, "error");
      return;
    }
    this.runId = answer.data.id;
    if (this.cancelWanted) this.stop();
    this.listen(answer.data.events_url || `/api/runs/${encodeURIComponent(this.runId)}/events`);
  }

  /**
   * Follows a run already going (the page was reloaded during it): its stored events are
   * replayed from the start by the events endpoint, then it goes on live.
   */
  attach({ id, mode }) {
    if (this.active || !id) return;
    this.mode = mode === "check" ? "check" : "run";
    this.runId = id;
    this.cancelWanted = false;
    this.started = false;
    this.stopping = false;
    this.position = null;
    this.setBusy(true);
    this.resetPanels(this.mode);
    this.status.starting();
    this.listen(`/api/runs/${encodeURIComponent(id)}/events`);
  }

  /** The status line while the run is going: starting, in line, or running. */
  showProgress() {
    if (this.started) this.status.running(this.mode);
    else if (this.position) this.status.queued(this.position);
    else this.status.starting();
  }

  listen(url) {
    const source = new EventSource(url, { withCredentials: true });
    this.source = source;
    source.onmessage = (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        return; // not an event (a comment or keep-alive that slipped through)
      }
      this.handle(event);
    };
    source.onerror = () => {
      if (this.source !== source) return;
      if (source.readyState === EventSource.CLOSED) {
        // The server refused the stream (e.g. 404) and EventSource gave up.
        this.closeSource();
        this.setBusy(false);
        this.status.set(
          "disconnected",
          "Lost the connection to the run. Your code is saved; press Run to try again.",
          "bad",
        );
      } else {
        this.status.set("running", "Connection interrupted — reconnecting…", "busy");
      }
    };
    source.onopen = () => {
      const shown = this.status.element.dataset.runStatus;
      if (this.active && ["running", "queued", "starting"].includes(shown)) this.showProgress();
    };
  }

  closeSource() {
    if (this.source) this.source.close();
    this.source = null;
  }

  /** One protocol event; replays after a reconnect are skipped by their seq. */
  handle(event) {
    if (typeof event.seq === "number") {
      // A replay after a reconnect is skipped by its seq; `done` never is: it is final, and a
      // server that replaced a killed one may number it below what this page already saw.
      if (event.seq <= this.lastSeq && event.type !== "done") return;
      this.lastSeq = Math.max(this.lastSeq, event.seq);
    }
    const { console: out, tests, model, loss } = this.panels;
    switch (event.type) {
      case "queued":
        this.position = event.position;
        if (this.active && !this.stopping && !this.started) this.showProgress();
        break;
      case "started":
        this.started = true;
        if (this.active && !this.stopping) this.showProgress();
        out.notice(`Started on ${event.device} · torch ${event.torch}`);
        break;
      case "output":
        out.output(event.stream, event.text);
        break;
      case "figure":
        out.figure(event.format, event.data);
        break;
      case "summary":
        model.show(event);
        this.tabs.notify("model");
        break;
      case "metric":
        loss.add(event);
        this.tabs.notify("loss");
        break;
      case "test":
        if (this.mode !== "check") {
          this.mode = "check";
          tests.running();
        }
        tests.add(event);
        this.tabs.notify("tests");
        break;
      case "done":
        this.finish(event);
        break;
      default:
        break; // a newer protocol's event type: ignored
    }
  }

  finish(done) {
    this.stopping = false;
    this.closeSource();
    this.setBusy(false);
    this.status.done(done);
    const line = done.error && done.error.line;
    this.markErrorLine?.(line || null);
    if (done.status !== "completed") {
      noticeEnd(this.panels.console, done);
    }
    if (this.mode === "check" || done.tests) {
      this.panels.tests.finish(done);
      if (this.panels.tests.total > 0) {
        this.tabs.show("tests");
        this.panels.tests.revealFirstFailure();
      }
    }
    this.onFinished?.(done, this.mode);
  }

  async stop() {
    if (!this.active) return;
    if (!this.runId) {
      this.cancelWanted = true; // the POST is still on its way: cancel once it has an id
      return;
    }
    const stop = this.buttons.stop;
    if (stop) stop.disabled = true;
    this.stopping = true;
    this.status.set("running", "Stopping…", "busy");
    const answer = await request(`/api/runs/${encodeURIComponent(this.runId)}/cancel`, {
      method: "POST",
    });
    if (!answer.ok && this.active) {
      this.stopping = false;
      this.showProgress();
      this.panels.console.notice(`Could not stop the run: ${answer.detail}`, "error");
      if (stop) stop.disabled = false;
    }
  }

  /** Shows a finished run's stored events (the page was rendered after a form post). */
  replay(events) {
    const sorted = [...events].sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0));
    const isCheck = sorted.some((e) => e.type === "test" || (e.type === "done" && e.tests));
    this.mode = isCheck ? "check" : "run";
    this.resetPanels(this.mode);
    this.active = true;
    for (const event of sorted) this.handle(event);
    if (this.active) this.setBusy(false); // stored runs without a done event (should not happen)
  }
}

/** The run's end in the console too, where the learner is looking. */
function noticeEnd(consolePanel, done) {
  const error = done.error;
  if (done.status === "error") {
    return; // the traceback is already in stderr
  }
  const text =
    (error && error.message) ||
    {
      cancelled: "Run cancelled.",
      ...LIMIT_DEFAULTS,
      internal_error: INTERNAL_ERROR_DEFAULT,
    }[done.status] ||
    `Finished: ${done.status}`;
  consolePanel.notice(text, done.status === "cancelled" ? "info" : "error");
}
