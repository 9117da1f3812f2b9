// The live lesson preview: polls the lesson's fingerprint (a hash of its files) and, when a
// file was saved, swaps in the freshly rendered lesson, or the problems that stop it from
// loading, and back again once they are fixed. Polling pauses while the tab is hidden.

import { request } from "./api.js";
import { renderMath } from "./math.js";

export function initPreview(root, live) {
  const every = Math.max(0.5, Number(root.dataset.everyS) || 1) * 1000;
  const text = live?.querySelector(".live-text");
  let timer = null;
  let busy = false;

  const current = () => root.querySelector("[data-fingerprint]");
  const say = (state, message) => {
    if (!live) return;
    live.dataset.state = state;
    if (text) text.textContent = message;
  };
  const describe = () =>
    current()?.dataset.state === "broken" ? "Broken · waiting for a fix" : "Live · follows your edits";

  async function swap() {
    let response;
    try {
      response = await fetch(root.dataset.contentUrl, { credentials: "same-origin" });
    } catch {
      return false;
    }
    if (!response.ok) return false;
    const html = await response.text();
    const fresh = new DOMParser().parseFromString(html, "text/html").querySelector("[data-fingerprint]");
    if (!fresh) return false;
    const scroll = window.scrollY;
    current().replaceWith(document.adoptNode(fresh));
    window.scrollTo(0, scroll); // stay where the author was reading
    renderMath(fresh);
    fresh.classList.add("is-updated");
    return true;
  }

  async function poll() {
    if (busy) return;
    busy = true;
    try {
      const result = await request(root.dataset.fingerprintUrl);
      if (!result.ok) {
        say("error", result.status === 404 ? "The lesson folder is gone (renamed?)" : `Not updated: ${result.detail}`);
        return;
      }
      if (result.data.fingerprint !== current()?.dataset.fingerprint) {
        if (!(await swap())) {
          say("error", "Could not load the new version; trying again…");
          return;
        }
      }
      say(current()?.dataset.state === "broken" ? "broken" : "live", describe());
    } finally {
      busy = false;
    }
  }

  function start() {
    if (timer === null) timer = setInterval(poll, every);
  }
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) {
      clearInterval(timer);
      timer = null;
    } else {
      poll();
      start();
    }
  });
  say(current()?.dataset.state === "broken" ? "broken" : "live", describe());
  start();
  return { poll };
}
