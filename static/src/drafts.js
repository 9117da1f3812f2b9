// Drafts: the learner's code is PUT to the server ~800 ms after typing stops and when the page
// is left, with a small "Saving… / Saved / Not saved: reason" indicator.
import { request } from "./api.js";

const DELAY_MS = 800;

export class DraftSaver {
  constructor({ url, getCode, indicator, initialCode }) {
    this.url = url;
    this.getCode = getCode;
    this.indicator = indicator;
    this.saved = initialCode;
    this.timer = 0;
    this.inFlight = false;
    this.failed = false;
    this.signedOut = false;

    const flush = () => this.flush();
    window.addEventListener("pagehide", flush);
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "hidden") flush();
    });
    window.addEventListener("beforeunload", (event) => {
      // Only warn when a save really failed; a pending one is flushed with keepalive.
      if (this.failed && !this.signedOut && this.getCode() !== this.saved) {
        event.preventDefault();
        event.returnValue = "";
      }
    });
  }

  show(state, text) {
    this.indicator.dataset.state = state;
    this.indicator.textContent = text;
  }

  changed() {
    clearTimeout(this.timer);
    if (this.getCode() === this.saved) {
      if (!this.failed) this.show("saved", "Saved");
      return;
    }
    this.show("pending", "Unsaved changes");
    this.timer = setTimeout(() => this.save(), DELAY_MS);
  }

  async save() {
    clearTimeout(this.timer);
    if (this.inFlight) {
      this.timer = setTimeout(() => this.save(), DELAY_MS);
      return;
    }
    const code = this.getCode();
    if (code === this.saved) return;
    this.inFlight = true;
    this.show("saving", "Saving…");
    const answer = await request(this.url, { method: "PUT", json: { code } });
    this.inFlight = false;
    if (answer.ok) {
      this.saved = code;
      this.failed = false;
      if (this.getCode() === code) this.show("saved", "Saved");
      else this.changed();
      return;
    }
    this.failed = true;
    this.signedOut = answer.status === 401;
    const reason = this.signedOut ? "sign in to keep your code" : answer.detail;
    this.show("error", `Not saved: ${reason}`);
  }

  /** The page is going away: send what is unsaved with keepalive, without waiting. */
  flush() {
    clearTimeout(this.timer);
    const code = this.getCode();
    if (code === this.saved || this.signedOut) return;
    request(this.url, { method: "PUT", json: { code }, keepalive: true }).then((answer) => {
      if (answer.ok) {
        this.saved = code;
        this.failed = false;
        this.show("saved", "Saved");
      }
    });
  }
}
