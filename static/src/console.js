// The Console tab: the learner's stdout and stderr in order, figures, and run notices.

const NEAR_BOTTOM_PX = 40;

export class ConsolePanel {
  /** @param {HTMLElement} element  #console */
  constructor(element) {
    this.element = element;
    this.last = null; // the <span> the latest output went into, merged while the stream repeats
  }

  reset() {
    this.element.replaceChildren();
    this.last = null;
    this.element.classList.add("is-empty");
  }

  get scroller() {
    return this.element.closest(".tab-panel") || this.element;
  }

  /** Runs `write`, then keeps the view pinned to the bottom if it was there before. */
  keepScrolled(write) {
    const box = this.scroller;
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < NEAR_BOTTOM_PX;
    this.element.classList.remove("is-empty");
    write();
    if (atBottom) box.scrollTop = box.scrollHeight;
  }

  output(stream, text) {
    this.keepScrolled(() => {
      if (this.last && this.last.dataset.stream === stream) {
        this.last.textContent += text;
        return;
      }
      const span = document.createElement("span");
      span.className = stream === "stderr" ? "console-stderr" : "console-stdout";
      span.dataset.stream = stream;
      span.textContent = text;
      this.element.append(span);
      this.last = span;
    });
  }

  figure(format, data) {
    this.keepScrolled(() => {
      const img = document.createElement("img");
      img.className = "console-figure";
      img.alt = "A figure your code drew";
      img.src = `data:${format === "svg" ? "image/svg+xml" : "image/png"};base64,${data}`;
      this.element.append(img);
      this.last = null;
    });
  }

  /** A line from torchdojo itself (not the learner's output), e.g. "Run started on cpu". */
  notice(text, kind = "info") {
    this.keepScrolled(() => {
      const line = document.createElement("div");
      line.className = `console-notice console-notice-${kind}`;
      line.textContent = text;
      this.element.append(line);
      this.last = null;
    });
  }
}
