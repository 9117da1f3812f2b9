// Draggable splitters: `[data-splitter]` between two panes sets a CSS variable on its parent
// (the first pane's share, 0..1), remembered in localStorage. Arrow keys move it too.

const STEP = 0.02;

function load(key, fallback) {
  try {
    const value = parseFloat(localStorage.getItem(key));
    return Number.isFinite(value) ? value : fallback;
  } catch {
    return fallback; // storage disabled
  }
}

function save(key, value) {
  try {
    localStorage.setItem(key, value.toFixed(4));
  } catch {
    /* storage disabled or full: the split just is not remembered */
  }
}

/**
 * <div data-splitter="lesson" data-axis="x" data-var="--split-lesson"
 *      data-min="0.2" data-max="0.75" data-default="0.45">
 */
export function initSplitter(handle) {
  const container = handle.parentElement;
  const axis = handle.dataset.axis === "y" ? "y" : "x";
  const variable = handle.dataset.var;
  const min = parseFloat(handle.dataset.min || "0.15");
  const max = parseFloat(handle.dataset.max || "0.85");
  const fallback = parseFloat(handle.dataset.default || "0.5");
  const key = `torchdojo:split:${handle.dataset.splitter}`;

  const apply = (fraction, remember) => {
    const value = Math.min(max, Math.max(min, fraction));
    container.style.setProperty(variable, String(value));
    handle.setAttribute("aria-valuenow", String(Math.round(value * 100)));
    if (remember) save(key, value);
    window.dispatchEvent(new Event("torchdojo:layout"));
    return value;
  };

  let current = apply(load(key, fallback), false);
  handle.setAttribute("role", "separator");
  handle.setAttribute("aria-orientation", axis === "x" ? "vertical" : "horizontal");
  handle.setAttribute("aria-valuemin", String(Math.round(min * 100)));
  handle.setAttribute("aria-valuemax", String(Math.round(max * 100)));
  handle.tabIndex = 0;

  const fractionAt = (event) => {
    const box = container.getBoundingClientRect();
    return axis === "x"
      ? (event.clientX - box.left) / box.width
      : (event.clientY - box.top) / box.height;
  };

  handle.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    event.preventDefault();
    handle.setPointerCapture(event.pointerId);
    document.body.classList.add(`is-resizing-${axis}`);
    const move = (e) => {
      current = apply(fractionAt(e), false);
    };
    const up = () => {
      handle.removeEventListener("pointermove", move);
      handle.removeEventListener("pointerup", up);
      handle.removeEventListener("pointercancel", up);
      document.body.classList.remove(`is-resizing-${axis}`);
      current = apply(current, true);
    };
    handle.addEventListener("pointermove", move);
    handle.addEventListener("pointerup", up);
    handle.addEventListener("pointercancel", up);
  });

  handle.addEventListener("dblclick", () => {
    current = apply(fallback, true);
  });

  handle.addEventListener("keydown", (event) => {
    const back = axis === "x" ? "ArrowLeft" : "ArrowUp";
    const forward = axis === "x" ? "ArrowRight" : "ArrowDown";
    if (event.key === back) current = apply(current - STEP, true);
    else if (event.key === forward) current = apply(current + STEP, true);
    else if (event.key === "Home") current = apply(min, true);
    else if (event.key === "End") current = apply(max, true);
    else return;
    event.preventDefault();
  });
}
