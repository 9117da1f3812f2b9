// The code editor: CodeMirror 6 mounted over the form's <textarea name="code">, kept in sync
// with it both ways, so the form still posts the code and tests can read or set it there.
import { indentWithTab } from "@codemirror/commands";
import { python } from "@codemirror/lang-python";
import { HighlightStyle, indentUnit, syntaxHighlighting } from "@codemirror/language";
import { EditorState, Prec, RangeSetBuilder, StateEffect, StateField } from "@codemirror/state";
import { Decoration, EditorView, GutterMarker, ViewPlugin, gutter, keymap } from "@codemirror/view";
import { tags as t } from "@lezer/highlight";
import { basicSetup } from "codemirror";

// The numbered TODOs of an exercise ("# TODO 3: ..."), not prose that mentions TODOs.
const TODO = /\bTODO\s+\d+/;

const todoLine = Decoration.line({ class: "cm-todo-line" });

/** A class on every visible line that contains TODO. */
const todoLines = ViewPlugin.fromClass(
  class {
    constructor(view) {
      this.decorations = this.build(view);
    }
    update(update) {
      if (update.docChanged || update.viewportChanged) this.decorations = this.build(update.view);
    }
    build(view) {
      const builder = new RangeSetBuilder();
      for (const { from, to } of view.visibleRanges) {
        for (let pos = from; pos <= to; ) {
          const line = view.state.doc.lineAt(pos);
          if (TODO.test(line.text)) builder.add(line.from, line.from, todoLine);
          pos = line.to + 1;
        }
      }
      return builder.finish();
    }
  },
  { decorations: (plugin) => plugin.decorations },
);

class TodoMarker extends GutterMarker {
  toDOM() {
    const mark = document.createElement("span");
    mark.className = "cm-todo-marker";
    mark.title = "TODO: your turn";
    mark.textContent = "●";
    return mark;
  }
}
const todoMarker = new TodoMarker();

/** A gutter dot beside each TODO line, so they are easy to find while scrolling. */
const todoGutter = gutter({
  class: "cm-todo-gutter",
  lineMarker(view, line) {
    return TODO.test(view.state.doc.sliceString(line.from, line.to)) ? todoMarker : null;
  },
  lineMarkerChange: (update) => update.docChanged,
  initialSpacer: () => todoMarker,
});

/** The line the last run's error points at; cleared as soon as the code changes. */
const setErrorLine = StateEffect.define();
const errorLineField = StateField.define({
  create: () => Decoration.none,
  update(value, transaction) {
    let next = transaction.docChanged ? Decoration.none : value.map(transaction.changes);
    for (const effect of transaction.effects) {
      if (!effect.is(setErrorLine)) continue;
      const number = effect.value;
      const doc = transaction.state.doc;
      next =
        number && number >= 1 && number <= doc.lines
          ? Decoration.set([Decoration.line({ class: "cm-error-line" }).range(doc.line(number).from)])
          : Decoration.none;
    }
    return next;
  },
  provide: (field) => EditorView.decorations.from(field),
});

/** The same palette as the lesson's highlighted code (static/css/pygments.css). */
const highlightStyle = HighlightStyle.define([
  { tag: [t.keyword, t.controlKeyword, t.definitionKeyword, t.moduleKeyword, t.operatorKeyword], color: "#a626a4" },
  { tag: t.comment, color: "#6a737d", fontStyle: "italic" },
  { tag: [t.string, t.special(t.string)], color: "#2a7a2a" },
  { tag: t.escape, color: "#0e7c86" },
  { tag: [t.number, t.bool, t.null], color: "#b35900" },
  { tag: t.function(t.definition(t.variableName)), color: "#0550ae" },
  { tag: t.definition(t.className), color: "#b35900", fontWeight: "600" },
  { tag: t.meta, color: "#b35900" },
  { tag: t.modifier, color: "#a626a4" },
  { tag: t.invalid, color: "#b31d28" },
]);

const theme = EditorView.theme({
  "&": { height: "100%", fontSize: "14px", backgroundColor: "var(--editor-bg)" },
  ".cm-scroller": { fontFamily: "var(--font-mono)", lineHeight: "1.55" },
  ".cm-gutters": { backgroundColor: "var(--editor-gutter)", borderRight: "1px solid var(--border)" },
  ".cm-content": { paddingBottom: "40vh" },
});

/**
 * Mounts the editor in `parent` from `textarea`, which stays in the form (hidden) and in sync.
 * Returns {view, getCode, setCode, focus, markErrorLine, goToLine}.
 */
export function mountEditor({ textarea, parent, onRun, onCheck, onChange }) {
  let written = textarea.value; // what we last put in the textarea ourselves

  const runKeys = Prec.highest(
    keymap.of([
      { key: "Mod-Enter", run: () => (onRun?.(), true) },
      { key: "Shift-Mod-Enter", run: () => (onCheck?.(), true) },
    ]),
  );

  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc: textarea.value,
      extensions: [
        runKeys,
        basicSetup,
        keymap.of([indentWithTab]),
        indentUnit.of("    "),
        python(),
        syntaxHighlighting(highlightStyle),
        todoGutter,
        todoLines,
        errorLineField,
        theme,
        EditorView.contentAttributes.of({ "aria-label": "Code editor" }),
        EditorView.updateListener.of((update) => {
          if (!update.docChanged) return;
          written = update.state.doc.toString();
          textarea.value = written;
          onChange?.(written);
        }),
      ],
    }),
  });

  function setCode(code) {
    const text = String(code ?? "");
    if (text === view.state.doc.toString()) return;
    view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
  }

  /** The code, adopting the textarea's value first if something set it behind our back. */
  function getCode() {
    if (textarea.value !== written) setCode(textarea.value);
    return view.state.doc.toString();
  }

  const adopt = () => {
    if (textarea.value !== view.state.doc.toString()) setCode(textarea.value);
  };
  textarea.addEventListener("input", adopt);
  textarea.addEventListener("change", adopt);

  // The textarea stays in the form, focusable only by scripts: people use the editor.
  textarea.classList.add("editor-source");
  textarea.setAttribute("tabindex", "-1");
  textarea.setAttribute("aria-hidden", "true");
  parent.classList.add("editor-mounted");

  function markErrorLine(line) {
    view.dispatch({ effects: setErrorLine.of(line || null) });
  }

  function goToLine(number) {
    const doc = view.state.doc;
    if (!number || number < 1 || number > doc.lines) return;
    const line = doc.line(number);
    view.dispatch({ selection: { anchor: line.from }, scrollIntoView: true });
    view.focus();
  }

  return { view, getCode, setCode, focus: () => view.focus(), markErrorLine, goToLine };
}

/** A read-only, highlighted view of some code (the solution). */
export function mountCodeViewer(parent, code) {
  return new EditorView({
    parent,
    state: EditorState.create({
      doc: code,
      extensions: [
        basicSetup,
        python(),
        syntaxHighlighting(highlightStyle),
        theme,
        EditorState.readOnly.of(true),
        EditorView.editable.of(false),
      ],
    }),
  });
}
