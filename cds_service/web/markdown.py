"""Card Markdown -> safe HTML for the home page (markdown-it-py's one home).

Card ``detail`` is GitHub Flavored Markdown (CDS Hooks 2.0, "Card Attributes"). On the home
page it may come from any JSON the browser posts, so it is treated as hostile: raw HTML is
never passed through (``html`` off: ``<script>`` and ``onerror=`` come out as text), images are
off (no request leaves the page), and links must be absolute http(s) URLs (``javascript:``,
``data:``, relative and protocol-relative links stay plain text).
"""

from __future__ import annotations

from markdown_it import MarkdownIt
from markupsafe import Markup

_SAFE_SCHEMES = ("http://", "https://")


def _valid_link(url: str) -> bool:
    # markdown-it has already normalised the URL (entities decoded, percent-encoded), so
    # "jav&#97;script:" and " javascript:" arrive here as what a browser would follow.
    return url.strip().lower().startswith(_SAFE_SCHEMES)


class _CardMarkdown(MarkdownIt):
    def validateLink(self, url: str) -> bool:  # noqa: N802 (markdown-it's name)
        return _valid_link(url)


def _parser() -> MarkdownIt:
    md = _CardMarkdown("commonmark", {"html": False, "breaks": True, "linkify": False})
    md.enable(["table", "strikethrough"])
    md.disable(["image", "html_block", "html_inline"])

    def link_open(renderer, tokens, idx, options, env):
        # A card link leaves the page: never give the target a handle on it (window.opener).
        tokens[idx].attrSet("rel", "noopener noreferrer")
        tokens[idx].attrSet("target", "_blank")
        return renderer.renderToken(tokens, idx, options, env)

    md.add_render_rule("link_open", link_open)
    return md


_MD = _parser()


def render_markdown(text: object) -> Markup:
    """HTML for a card's Markdown; anything that is not a string renders as nothing."""
    if not isinstance(text, str) or not text.strip():
        return Markup("")
    return Markup(_MD.render(text))


def safe_url(url: object) -> str | None:
    """An absolute http(s) URL as given, or None: for hrefs built outside Markdown (card
    sources, links)."""
    if isinstance(url, str) and _valid_link(url) and not any(c.isspace() for c in url.strip()):
        return url.strip()
    return None
