// The run status line: `data-run-status` for tests and machines, a sentence for people.

// What each limit's end says when the runner's done carries no message: the status line and
// the console (run.js) say the same.
export const LIMIT_DEFAULTS = {
  timeout: "Stopped: your code ran longer than the time limit.",
  memory_limit: "Stopped: your code used more memory than the limit.",
  output_limit: "Stopped: your code printed more output than the limit.",
};

export const INTERNAL_ERROR_DEFAULT =
  "The runner stopped unexpectedly. Your code is saved: press Run to try again.";

function seconds(ms) {
  const s = (ms || 0) / 1000;
  return s < 10 ? `${s.toFixed(1)} s` : `${Math.round(s)} s`;
}

/**
 * The sentence for a finished run, from its `done` event.
 * Returns {text, line}: `line` is the learner's line number the error points at, if any.
 */
export function describeDone(done) {
  const error = done.error || null;
  switch (done.status) {
    case "completed": {
      let text = `Completed in ${seconds(done.duration_ms)}`;
      if (done.tests) {
        const { passed = 0, failed = 0, errors = 0 } = done.tests;
        const total = passed + failed + errors;
        text += ` — ${passed} of ${total} check${total === 1 ? "" : "s"} passed`;
      }
      return { text, line: null };
    }
    case "error": {
      if (!error) {
        const code = done.exit_code;
        return {
          text: code != null ? `Your code exited with code ${code}` : "Your code stopped with an error",
          line: null,
        };
      }
      let text = `Your code raised ${error.type}`;
      if (error.line) text += ` on line ${error.line}`;
      if (error.message) text += `: ${error.message}`;
      return { text, line: error.line || null };
    }
    case "timeout":
    case "memory_limit":
    case "output_limit":
      return { text: (error && error.message) || LIMIT_DEFAULTS[done.status], line: null };
    case "cancelled":
      return { text: (error && error.message) || "Stopped: you cancelled the run.", line: null };
    case "internal_error":
      // The server's message is a whole sentence that already says the code is saved.
      return { text: (error && error.message) || INTERNAL_ERROR_DEFAULT, line: null };
    default:
      return { text: `Finished: ${done.status}`, line: null };
  }
}

/**
 * Whether a finished run opens "Show solution", by the server's rule (app/routes/lessons.py
 * `may_see_solution`, fed by app/runs/store.py `settle`): a Check whose done event carries
 * test counts — a failed check is counted, a passed one marks the lesson passed; both open
 * the solution. A Check stopped before its checks ran (Stop, a time limit, a crash) carries
 * none and opens nothing.
 */
export function opensSolution(done, mode) {
  return mode === "check" && done != null && done.tests != null && typeof done.tests === "object";
}

/** Whether a finished run counts as a good outcome (green) or not (red). */
export function tone(done) {
  if (done.status === "completed") {
    const t = done.tests;
    return t && t.failed + t.errors > 0 ? "bad" : "good";
  }
  if (done.status === "cancelled") return "neutral";
  return "bad";
}

export class RunStatus {
  /** @param {HTMLElement} element  the [data-run-status] element */
  constructor(element, { onLineClick } = {}) {
    this.element = element;
    this.onLineClick = onLineClick;
  }

  set(status, text, toneName = "neutral") {
    this.element.dataset.runStatus = status;
    this.element.dataset.tone = toneName;
    this.element.replaceChildren(document.createTextNode(text));
    this.element.title = text;
  }

  /** Sent, not started yet; nothing says it waits (most runs start in milliseconds). */
  starting() {
    this.set("starting", "Starting…", "busy");
  }

  /** The runner said where the run is in line (1 = next), while others' code runs. */
  queued(position) {
    this.set("queued", `${ordinal(position)} in line for a runner…`, "busy");
  }

  running(mode) {
    this.set("running", mode === "check" ? "Checking your code…" : "Running your code…", "busy");
  }

  /** A request that never became a run (401, 413, 429, 503…): the code stays as it is. */
  rejected(detail, { signIn = false } = {}) {
    this.set("not_started", detail, "bad");
    if (signIn) {
      const link = document.createElement("a");
      link.href = `/login?next=${encodeURIComponent(location.pathname)}`;
      link.textContent = "Sign in to run code";
      // The server's sentence follows unless it says the same thing.
      const rest = /^sign in\b/i.test(detail) ? ": your code stays here." : ` — ${detail}`;
      this.element.replaceChildren(link, document.createTextNode(rest));
    }
  }

  done(done) {
    const { text, line } = describeDone(done);
    this.set(done.status, text, tone(done));
    if (line && this.onLineClick) {
      // Make "line 12" a link to that line in the editor.
      const marker = `line ${line}`;
      const at = text.indexOf(marker);
      if (at >= 0) {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "link-button";
        button.textContent = marker;
        button.addEventListener("click", () => this.onLineClick(line));
        this.element.replaceChildren(
          document.createTextNode(text.slice(0, at)),
          button,
          document.createTextNode(text.slice(at + marker.length)),
        );
      }
    }
  }
}

/** 1 → "1st", 2 → "2nd", 11 → "11th", 23 → "23rd". */
export function ordinal(n) {
  const tens = n % 100;
  if (tens >= 11 && tens <= 13) return `${n}th`;
  return `${n}${{ 1: "st", 2: "nd", 3: "rd" }[n % 10] || "th"}`;
}
