// Lesson math: `.math.inline` / `.math.block` elements hold \(…\) / \[…\] TeX; KaTeX (loaded
// only on pages that have math) renders them.

export async function renderMath(root = document) {
  const elements = [...root.querySelectorAll(".math.inline, .math.block")];
  if (!elements.length) return;
  const { default: katex } = await import("katex");
  for (const element of elements) {
    const display = element.classList.contains("block");
    const tex = element.textContent
      .trim()
      .replace(/^\\[([]/, "")
      .replace(/\\[)\]]$/, "");
    try {
      katex.render(tex, element, { displayMode: display, throwOnError: false });
    } catch {
      /* leave the TeX source readable */
    }
  }
}
