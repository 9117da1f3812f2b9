// Drafts: the learner's code is PUT to the server ~800 ms after typing stops and when the page
// is left, with a small "Saving… / Saved / Not saved: reason" indicator. Code the server did
// not take (signed out, offline) is kept in localStorage and put back on the next visit.
import { request } from "./api.js";

const DELAY_MS = 800;

export class DraftSaver {
  constructor({ url, lessonKey, getCode, indicator, initialCode }) {
    this.url = url;
    this.localKey = `torchdojo:unsaved:${lessonKey}`;
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
      this.forgetLocal();
      if (this.getCode() === code) this.show("saved", "Saved");
      else this.changed();
      return;
    }
    this.failed = true;
    this.keepLocal(code);
    this.signedOut = answer.status === 401;
    const reason = this.signedOut ? "sign in to keep your code" : answer.detail;
    this.show("error", `Not saved: ${reason}`);
  }

  /** The page is going away: send what is unsaved with keepalive, without waiting. */
  flush() {
    clearTimeout(this.timer);
    const code = this.getCode();
    if (code === this.saved) return;
    this.keepLocal(code); // forgotten again if the keepalive request succeeds
    if (this.signedOut) return;
    request(this.url, { method: "PUT", json: { code }, keepalive: true }).then((answer) => {
      if (answer.ok) {
        this.saved = code;
        this.failed = false;
        this.forgetLocal();
        this.show("saved", "Saved");
      }
    });
  }

  keepLocal(code) {
    try {
      localStorage.setItem(this.localKey, code);
    } catch {
      /* storage full or disabled */
    }
  }

  forgetLocal() {
    try {
      localStorage.removeItem(this.localKey);
    } catch {
      /* storage disabled */
    }
  }

  /** Puts back code an earlier visit could not save (then saves it, if it can now). */
  restore(setCode) {
    let code = null;
    try {
      code = localStorage.getItem(this.localKey);
    } catch {
      return;
    }
    if (code == null) return;
    if (code === this.getCode()) {
      this.forgetLocal();
      return;
    }
    setCode(code); // the editor's change handler calls changed(), which saves it
    this.show("pending", "Restored your unsaved code");
  }
}
