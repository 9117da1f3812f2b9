// node --test: the sentences people read when a run ends (see static/src/status.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import { INTERNAL_ERROR_DEFAULT, describeDone, opensSolution, tone } from "./status.js";

test("a completed check names the time and the checks passed", () => {
  const done = { status: "completed", duration_ms: 1234, tests: { passed: 6, failed: 0, errors: 0 } };
  assert.equal(describeDone(done).text, "Completed in 1.2 s — 6 of 6 checks passed");
  assert.equal(tone(done), "good");
});

test("a check with failures is completed but not good", () => {
  const done = { status: "completed", duration_ms: 900, tests: { passed: 4, failed: 1, errors: 1 } };
  assert.equal(describeDone(done).text, "Completed in 0.9 s — 4 of 6 checks passed");
  assert.equal(tone(done), "bad");
});

test("a plain run has no checks in its sentence", () => {
  assert.equal(describeDone({ status: "completed", duration_ms: 42000 }).text, "Completed in 42 s");
});

test("an exception names its type, the learner's line and its message", () => {
  const done = {
    status: "error",
    duration_ms: 10,
    error: { type: "ValueError", message: "bad shape", line: 12 },
  };
  assert.deepEqual(describeDone(done), {
    text: "Your code raised ValueError on line 12: bad shape",
    line: 12,
  });
});

test("an exit without an exception names the exit code", () => {
  assert.equal(describeDone({ status: "error", exit_code: 3 }).text, "Your code exited with code 3");
});

test("limits show the runner's message, or a default", () => {
  const message = "Stopped after 60 s: the time limit for this lesson.";
  assert.equal(describeDone({ status: "timeout", error: { type: "Timeout", message } }).text, message);
  assert.match(describeDone({ status: "memory_limit" }).text, /memory/);
  assert.match(describeDone({ status: "output_limit" }).text, /output/);
});

test("an internal error shows the server's sentence as it is", () => {
  const message = "The runner stopped unexpectedly. Your code is saved: press Run to try again.";
  const done = { status: "internal_error", error: { type: "RunnerError", message } };
  assert.equal(describeDone(done).text, message);
  assert.equal(tone(done), "bad");
  assert.equal(tone({ status: "cancelled" }), "neutral");
});

test("an internal error without a message still says the code is saved", () => {
  const text = describeDone({ status: "internal_error" }).text;
  assert.equal(text, INTERNAL_ERROR_DEFAULT);
  assert.match(text, /Your code is saved/);
  assert.doesNotMatch(text, /internal_error/);
});

test("a run superseded by a newer one says so", () => {
  const message = "Stopped because you started a newer run.";
  const done = { status: "cancelled", error: { type: "Superseded", message } };
  assert.equal(describeDone(done).text, message);
  assert.equal(describeDone({ status: "cancelled" }).text, "Stopped: you cancelled the run.");
});

test("the solution opens after a check with test counts, as the server allows it", () => {
  const failed = { status: "completed", tests: { passed: 1, failed: 2, errors: 0 } };
  const passed = { status: "completed", tests: { passed: 3, failed: 0, errors: 0 } };
  assert.equal(opensSolution(failed, "check"), true);
  assert.equal(opensSolution(passed, "check"), true);
  // Stopped, timed out or crashed before the checks ran: the server counts nothing.
  assert.equal(opensSolution({ status: "cancelled" }, "check"), false);
  assert.equal(opensSolution({ status: "timeout", error: { message: "too long" } }, "check"), false);
  assert.equal(opensSolution({ status: "internal_error" }, "check"), false);
  assert.equal(opensSolution(failed, "run"), false);
});
