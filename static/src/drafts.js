// Drafts: the learner's code is PUT to the server ~800 ms after typing stops and when the page
// is left, with a small "Saving… / Saved / Not saved: reason" indicator. Code the server did
// not take (signed out, offline) is kept in localStorage and put back on the next visit —
// keyed by the signed-in user, and all of it forgotten on sign-out, so on a shared browser one
// learner's code never turns up in another's editor.
import { request } from "./api.js";

const DELAY_MS = 800;
const PREFIX = "torchdojo:unsaved:";
const SIGN_OUT_WAIT_MS = 3000;

/** The localStorage key of a lesson's unsaved code: per user ("anon" when signed out). */
export function unsavedKey(userId, lessonKey) {
  return `${PREFIX}${userId || "anon"}:${lessonKey}`;
}

/** Forgets every unsaved copy kept in this browser, whoever's (on sign-out). */
export function forgetAllUnsaved(storage = globalThis.localStorage) {
  try {
    const keys = [];
    for (let i = 0; i < storage.length; i++) {
      const key = storage.key(i);
      if (key && key.startsWith(PREFIX)) keys.push(key);
    }
    for (const key of keys) storage.removeItem(key);
  } catch {
    /* storage disabled */
  }
}

export class DraftSaver {
  constructor({ url, lessonKey, userId, getCode, indicator, initialCode }) {
    this.url = url;
    this.localKey = unsavedKey(userId, lessonKey);
    // Code typed while signed out is claimed by whoever signs in next in this browser (the
    // sign-out before that cleared everyone else's).
    this.anonKey = userId ? unsavedKey("", lessonKey) : null;
    this.closed = false;
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

  /** The learner signs out: save what is unsaved now (waiting a little), then stop keeping it. */
  async signingOut() {
    clearTimeout(this.timer);
    this.closed = true;
    const code = this.getCode();
    if (code === this.saved || this.signedOut) return;
    const put = request(this.url, { method: "PUT", json: { code }, keepalive: true });
    const late = new Promise((resolve) => setTimeout(() => resolve(null), SIGN_OUT_WAIT_MS));
    const answer = await Promise.race([put, late]);
    if (answer && answer.ok) this.saved = code;
  }

  /** The page is going away: send what is unsaved with keepalive, without waiting. */
  flush() {
    clearTimeout(this.timer);
    if (this.closed) return;
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
    if (this.closed) return;
    try {
      localStorage.setItem(this.localKey, code);
    } catch {
      /* storage full or disabled */
    }
  }

  forgetLocal() {
    try {
      localStorage.removeItem(this.localKey);
      if (this.anonKey) localStorage.removeItem(this.anonKey);
    } catch {
      /* storage disabled */
    }
  }

  /** Puts back code an earlier visit could not save (then saves it, if it can now). */
  restore(setCode) {
    let code = null;
    try {
      code = localStorage.getItem(this.localKey);
      if (code == null && this.anonKey) code = localStorage.getItem(this.anonKey);
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
