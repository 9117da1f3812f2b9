// "Show solution" (enabled after a failed check) and "Reset to starter".
import { request } from "./api.js";
import { mountCodeViewer } from "./editor.js";

export function initSolution({ button, dialog, url, editor }) {
  const body = dialog.querySelector(".dialog-body");
  const use = dialog.querySelector("[data-action=use]");
  let code = null;
  let viewer = null;

  button.addEventListener("click", async () => {
    if (button.disabled) return;
    const sure = window.confirm(
      "Show the reference solution?\n\nTry the hints first: working it out yourself is what makes it stick.",
    );
    if (!sure) return;
    button.disabled = true;
    const answer = await request(url);
    button.disabled = false;
    viewer?.destroy();
    viewer = null;
    body.replaceChildren();
    if (answer.ok && answer.data && typeof answer.data.code === "string") {
      code = answer.data.code;
      viewer = mountCodeViewer(body, code);
      use.hidden = false;
    } else {
      code = null;
      const message = document.createElement("p");
      message.className = "dialog-error";
      message.textContent = answer.detail || "The solution is not available.";
      body.append(message);
      use.hidden = true;
    }
    dialog.showModal();
  });

  use.addEventListener("click", () => {
    if (code == null) return;
    editor.setCode(code);
    dialog.close();
    editor.focus();
  });
  for (const close of dialog.querySelectorAll("[data-action=close]")) {
    close.addEventListener("click", () => dialog.close());
  }
  // A click on the backdrop (outside the dialog box) closes it.
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) dialog.close();
  });

  return {
    enable() {
      button.disabled = false;
      button.title = "";
    },
  };
}

export function initReset({ button, starter, editor }) {
  button.addEventListener("click", () => {
    const sure = window.confirm(
      "Reset the code to the starter?\n\nYour changes are replaced (Ctrl+Z in the editor undoes this).",
    );
    if (!sure) return;
    editor.setCode(starter);
    editor.focus();
  });
}
