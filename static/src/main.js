// Entry point: wires the page's behaviours. Every page works without it; this only enhances.
import "uplot/dist/uPlot.min.css";
import "katex/dist/katex.min.css";

import { ConsolePanel } from "./console.js";
import { initDashboard } from "./dashboard.js";
import { DraftSaver, forgetAllUnsaved } from "./drafts.js";
import { mountEditor } from "./editor.js";
import { initHints } from "./hints.js";
import { LossChart } from "./loss-chart.js";
import { renderMath } from "./math.js";
import { ModelPanel } from "./model-panel.js";
import { initPreview } from "./preview.js";
import { RunController } from "./run.js";
import { initReset, initSolution } from "./solution.js";
import { initSplitter } from "./splitter.js";
import { RunStatus, opensSolution } from "./status.js";
import { Tabs } from "./tabs.js";
import { TestsPanel } from "./tests-panel.js";

function readJson(id) {
  const element = document.getElementById(id);
  if (!element) return null;
  try {
    return JSON.parse(element.textContent);
  } catch {
    return null;
  }
}

function initLessonPage(form) {
  const $ = (selector) => form.querySelector(selector) || document.querySelector(selector);
  const lessonKey = form.dataset.lessonKey;
  const [course, lesson] = lessonKey.split("/");
  const textarea = $("textarea[name=code]");
  const buttons = { run: $("#run"), check: $("#check"), stop: $("#stop") };
  for (const button of form.querySelectorAll("[data-js-only]")) button.hidden = false;

  let runs = null;
  let drafts = null;
  const editor = mountEditor({
    textarea,
    parent: $("#editor"),
    onRun: () => runs.start("run"),
    onCheck: () => runs.start("check"),
    onChange: () => drafts?.changed(),
  });

  const tabs = new Tabs($(".output-tabs"), {
    // uPlot measures its box: redraw when the Loss tab becomes visible.
    onShow: (name) => name === "loss" && loss?.resize(),
  });
  const loss = new LossChart($("#loss-chart"));
  const panels = {
    console: new ConsolePanel($("#console")),
    tests: new TestsPanel($("#tests")),
    model: new ModelPanel($("#model-summary")),
    loss,
  };
  const status = new RunStatus($("[data-run-status]"), { onLineClick: editor.goToLine });

  const solutionButton = $("#solution");
  const solution =
    solutionButton &&
    initSolution({
      button: solutionButton,
      dialog: $("#solution-dialog"),
      url: `/api/lessons/${encodeURIComponent(course)}/${encodeURIComponent(lesson)}/solution`,
      editor,
    });
  const resetButton = $("#reset");
  if (resetButton) initReset({ button: resetButton, starter: readJson("starter-code") ?? "", editor });

  runs = new RunController({
    lessonKey,
    getCode: editor.getCode,
    panels,
    tabs,
    status,
    buttons,
    markErrorLine: editor.markErrorLine,
    onFinished(done, mode) {
      if (opensSolution(done, mode)) solution?.enable();
    },
  });

  // Run/Check submit the form without JavaScript; with it, they start a streamed run.
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const mode = event.submitter && event.submitter.value === "check" ? "check" : "run";
    runs.start(mode);
  });
  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
    event.preventDefault();
    runs.start(event.shiftKey ? "check" : "run");
  });

  const indicator = $("#save-state");
  if (indicator) {
    drafts = new DraftSaver({
      url: `/api/drafts/${encodeURIComponent(course)}/${encodeURIComponent(lesson)}`,
      lessonKey,
      userId: document.querySelector('meta[name="user-id"]')?.getAttribute("content") || "",
      getCode: editor.getCode,
      indicator,
      initialCode: editor.getCode(),
    });
    // After a form post the page shows the posted code: that is newer than any local copy.
    if (!document.getElementById("run-events")) drafts.restore(editor.setCode);
    else drafts.forgetLocal();
  }

  const hintBox = $("#hints");
  const hintButton = $("#show-hint");
  if (hintBox && hintButton) initHints({ box: hintBox, button: hintButton, lessonKey });

  // Panels start empty, or show the run the server rendered after a form post, or follow the
  // learner's run that is still going (the page was reloaded during it).
  const events = readJson("run-events");
  const activeRun = readJson("active-run");
  if (Array.isArray(events) && events.length) runs.replay(events);
  else if (activeRun && activeRun.id) runs.attach(activeRun);
  else for (const panel of Object.values(panels)) panel.reset();

  window.torchdojo = { editor, runs, panels, tabs, drafts };
}

/**
 * Signing out: the code still unsaved is saved to its owner's account first (briefly waited
 * for), then every unsaved copy in this browser is forgotten, so the next person to sign in
 * here never gets it.
 */
function initSignOut(form) {
  let leaving = false;
  form.addEventListener("submit", async (event) => {
    if (leaving) return;
    event.preventDefault();
    leaving = true;
    const drafts = window.torchdojo?.drafts;
    if (drafts) await drafts.signingOut();
    forgetAllUnsaved();
    form.submit(); // does not fire submit again
  });
}

function init() {
  document.documentElement.classList.remove("no-js");
  document.documentElement.classList.add("js");
  for (const handle of document.querySelectorAll("[data-splitter]")) initSplitter(handle);
  for (const form of document.querySelectorAll("form[data-sign-out]")) initSignOut(form);
  const form = document.querySelector("form#workspace");
  if (form) initLessonPage(form);
  const dashboard = document.getElementById("dashboard");
  if (dashboard) initDashboard(dashboard, document.getElementById("dashboard-live"));
  const preview = document.getElementById("preview");
  if (preview) initPreview(preview, document.getElementById("preview-live"));
  renderMath(document.getElementById("lesson") || document);
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
else init();
