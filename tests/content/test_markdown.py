"""Lesson Markdown renders to the HTML the lesson page styles."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from app.markdown import render_markdown
from tests.support.content import ROOT

# The stylesheet the lesson page links (templates/base.html): hand-written, in the editor's
# palette, so a token class the renderer emits could go unstyled without this test.
PAGE_CSS = ROOT / "static" / "css" / "pygments.css"


class Elements(HTMLParser):
    """Every start tag as (tag, attributes), in document order."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def with_class(self, name: str) -> list[tuple[str, dict[str, str | None]]]:
        return [(t, a) for t, a in self.tags if name in (a.get("class") or "").split()]


def test_tip_callout_has_its_title_and_body_inside_an_aside() -> None:
    html = render_markdown("::: tip 💡 Learning Tip\nStart **small**.\n:::\n")
    assert html == (
        '<aside class="callout callout-tip">\n'
        '<p class="callout-title">💡 Learning Tip</p>\n'
        "<p>Start <strong>small</strong>.</p>\n"
        "</aside>\n"
    )


def test_note_and_warning_callouts_default_their_title() -> None:
    html = render_markdown("::: note\nA.\n:::\n\n::: warning\nB.\n:::\n")
    assert '<aside class="callout callout-note">\n<p class="callout-title">Note</p>' in html
    assert '<aside class="callout callout-warning">\n<p class="callout-title">Warning</p>' in html


def test_unknown_callout_kind_stays_text() -> None:
    html = render_markdown("::: danger\nA.\n:::\n")
    assert "<aside" not in html and "::: danger" in html


def test_python_code_is_highlighted_with_classes_not_styles() -> None:
    html = render_markdown("```python\nimport torch  # tensors\n```\n")
    assert html.startswith('<pre class="highlight"><code class="language-python">')
    assert '<span class="kn">import</span>' in html
    assert '<span class="c1"># tensors</span>' in html
    assert "style=" not in html


def _styled_classes() -> set[str]:
    assert "css/pygments.css" in (ROOT / "templates" / "base.html").read_text()
    return set(re.findall(r"\.highlight \.([\w-]+)", PAGE_CSS.read_text()))


def test_every_token_class_in_the_course_code_has_a_style_on_the_page() -> None:
    """The seed lesson's code (and every lesson's), highlighted as the renderer does it: each
    Pygments class it emits has a rule in the CSS the page serves."""
    code = sorted(Path(ROOT / "content").rglob("*.py"))
    assert any(path.parent.name.startswith("01-") for path in code)
    emitted: set[str] = set()
    for path in code:
        html = render_markdown(f"```python\n{path.read_text()}\n```\n")
        emitted |= set(re.findall(r'<span class="([\w-]+)">', html))
    assert {"kn", "nn", "c1", "nf", "nc", "s2", "mi"} <= emitted  # the code was highlighted
    unstyled = emitted - _styled_classes()
    assert not unstyled, f"add rules for .highlight .{unstyled} to {PAGE_CSS.name}"


def test_code_without_a_language_is_escaped_plain_text() -> None:
    html = render_markdown("```\nx = a < b\n```\n")
    assert html == '<pre class="highlight"><code>x = a &lt; b\n</code></pre>\n'


def test_tables_render_with_head_and_body() -> None:
    html = render_markdown("| Layer | Params |\n|---|--:|\n| Linear | 650 |\n")
    tags = [tag for tag, _ in Elements(html).tags]
    assert tags == ["table", "thead", "tr", "th", "th", "tbody", "tr", "td", "td"]
    assert '<td style="text-align:right">650</td>' in html


def test_math_is_delimited_for_katex_auto_render() -> None:
    html = render_markdown("The loss $L = -\\log p_y$ falls.\n\n$$\n\\sigma(x) < 1\n$$\n")
    assert '<span class="math inline">\\(L = -\\log p_y\\)</span>' in html
    assert '<div class="math block">\n\\[\\sigma(x) &lt; 1\\]\n</div>' in html


def test_dollar_amounts_are_not_math() -> None:
    assert "math" not in render_markdown("A GPU costs $5 to $10 an hour.\n")


def test_h2_and_h3_get_anchors_and_permalinks_h1_does_not() -> None:
    html = render_markdown("# Top\n\n## Deep Learning vs. Traditional ML\n\n### Key parts\n")
    assert "<h1>Top</h1>" in html
    assert re.search(
        r'<h2 id="deep-learning-vs-traditional-ml">Deep Learning vs. Traditional ML '
        r'<a class="header-anchor" href="#deep-learning-vs-traditional-ml">¶</a></h2>',
        html,
    )
    assert [a["id"] for t, a in Elements(html).tags if t == "h3"] == ["key-parts"]


def test_raw_html_is_escaped() -> None:
    html = render_markdown("<script>alert(1)</script>\n\nHi <b>there</b>\n")
    assert "<script>" not in html and "<b>" not in html
    assert "&lt;script&gt;" in html
