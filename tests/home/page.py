"""Reading the home page in tests: its elements and attributes (stdlib html.parser), and its
text as a reader sees it."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag


class Page:
    def __init__(self, source: str) -> None:
        self.source = source
        collector = _Collector()
        collector.feed(source)
        self.elements = collector.elements

    def find(self, tag: str | None = None, **attrs: str) -> list[dict[str, str | None]]:
        """Elements by tag and exact attribute values (``class_`` for class)."""
        wanted = {k.rstrip("_").replace("_", "-"): v for k, v in attrs.items()}
        return [
            a
            for t, a in self.elements
            if (tag is None or t == tag) and all(a.get(k) == v for k, v in wanted.items())
        ]

    def by_id(self, element_id: str) -> dict[str, str | None]:
        found = self.find(id=element_id)
        assert len(found) == 1, f"{len(found)} elements with id {element_id!r}"
        return found[0]

    def has_id(self, element_id: str) -> bool:
        return bool(self.find(id=element_id))

    @property
    def text(self) -> str:
        """The words on the page, tags removed, entities decoded, whitespace collapsed."""
        body = re.sub(r"<(script|style)\b.*?</\1>", " ", self.source, flags=re.S)
        return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body))).strip()
