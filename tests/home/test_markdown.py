"""Card Markdown is rendered server-side with raw HTML off: nothing a card says can run
script in the page, whatever the service (or anyone posting to /home/render) puts in it."""

from __future__ import annotations

import re

import pytest

from cds_service.web.markdown import render_markdown, safe_url


def html(text: str) -> str:
    return str(render_markdown(text))


def assert_inert(out: str) -> None:
    """No element or attribute that can run script survives."""
    lowered = out.lower()
    assert "<script" not in lowered
    assert "<img" not in lowered
    assert "<iframe" not in lowered
    assert "<svg" not in lowered
    assert not re.search(r"<[^>]+\son\w+\s*=", lowered), out  # an event-handler attribute
    assert not re.search(r"href\s*=\s*\"(?!https?://)", lowered), out


def test_the_subset_cards_use_renders_as_html():
    out = html("**Do not give folic acid** first.\n\n- one\n- two\n\nline 1\nline 2")
    assert "<strong>Do not give folic acid</strong>" in out
    assert "<ul>\n<li>one</li>\n<li>two</li>\n</ul>" in out
    # Card details put one fact per line: a single newline stays a line break.
    assert "line 1<br />\nline 2" in out


def test_http_links_are_kept_and_cannot_reach_the_opener():
    out = html("[NICE NG239](https://www.nice.org.uk/guidance/ng239?a=1&b=2)")
    assert (
        '<a href="https://www.nice.org.uk/guidance/ng239?a=1&amp;b=2" '
        'rel="noopener noreferrer" target="_blank">NICE NG239</a>'
    ) in out


@pytest.mark.parametrize(
    "text",
    [
        "<script>alert(1)</script>",
        "before <script>alert(1)</script> after",
        "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>",
        '<img src=x onerror="alert(1)">',
        "<svg onload=alert(1)>",
        '<a href="javascript:alert(1)">click</a>',
        '<div onmouseover="alert(1)">hover</div>',
        "<iframe src=https://evil.example></iframe>",
        "<!-- comment --><style>body{display:none}</style>",
    ],
)
def test_raw_html_comes_out_as_text(text):
    out = html(text)
    assert_inert(out)
    assert "&lt;" in out  # shown to the reader, not interpreted


@pytest.mark.parametrize(
    "text",
    [
        "[click](javascript:alert(1))",
        "[click](JavaScript:alert(1))",
        "[click](  javascript:alert(1))",
        "[click](jav&#97;script:alert(1))",
        "[click](&#106;avascript:alert(1))",
        "[click](java\tscript:alert(1))",
        "[click](vbscript:msgbox(1))",
        "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "[click](file:///etc/passwd)",
        "[click](/relative/path)",
        "[click](//evil.example/x)",
        "<javascript:alert(1)>",
        "[click][ref]\n\n[ref]: javascript:alert(1)",
    ],
)
def test_only_http_links_become_links(text):
    out = html(text)
    assert "<a " not in out, out
    assert_inert(out)


def test_a_link_title_cannot_add_an_attribute():
    out = html('[x](https://a.example "t" onmouseover="alert(1)")')
    assert_inert(out)


@pytest.mark.parametrize(
    "text",
    ["![x](https://evil.example/pixel.png)", '![x](x" onerror="alert(1))'],
)
def test_images_never_load(text):
    assert_inert(html(text))


def test_html_entities_stay_text():
    out = html("&lt;script&gt;alert(1)&lt;/script&gt; &#60;b&#62;bold&#60;/b&#62; &amp;")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert "&lt;b&gt;bold&lt;/b&gt;" in out
    assert "<b>" not in out
    assert_inert(out)


def test_code_spans_show_markup_literally():
    assert "<code>&lt;script&gt;</code>" in html("`<script>`")


@pytest.mark.parametrize("value", [None, 42, ["**x**"], {"a": 1}, "", "   "])
def test_anything_but_text_renders_as_nothing(value):
    assert str(render_markdown(value)) == ""


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://www.nice.org.uk/guidance/ng239", "https://www.nice.org.uk/guidance/ng239"),
        ("http://localhost:8080/x", "http://localhost:8080/x"),
        ("javascript:alert(1)", None),
        ("data:text/html,x", None),
        ("/relative", None),
        ("https://a.example/x y", None),
        (None, None),
        (7, None),
    ],
)
def test_safe_url_keeps_only_http_urls(url, expected):
    assert safe_url(url) == expected
