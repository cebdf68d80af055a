"""Text from the request, made safe to show in a card: the one place it happens.

Anything a card copies from the request (a medication's or a condition's name, a unit, a
result's text value, a resource id) is *data*, never markup. A card's ``detail`` is Markdown and
an EHR may render it with raw HTML enabled (the public sandbox does), and a ``summary`` or a
suggestion label may be put into a page as HTML. So ``request_text``:

- folds the text to one line: every line break, tab or other white space becomes one space;
  control and invisible format characters (bidirectional overrides, zero-width characters, lone
  surrogates) are removed;
- cuts it to ``MAX_CHARS`` visible characters (an ellipsis marks the cut), so a 200 KB name
  cannot make a 200 KB card;
- escapes it: ``&``, ``<`` and ``>`` become HTML character references (so no tag, comment or
  angle-bracket autolink can start); the Markdown metacharacters that can make a link, an
  image, emphasis, code or a table cell (``\\ ` * _ | ~``) get a backslash, and so does a
  bracket that could open or close a link (``](``, ``][``, ``]:``, a ``]`` at the end or a
  ``[`` at the start: "[Mass/volume]" in a LOINC name stays as it is); a colon between a
  letter and a non-space (``https:``, ``javascript:``), ``www.`` and ``@`` get one too (no
  GitHub autolink), and so does a heading or list marker at the start (``#``, ``-``, ``1.``).

Ordinary names stay as they are: letters, digits, spaces and ``. , - / ( ) % + '`` are never
touched, so "Folic acid 5 mg tablets (Synthetic)" reads the same in every card.

``resource_ref`` names a resource by ``Type/id``; an id outside the FHIR id pattern
(``[A-Za-z0-9\\-.]{1,64}``) is shown as "(invalid id)".

The result is already escaped: apply it once, where the request becomes a fact or a value
becomes words, and print it as it is (escaping twice shows the backslashes).
"""

from __future__ import annotations

import re
import string
import unicodedata

#: At most this many characters of request text in a card (clinical rules, section 4).
MAX_CHARS = 80
ELLIPSIS = "\u2026"
INVALID_ID = "(invalid id)"

#: The characters of a FHIR id (``[A-Za-z0-9\-.]{1,64}``).
_FHIR_ID_CHARS = string.ascii_letters + string.digits + "-."
_RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]{0,63}")
#: Text that needs no work: short, one line, nothing a renderer reads as markup.
_PLAIN = re.compile(r"[A-Za-z0-9 .,/()%'=+-]{0,80}")
_CHARACTERS = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", **{c: "\\" + c for c in "\\`*_|~@"}}
)
_BRACKET = re.compile(r"\](?=[(\[:]|$)|^\[|\[(?=\^)")
_INVISIBLE = frozenset(("Cc", "Cf", "Cs", "Co", "Cn"))
_SCHEME_COLON = re.compile(r"(?<=[A-Za-z]):(?=\S)")
_WWW = re.compile(r"(?i)(?<![A-Za-z0-9])(www)\.")
_LINE_START = re.compile(r"^(?:[-+=#]|\d+[.)])")
_LIST_NUMBER = re.compile(r"^(\d+)([.)])")


def _visible(text: str, limit: int) -> str:
    """One line of at most ``limit`` visible characters (an ellipsis marks a cut)."""
    if text.isprintable():  # no control, format or separator character but " ": the C path
        head = text[: 4 * limit]  # enough for ``limit`` characters unless it is mostly spaces
        folded = " ".join(head.split())
        if len(folded) <= limit and len(head) < len(text):
            folded = " ".join(text.split())
    else:
        kept: list[str] = []
        pending_space = False
        for char in text:
            if char.isspace():
                pending_space = bool(kept)
                continue
            if unicodedata.category(char) in _INVISIBLE:
                continue
            if pending_space:
                kept.append(" ")
                pending_space = False
            kept.append(char)
            if len(kept) > limit:  # read no further than needed (a 200 KB name)
                break
        folded = "".join(kept)
    if len(folded) > limit:
        return folded[: limit - 1].rstrip() + ELLIPSIS
    return folded


def _escape(text: str) -> str:
    escaped = text.translate(_CHARACTERS)
    # "](url)", "][ref]", "]: definition", or a "]" the card's own "(" could follow; "[" that
    # could start a definition or a footnote.
    escaped = _BRACKET.sub(lambda m: "\\" + m[0], escaped)
    escaped = _SCHEME_COLON.sub(r"\\:", escaped)
    escaped = _WWW.sub(r"\1\\.", escaped)
    if _LIST_NUMBER.match(escaped):
        escaped = _LIST_NUMBER.sub(r"\1\\\2", escaped, count=1)  # "1\. ": no ordered list
    elif _LINE_START.match(escaped):
        escaped = "\\" + escaped  # "\- ", "\# ": no bullet, no heading
    return escaped


def request_text(value: object, limit: int = MAX_CHARS) -> str:
    """``value`` (text copied from the request) as a card may show it: one line, at most
    ``limit`` characters, Markdown and HTML metacharacters escaped. Not a string: ""."""
    if not isinstance(value, str):
        return ""
    if _PLAIN.fullmatch(value) and "  " not in value:
        plain = value.strip()
        if not _LINE_START.match(plain):
            return plain
    return _escape(_visible(value, limit))


def is_fhir_id(value: object) -> bool:
    # The id pattern without the regex engine (every resource read is named by its id):
    # 1-64 characters, and nothing left once the id characters are stripped from both ends.
    return isinstance(value, str) and 0 < len(value) <= 64 and not value.strip(_FHIR_ID_CHARS)


def safe_id(value: object) -> str:
    """A resource id as a card may show it: itself when it is a FHIR id, else "(invalid id)"."""
    return value if is_fhir_id(value) else INVALID_ID  # type: ignore[return-value]


def resource_ref(resource_type: object, resource_id: object) -> str:
    """ "Observation/abc"; "Observation/(invalid id)" when the id is not a FHIR id."""
    kind = resource_type if isinstance(resource_type, str) else ""
    if not _RESOURCE_TYPE.fullmatch(kind):
        kind = "Resource"
    return f"{kind}/{safe_id(resource_id)}"
