"""The Markdown of a card's detail, built in one place.

Every card reads the same way: paragraphs separated by one blank line, evidence as bullets,
and a closing "Source:" line naming the guidelines. Rules add the parts that apply and leave
out the rest; optional parts may leave blank lines behind, so the text keeps at most one blank
line between paragraphs. Text that came from a request must already be made safe
(``safetext``) before it is added: the builder only arranges it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from .sources import Source

_BLANK_RUNS = re.compile(r"\n{3,}")


def squeeze(text: str) -> str:
    """At most one blank line between paragraphs."""
    return _BLANK_RUNS.sub("\n\n", text) if "\n\n\n" in text else text


def bullet(text: str) -> str:
    return f"- {text}"


def join_words(words: Sequence[str]) -> str:
    """ "a", "a and b", "a, b and c" (no serial comma, as the cards write lists)."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def source_line(*sources: Source | str) -> str:
    """ "Source: NICE NG239 (2024): ...; AAFP 2025: ..." from sources (or a plain citation)."""
    labels = [s.label if isinstance(s, Source) else s for s in sources]
    return f"Source: {'; '.join(labels)}."


class CardText:
    """A card detail, line by line: ``CardText().heading("X").bullets(items).source(NICE)``.

    Each method returns the builder, so a rule reads as the card does, top to bottom.
    """

    def __init__(self, *lines: str) -> None:
        self._lines: list[str] = list(lines)

    def line(self, *lines: str) -> CardText:
        """Lines as they are (a sentence, a bullet already made, or an empty string)."""
        self._lines.extend(lines)
        return self

    def lines(self, lines: Iterable[str]) -> CardText:
        self._lines.extend(lines)
        return self

    def blank(self) -> CardText:
        self._lines.append("")
        return self

    def paragraph(self, text: str | None) -> CardText:
        """``text`` and a blank line after it; nothing when ``text`` is empty or ``None``."""
        if text:
            self._lines += [text, ""]
        return self

    def heading(self, text: str) -> CardText:
        """A bold heading and the blank line after it."""
        self._lines += [f"**{text}**", ""]
        return self

    def bullets(self, items: Iterable[str]) -> CardText:
        self._lines.extend(bullet(item) for item in items)
        return self

    def source(self, *sources: Source | str, blank_before: bool = True) -> CardText:
        """The closing "Source:" line (after a blank line unless the text already ends in one)."""
        if blank_before:
            self._lines.append("")
        self._lines.append(source_line(*sources))
        return self

    def text(self) -> str:
        return squeeze("\n".join(self._lines))
