"""Lesson Markdown to HTML: tables, highlighted code, callouts, heading anchors and math.

The HTML carries class names only (no inline styles), so the page's CSS decides the look:
``pre.highlight`` (Pygments token classes), ``aside.callout.callout-tip``, ``.math.inline`` and
``.math.block`` (``\\(…\\)`` / ``\\[…\\]`` delimiters for KaTeX auto-render), ``a.header-anchor``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from html import escape
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.anchors import anchors_plugin
from mdit_py_plugins.container import container_plugin
from mdit_py_plugins.dollarmath import dollarmath_plugin
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

CALLOUT_KINDS = ("tip", "note", "warning")

# nowrap: we write the <pre><code> ourselves so the language is on the <code> element.
_FORMATTER = HtmlFormatter(nowrap=True)


def _highlight_code(code: str, lang: str, _attrs: str) -> str:
    """A fenced block as ``<pre class="highlight"><code class="language-X">`` with token spans."""
    if not lang:
        return f'<pre class="highlight"><code>{escape(code)}</code></pre>'
    try:
        body = highlight(code, get_lexer_by_name(lang), _FORMATTER)
    except ClassNotFound:
        body = escape(code)  # an unknown language still shows, just without colours
    return f'<pre class="highlight"><code class="language-{escape(lang)}">{body}</code></pre>'


def _render_math(content: str, options: dict[str, Any]) -> str:
    # KaTeX auto-render looks for these delimiters; the content stays HTML-escaped.
    if options.get("display_mode"):
        return rf"\[{escape(content, quote=False)}\]"
    return rf"\({escape(content, quote=False)}\)"


def _callout_renderer(kind: str) -> Callable[..., str]:
    def render(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
        token = tokens[idx]
        if token.nesting == -1:
            return "</aside>\n"
        title = token.info.strip()[len(kind) :].strip() or kind.capitalize()
        title_html = _md().renderInline(title)
        return (
            f'<aside class="callout callout-{kind}">\n<p class="callout-title">{title_html}</p>\n'
        )

    return render


@cache
def _md() -> MarkdownIt:
    # html=False: lesson text cannot inject raw HTML or scripts into the page.
    md = MarkdownIt(
        "commonmark", {"html": False, "highlight": _highlight_code, "typographer": False}
    )
    md.enable("table")
    md.enable("strikethrough")
    for kind in CALLOUT_KINDS:
        container_plugin(md, kind, render=_callout_renderer(kind))
    md.use(anchors_plugin, min_level=2, max_level=3, permalink=True, permalinkSymbol="¶")
    md.use(dollarmath_plugin, allow_space=False, allow_digits=False, renderer=_render_math)
    return md


def render_markdown(text: str) -> str:
    """Lesson Markdown as HTML."""
    html: str = _md().render(text)
    return html
