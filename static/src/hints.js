// Hints: "Show a hint (n left)" reveals the exercise's hints one at a time; how many a learner
// has seen is remembered per lesson in localStorage.

export function initHints({ box, button, lessonKey }) {
  const hints = [...box.querySelectorAll(".hint")];
  const key = `torchdojo:hints:${lessonKey}`;
  let shown = 0;
  try {
    shown = Math.min(hints.length, parseInt(localStorage.getItem(key) || "0", 10) || 0);
  } catch {
    shown = 0;
  }
  const summary = box.querySelector(".hints-summary");

  const render = () => {
    hints.forEach((hint, i) => {
      hint.hidden = i >= shown;
    });
    box.hidden = shown === 0;
    const left = hints.length - shown;
    button.hidden = false;
    button.disabled = left === 0;
    button.textContent = left === 0 ? "No more hints" : `Show a hint (${left} left)`;
    if (summary) summary.textContent = `Hints (${shown} of ${hints.length})`;
  };

  button.addEventListener("click", () => {
    if (shown >= hints.length) return;
    shown += 1;
    try {
      localStorage.setItem(key, String(shown));
    } catch {
      /* not remembered: fine */
    }
    render();
    box.open = true;
    const latest = hints[shown - 1];
    if ("open" in latest) latest.open = true;
    latest.classList.add("is-new");
    setTimeout(() => latest.classList.remove("is-new"), 1500);
    latest.scrollIntoView({ block: "nearest", behavior: "smooth" });
  });

  render();
  if (shown > 0) box.open = false; // remembered hints stay folded until asked for
}
