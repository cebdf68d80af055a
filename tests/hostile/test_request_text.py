"""Text from the request is data (clinical rules, section 4): whatever a request puts in a name,
a unit, an id, a condition's text or a result's value, no card field carries a link, an image,
a heading or HTML that came from it, and a huge name gives a small card.

Each scenario of the corpus makes its rules fire; every text field the extraction reads is
filled with hostile text in turn, the service answers, and each card's text is checked as an
EHR could render it: as CommonMark with raw HTML enabled (what the public sandbox does), as
HTML, and as text (GitHub autolinks).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from cds_service.cdshooks.errors import InvalidRequest
from cds_service.domain.safetext import INVALID_ID, MAX_CHARS, request_text, resource_ref

from .corpus import MUTATIONS, SLUGS, invoke, mutated, rules_of, scenario
from .test_properties import deterministic

#: What an attacker would send: script, a phishing link, an image, a fake heading on its own
#: line, an angle-bracket autolink, GitHub autolinks, an HTML comment and entity tricks.
PAYLOAD = (
    "<img src=x onerror=alert(1)> [click](javascript:alert(1)) ![i](https://evil.example/i.png)"
    "\n# INJECTED\r\n<script>alert(2)</script> <https://evil.example> www.evil.example "
    "x@evil.example https://evil.example/p <!-- c --> &lt;b&gt; [r]: https://evil.example"
)
#: Marks the payload's words leave in a card only if it came through unescaped.
RAW_MARKS = ("<img", "<script", "<https", "<!--", "](javascript:", "](https:", "![i]")

#: What a card's Markdown may contain: the rules' own formatting, nothing else.
ALLOWED_TOKENS = {
    "paragraph_open",
    "paragraph_close",
    "bullet_list_open",
    "bullet_list_close",
    "list_item_open",
    "list_item_close",
    "inline",
    "text",
    "softbreak",
    "hardbreak",
    "strong_open",
    "strong_close",
    "em_open",
    "em_close",
    "text_special",
}
_SANDBOX_MARKDOWN = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
_TAG_START = re.compile(r"<[A-Za-z/!?]")
_AUTOLINK = re.compile(
    r"(?i)(?:\b(?:https?|ftp|javascript|data|vbscript|mailto|file):|(?<![\\\w])www\.)"
)
_EMAIL = re.compile(r"[\w.+-]@[\w-]")
#: Card fields that are machine values, not text a clinician reads.
_MACHINE = {"uuid", "system", "url", "code", "indicator", "selectionBehavior", "type", "resourceId"}


def card_texts(card: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, text) of every string a clinician may see; suggested resources included."""
    found: list[tuple[str, str]] = []

    def walk(value: Any, key: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        elif isinstance(value, str) and key not in _MACHINE:
            found.append((key, value))

    walk(card, "")
    return found


def tokens(markdown: str) -> set[str]:
    found = set()
    for token in _SANDBOX_MARKDOWN.parse(markdown):
        found.add(token.type)
        found.update(child.type for child in token.children or ())
    return found


def assert_no_markup_from_request(response: dict[str, Any]) -> None:
    for card in response["cards"]:
        for field, text in card_texts(card):
            where = f"{card['source']['topic']['code']}.{field}: {text[:300]!r}"
            unexpected = tokens(text) - ALLOWED_TOKENS
            assert not unexpected, f"{sorted(unexpected)} in {where}"
            assert not _TAG_START.search(text), f"HTML tag in {where}"
            assert not _AUTOLINK.search(text), f"autolink in {where}"
            assert not _EMAIL.search(text), f"e-mail autolink in {where}"
            for mark in RAW_MARKS:
                assert mark not in text, f"{mark!r} in {where}"
            if field != "detail":
                assert "\n" not in text, f"line break in {where}"
            for line in text.splitlines():
                assert not line.lstrip().startswith("#"), f"heading in {where}"


# --- the function ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    [
        "Folic acid 5 mg tablets (Synthetic)",
        "Hydroxocobalamin 1 MG/ML Injectable Solution",
        "Vitamin B12 [Mass/volume] in Serum or Plasma",
        "Cyanocobalamin 50 microgram/1 mL oral solution, sugar-free",
        "pg/mL",
        "mL/min/1.73 m2",
        "Vitamin B12 deficiency anaemia due to intrinsic factor deficiency",
        "Anaemia: unspecified",
    ],
)
def test_ordinary_names_are_unchanged(name):
    assert request_text(name) == name


def test_the_reported_payload_cannot_render_as_markup():
    text = request_text(
        "Metformin <img src=x onerror=alert(1)> [click](javascript:alert(1)) # INJECTED"
    )
    assert text == (
        "Metformin &lt;img src=x onerror=alert(1)&gt; [click\\](javascript\\:alert(1)) # INJECTED"
    )
    assert tokens(text) <= ALLOWED_TOKENS


@pytest.mark.parametrize(
    "raw, shown",
    [
        ("a\nb\r\nc\td\u2028e", "a b c d e"),
        ("a" + " " * 1000 + "b", "a b"),
        ("# heading", "\\# heading"),
        ("- item", "\\- item"),
        ("1. first", "1\\. first"),
        ("> quote", "&gt; quote"),
        ("x\u202e\u200bz\x00", "xz"),
        ("a \\* b `c` _d_ |e| ~~f~~", "a \\\\\\* b \\`c\\` \\_d\\_ \\|e\\| \\~\\~f\\~\\~"),
        ("[ref]: https://evil.example", "\\[ref\\]: https\\://evil.example"),
        ("see www.evil.example or me@evil.example", "see www\\.evil.example or me\\@evil.example"),
        ("A & B", "A &amp; B"),
        ("", ""),
        (None, ""),
    ],
)
def test_request_text_escapes_and_folds(raw, shown):
    assert request_text(raw) == shown


def test_request_text_is_cut_to_80_characters():
    shown = request_text("Metformin " * 20_000)  # 200 KB
    assert len(shown) == MAX_CHARS and shown.endswith("\u2026")
    assert request_text("x" * MAX_CHARS) == "x" * MAX_CHARS


def test_ids_outside_the_fhir_id_pattern_are_invalid():
    assert resource_ref("Observation", "b12-1.a") == "Observation/b12-1.a"
    for bad in ("a b", "x" * 65, "<img>", "", None, 12, "a/b", "\u00e9"):
        assert resource_ref("Observation", bad) == f"Observation/{INVALID_ID}"
    assert resource_ref("<b>", "x") == "Resource/x"


# --- every field, every rule ----------------------------------------------------------------
#: Read, but no card of the corpus shows them (a UCUM code beside the unit wins; results reported
#: only as text are not yet used): the markup checks still hold for them.
NOT_SHOWN = {"observation-display", "dosage-text", "draft-status", "unit-display", "value-string"}


def _escaped_payload_shown(response: dict[str, Any]) -> bool:
    return "&lt;img" in json.dumps(response) or INVALID_ID in json.dumps(response)


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_hostile_text_in_every_field_never_renders_as_markup(mutation):
    """The payload in one field at a time, across the whole corpus (every rule fires in it).
    A mutation that keeps the resources' meaning keeps each scenario's cards; and the text is
    not merely dropped: some card shows it, escaped."""
    shown = False
    for slug in SLUGS:
        s, request = mutated(slug, mutation, PAYLOAD)
        response = invoke(s, request)
        assert_no_markup_from_request(response)
        # Epic's shape names each drug only through a reference to its Medication's id; an id
        # outside the FHIR id pattern is never resolved (by design), so those drugs go unknown.
        epic_reference_lost = mutation == "ids" and slug.startswith("epic-")
        if MUTATIONS[mutation][1] and not epic_reference_lost:
            assert rules_of(response) == list(s.rules), slug
        shown = shown or _escaped_payload_shown(response)
    if mutation not in NOT_SHOWN:
        assert shown, f"no card shows the {mutation} text: the test would prove nothing"


@pytest.mark.parametrize("rule_id", sorted({r for slug in SLUGS for r in scenario(slug).rules}))
def test_every_rule_still_fires_and_shows_no_markup_when_every_text_is_hostile(rule_id):
    """Per rule: with every text field that keeps its resource's meaning hostile at once, the
    rule's card still fires and carries no markup from the request."""
    # Not Epic's shape: there a hostile id unlinks each drug from its Medication (see above).
    chosen = [s for s in SLUGS if rule_id in scenario(s).rules and not s.startswith("epic-")]
    for slug in chosen[:3]:
        s = scenario(slug)
        request = s.request()
        for mutation, (mutate, keeps_meaning) in MUTATIONS.items():
            if keeps_meaning:
                mutate(request, PAYLOAD)
        response = invoke(s, request)
        assert rule_id in rules_of(response), slug
        assert_no_markup_from_request(response)


def test_a_200_kb_name_gives_a_small_card():
    huge = "Folic acid " + "<b>x</b>" * 25_000  # 200 KB
    for mutation in ("medication-name", "condition-text", "unit", "value-string", "ids"):
        s, request = mutated("folic-acid-with-b12-118-megaloblastic", mutation, huge)
        response = invoke(s, request)
        assert response["cards"] or mutation in ("unit", "value-string"), mutation
        for card in response["cards"]:
            assert len(json.dumps(card)) < 12_000, mutation
        assert_no_markup_from_request(response)


# --- random text ----------------------------------------------------------------------------
_METACHARACTERS = "<>[]()!#*_`\\|~&;:/.@-+= \n\r\t\u2028\u202e\u200b\x00\"'"
HOSTILE = (
    st.sampled_from(
        [
            PAYLOAD,
            "javascript:alert(1)",
            "[x](y)",
            "<a href=//evil.example>x</a>",
            "\n\n# H\n\n---",
            "1) x",
            "&#60;img src=x&#62;",
        ]
    )
    | st.text(alphabet=st.sampled_from(_METACHARACTERS + "aZ0hjstw"), max_size=60)
    | st.text(max_size=40)
)


@deterministic(examples=250)
@given(
    slug=st.sampled_from(SLUGS),
    mutation=st.sampled_from(sorted(MUTATIONS)),
    text=HOSTILE,
)
def test_random_hostile_text_never_renders_as_markup(slug, mutation, text):
    s, request = mutated(slug, mutation, text)
    assert_no_markup_from_request(invoke(s, request))


@deterministic(examples=500)
@given(text=HOSTILE)
def test_request_text_never_yields_markup(text):
    shown = request_text(text)
    assert len(shown) <= 6 * MAX_CHARS
    assert "\n" not in shown and "\r" not in shown
    assert tokens(shown) <= ALLOWED_TOKENS
    assert not _TAG_START.search(shown) and not _AUTOLINK.search(shown)
    # Inside a card's own text, too: the rules put names mid-line, in lists and before "(".
    for template in ("- {} (Observation/x)", "{}", "Being signed: **{}** order", "{}({})"):
        rendered = template.format(shown, shown)
        assert tokens(rendered) <= ALLOWED_TOKENS, rendered


@pytest.mark.parametrize(
    "patient_id", ["<img src=x>", "a b", "x" * 65, "p?_id=q", "p/../q", "", "p\n"]
)
def test_a_patient_id_that_is_not_a_fhir_id_is_refused(patient_id):
    """It would be the subject of every suggested order and part of the fallback's queries."""
    s = scenario("folic-acid-with-b12-118-megaloblastic")
    request = s.request()
    request["context"]["patientId"] = patient_id
    with pytest.raises(InvalidRequest) as refused:
        invoke(s, request)
    assert refused.value.expression == ["context.patientId"]
