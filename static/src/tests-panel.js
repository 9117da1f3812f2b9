// The Tests tab: one row per check, in the order of the checks file, and a summary line.

const ICONS = { passed: "✓", failed: "✗", error: "!", skipped: "–" };
const LABELS = { passed: "passed", failed: "failed", error: "error", skipped: "skipped" };

export class TestsPanel {
  /** @param {HTMLElement} element  #tests */
  constructor(element) {
    this.element = element;
    this.list = null;
    this.summaryLine = null;
    this.counts = { passed: 0, failed: 0, error: 0, skipped: 0 };
  }

  reset(placeholder = "Press Check to test your code against the exercise's checks.") {
    this.counts = { passed: 0, failed: 0, error: 0, skipped: 0 };
    this.summaryLine = document.createElement("p");
    this.summaryLine.className = "tests-summary";
    this.summaryLine.textContent = placeholder;
    this.list = document.createElement("ol");
    this.list.className = "tests-list";
    this.element.replaceChildren(this.summaryLine, this.list);
    this.element.dataset.total = "0";
  }

  get total() {
    return Object.values(this.counts).reduce((a, b) => a + b, 0);
  }

  get failures() {
    return this.counts.failed + this.counts.error;
  }

  running() {
    this.summaryLine.textContent = "Running the checks…";
  }

  add(test) {
    const status = ICONS[test.status] ? test.status : "error";
    this.counts[status] += 1;
    const row = document.createElement("li");
    row.className = `test-row test-${status}`;
    row.dataset.status = status;

    const icon = document.createElement("span");
    icon.className = "test-icon";
    icon.textContent = ICONS[status];
    icon.setAttribute("aria-label", LABELS[status]);

    const body = document.createElement("div");
    body.className = "test-body";
    const name = document.createElement("div");
    name.className = "test-name";
    name.textContent = test.name;
    body.append(name);
    if (test.message) {
      const message = document.createElement("div");
      message.className = "test-message";
      message.textContent = test.message;
      body.append(message);
    }
    if (test.hint && status !== "passed") {
      const hint = document.createElement("div");
      hint.className = "test-hint";
      hint.textContent = test.hint;
      body.append(hint);
    }
    row.append(icon, body);
    if (test.duration_ms >= 1) {
      const time = document.createElement("span");
      time.className = "test-time";
      time.textContent = formatMs(test.duration_ms);
      row.append(time);
    }
    this.list.append(row);
    this.element.dataset.total = String(this.total);
    this.summaryLine.textContent = `${this.counts.passed} of ${this.total} passed so far…`;
  }

  /** The final line, from done.tests when the run has it, else from the rows. */
  finish(done) {
    const counts = done && done.tests;
    const passed = counts ? counts.passed : this.counts.passed;
    const total = counts ? counts.passed + counts.failed + counts.errors : this.total;
    if (!total) {
      this.summaryLine.textContent =
        done && done.status !== "completed"
          ? "No checks ran: the run stopped before they could. See the Console tab."
          : "No checks ran.";
      this.summaryLine.className = "tests-summary tests-summary-none";
      return;
    }
    const allPassed = passed === total;
    this.summaryLine.textContent = allPassed
      ? `${passed} of ${total} passed — well done!`
      : `${passed} of ${total} passed`;
    this.summaryLine.className = `tests-summary ${allPassed ? "tests-summary-passed" : "tests-summary-failed"}`;
  }

  /** Brings the first failing check into view (after the Tests tab is shown). */
  revealFirstFailure() {
    const row = this.list.querySelector(".test-failed, .test-error");
    if (row) row.scrollIntoView({ block: "nearest" });
  }
}

function formatMs(ms) {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}
