// node --test: where unsaved code is kept in the browser, and that sign-out forgets all of it.
import assert from "node:assert/strict";
import { test } from "node:test";

import { forgetAllUnsaved, unsavedKey } from "./drafts.js";

class MemoryStorage {
  constructor(entries) {
    this.map = new Map(Object.entries(entries));
  }
  get length() {
    return this.map.size;
  }
  key(i) {
    return [...this.map.keys()][i] ?? null;
  }
  removeItem(key) {
    this.map.delete(key);
  }
}

test("unsaved code is kept per user, and per lesson", () => {
  assert.equal(unsavedKey(7, "course/lesson"), "torchdojo:unsaved:7:course/lesson");
  assert.notEqual(unsavedKey(7, "c/l"), unsavedKey(8, "c/l"));
  assert.equal(unsavedKey("", "c/l"), "torchdojo:unsaved:anon:c/l");
});

test("sign-out forgets every learner's unsaved code and nothing else", () => {
  const storage = new MemoryStorage({
    [unsavedKey(7, "a/b")]: "A's code",
    [unsavedKey(8, "a/c")]: "B's code",
    [unsavedKey("", "a/b")]: "typed signed out",
    "torchdojo:unsaved:a/b": "an old-style key",
    "torchdojo:split:lesson": "0.4",
  });
  forgetAllUnsaved(storage);
  assert.deepEqual([...storage.map.keys()], ["torchdojo:split:lesson"]);
});
