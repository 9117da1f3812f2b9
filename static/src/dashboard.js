// The instructor dashboard, live: polls the stats endpoint and updates each lesson's row in
// place (counts, content state, most failed checks), so numbers move as learners run Check.
// Rows are keyed by `data-lesson` ("course/folder"); when lessons appear, disappear or are
// renamed (the `layout` signature changed) the table itself is fetched again. Polling pauses while the tab is hidden.
// Each loading lesson has a "Validate in the sandbox" button: it POSTs to the lesson's validate
// endpoint (its solution and starter run in check mode on the app's runners), shows
// "Validating…" until the verdict comes back, then the row shows it. A validation started
// elsewhere (another instructor, another tab) shows as "Validating…" too, from the polled stats.

import { request } from "./api.js";

function plural(count, word) {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** The "Most failed checks" cell's content for one lesson (learner text only as textContent). */
export function failingList(failing) {
  if (!failing.length) return element("span", "dash-none", "No failed checks yet");
  const list = element("ol", "failing-list");
  for (const check of failing) {
    const item = element("li", "failing-check");
    const head = element("span", "failing-head");
    head.append(
      element("span", "failing-name", check.name),
      element("span", "failing-count", `${check.failures}× · ${plural(check.learners, "learner")}`),
    );
    item.append(head);
    for (const { message, count } of check.messages) {
      const line = element("span", "failing-message");
      line.append(element("q", "", message), " ", element("span", "failing-times", `${count}×`));
      item.append(line);
    }
    list.append(item);
  }
  return list;
}

function problemItem(text) {
  // "lesson.md:2: what to fix" → the place in mono, then the message.
  const match = /^(\S+?): (.*)$/s.exec(text);
  const item = element("li");
  if (match) item.append(element("span", "problem-where mono", match[1]), " ", element("span", "problem-message", match[2]));
  else item.textContent = text;
  return item;
}

function flash(node) {
  node.classList.remove("is-updated");
  void node.offsetWidth; // restart the animation
  node.classList.add("is-updated");
}

function setText(node, text) {
  if (!node || node.textContent === String(text)) return false;
  node.textContent = String(text);
  flash(node.closest("td") || node);
  return true;
}

/** The row's "Content" cell: the verdict's badge, sentence and problems; true if it changed. */
function showVerdict(row, { tone, badge, detail, problems }) {
  const verdict = row.querySelector("[data-field=verdict]");
  if (!verdict) return false;
  verdict.dataset.tone = tone;
  const newBadge = setText(verdict.querySelector(".verdict-badge"), badge);
  const newDetail = setText(verdict.querySelector(".verdict-detail"), detail);
  const list = verdict.querySelector(".problem-list");
  if (list) {
    list.replaceChildren(...problems.map(problemItem));
    list.hidden = problems.length === 0;
  }
  return newBadge || newDetail;
}

/** The Validate button: "Validating…" and disabled while a validation of the lesson runs. */
export function showValidating(row, busy) {
  const button = row.querySelector("[data-validate]");
  if (!button) return;
  button.disabled = busy;
  button.textContent = busy ? "Validating…" : "Validate in the sandbox";
  if (busy) button.setAttribute("aria-busy", "true");
  else button.removeAttribute("aria-busy");
}

function showNote(row, text, tone = "") {
  const note = row.querySelector("[data-field=validate-note]");
  if (!note) return;
  note.textContent = text;
  note.dataset.tone = tone;
  note.hidden = !text;
}

/** One line about a finished validation: what each run did. */
export function validationSummary(result) {
  const parts = result.runs.map(({ which, status, checks, passed, duration_ms: ms }) => {
    const seconds = ms == null ? "" : `, ${(ms / 1000).toFixed(1)} s`;
    if (status !== "completed") return `${which} ${status}${seconds}`;
    if (which === "starter") return `starter failed ${checks - passed} of ${plural(checks, "check")}${seconds}`;
    return `${which} passed ${passed} of ${plural(checks, "check")}${seconds}`;
  });
  const outcome = result.ok ? "Verified" : plural(result.problems.length, "problem");
  return `${outcome}: ${parts.join("; ")}.`;
}

function updateRow(row, lesson, { validatingHere = false, staleVerdict = false } = {}) {
  setText(row.querySelector("[data-field=started]"), lesson.started);
  setText(row.querySelector("[data-field=finished]"), lesson.finished);
  const bar = row.querySelector("[data-field=finished-bar]");
  if (bar) bar.style.width = `${lesson.started ? Math.round((100 * lesson.finished) / lesson.started) : 0}%`;

  row.classList.toggle("dash-row-broken", !lesson.loads);
  const button = row.querySelector("[data-validate]");
  if (button) button.hidden = !lesson.loads;
  if (!staleVerdict) {
    // A note about this page's last validation is stale once the verdict moves on (an edit).
    if (showVerdict(row, lesson.verdict)) showNote(row, "");
    showValidating(row, Boolean(lesson.validating) || validatingHere);
  }

  // The server rendered the same list: rebuilt quietly on the first poll, then on changes.
  const failing = row.querySelector("[data-field=failing]");
  const signature = JSON.stringify(lesson.failing);
  if (failing && failing.dataset.signature !== signature) {
    const first = failing.dataset.signature === undefined;
    failing.replaceChildren(failingList(lesson.failing));
    failing.dataset.signature = signature;
    if (!first) flash(failing);
  }
}

export function initDashboard(root, live) {
  const url = root.dataset.statsUrl;
  const every = Math.max(1, Number(root.dataset.everyS) || 4) * 1000;
  const text = live?.querySelector(".live-text");
  let timer = null;
  let busy = false;
  const validating = new Set(); // rows whose validation this page started and still waits for
  const settledAt = new Map(); // row → when this page last showed a validation's verdict

  const showButtons = () => {
    for (const box of root.querySelectorAll(".dash-validate[data-js-only]")) box.hidden = false;
  };
  showButtons();

  async function validate(row, url) {
    const id = row.dataset.lesson;
    validating.add(id);
    showValidating(row, true);
    showNote(row, "");
    const result = await request(url, { method: "POST" });
    validating.delete(id);
    settledAt.set(id, Date.now()); // a poll answered before this must not undo what it shows
    // The table may have been redrawn meanwhile: the row as it is now.
    const current = [...root.querySelectorAll("[data-lesson]")].find((r) => r.dataset.lesson === id) || row;
    showValidating(current, false);
    if (result.ok) {
      showVerdict(current, result.data.verdict);
      flash(current.querySelector("[data-field=verdict]"));
      showNote(current, result.data.note || validationSummary(result.data), result.data.note ? "bad" : "");
    } else {
      showNote(current, result.detail, "bad");
    }
    poll(); // the rest of the row, and the other rows, as they are now
  }

  root.addEventListener("click", (event) => {
    const button = event.target.closest("[data-validate]");
    if (!button || button.disabled) return;
    const row = button.closest("[data-lesson]");
    if (row) validate(row, button.dataset.validate);
  });

  const say = (state, message) => {
    if (!live) return;
    live.dataset.state = state;
    if (text) text.textContent = message;
  };

  async function refreshTable() {
    // Lessons were added, removed or renamed: take the server's table as it is now.
    try {
      const response = await fetch(window.location.href, { credentials: "same-origin" });
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.getElementById("dashboard");
      if (response.ok && fresh) {
        root.replaceChildren(...fresh.childNodes);
        root.dataset.layout = fresh.dataset.layout;
        showButtons();
      }
    } catch {
      /* next poll tries again */
    }
  }

  async function poll() {
    if (busy) return;
    busy = true;
    try {
      await update();
    } finally {
      busy = false;
    }
  }

  async function update() {
    const asked = Date.now();
    const result = await request(url);
    if (!result.ok) {
      if (result.status === 401 || result.status === 403) {
        say("error", `${result.detail} Reload the page after signing in.`);
        stop();
      } else say("error", `Not updated: ${result.detail} Trying again…`);
      return;
    }
    const { layout, lessons } = result.data;
    if (layout !== root.dataset.layout) await refreshTable();
    const byId = new Map(lessons.map((lesson) => [lesson.id, lesson]));
    for (const row of root.querySelectorAll("[data-lesson]")) {
      const lesson = byId.get(row.dataset.lesson);
      const id = row.dataset.lesson;
      if (lesson) {
        updateRow(row, lesson, {
          validatingHere: validating.has(id),
          staleVerdict: (settledAt.get(id) || 0) >= asked,
        });
      }
    }
    const time = new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
    say("live", `Live · updated ${time}`);
    root.dataset.updatedAt = String(Date.now());
  }

  function start() {
    if (timer === null) timer = setInterval(poll, every);
  }
  function stop() {
    clearInterval(timer);
    timer = null;
  }

  document.addEventListener("visibilitychange", () => {
    if (document.hidden) {
      stop();
      say("paused", "Paused while this tab is hidden");
    } else {
      poll();
      start();
    }
  });
  poll();
  start();
  return { poll, stop, validate };
}
