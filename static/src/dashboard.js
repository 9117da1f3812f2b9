// The instructor dashboard, live: polls the stats endpoint and updates each lesson's row in
// place (counts, content state, most failed checks), so numbers move as learners run Check.
// Rows are keyed by `data-lesson` ("course/folder"); when lessons appear, disappear or are
// renamed (the `layout` signature changed) the table itself is fetched again. Polling pauses while the tab is hidden.

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

function updateRow(row, lesson) {
  setText(row.querySelector("[data-field=started]"), lesson.started);
  setText(row.querySelector("[data-field=finished]"), lesson.finished);
  const bar = row.querySelector("[data-field=finished-bar]");
  if (bar) bar.style.width = `${lesson.started ? Math.round((100 * lesson.finished) / lesson.started) : 0}%`;

  const verdict = row.querySelector("[data-field=verdict]");
  if (verdict) {
    const { tone, badge, detail, problems } = lesson.verdict;
    verdict.dataset.tone = tone;
    setText(verdict.querySelector(".verdict-badge"), badge);
    setText(verdict.querySelector(".verdict-detail"), detail);
    const list = verdict.querySelector(".problem-list");
    if (list) {
      list.replaceChildren(...problems.map(problemItem));
      list.hidden = problems.length === 0;
    }
    row.classList.toggle("dash-row-broken", !lesson.loads);
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
      if (lesson) updateRow(row, lesson);
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
  return { poll, stop };
}
