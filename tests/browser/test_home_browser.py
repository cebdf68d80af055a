"""The home page in a real browser: Debian's Chromium, headless, driven by Playwright against
the real server (gunicorn, development profile).

Never ``playwright install`` (it downloads a browser): ``.ci/run`` installs Debian's
``chromium`` and the tests point Playwright at it. Every request the page makes outside
loopback is refused and recorded, so these tests cannot reach the network either.

Screenshots go to ``test-artifacts/`` (gitignored). ``UPDATE_DOCS_SCREENSHOT=1`` also rewrites
``docs/home.png``, the README's picture (``make screenshot``).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import ROOT
from tests.integration.server import running_service

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
DOCS_SCREENSHOT = ROOT / "docs" / "home.png"
FOLIC = "folic-acid-with-b12-118-megaloblastic"
SCENARIOS = ROOT / "fixtures" / "scenarios"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    # Belt and braces with the route filter below: no name but loopback resolves.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
]

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        raise RuntimeError(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
    pytest.skip(
        "Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True
    )

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_service(tmp_path_factory.mktemp("home-browser")) as (base, _log):
        yield base


@pytest.fixture(scope="module")
def playwright():
    with sync_api.sync_playwright() as driver:
        yield driver


class Browser:
    """A fresh Chromium profile; what the page logged and what it tried to fetch elsewhere."""

    def __init__(self, playwright, profile: Path, width: int, height: int) -> None:
        self.context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": width, "height": height},
            device_scale_factor=1,
            service_workers="block",
        )
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.context.route("**/*", self._only_loopback)
        self.page = self.context.pages[0] if self.context.pages else self.context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        self.page.on(
            "requestfailed", lambda r: self.errors.append(f"request failed: {r.method} {r.url}")
        )

    def _only_loopback(self, route) -> None:
        host = urlsplit(route.request.url).hostname
        if host in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()

    def _console(self, message) -> None:
        if message.type in ("error", "warning"):
            self.errors.append(f"console {message.type}: {message.text}")

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def browser(playwright, tmp_path):
    opened = Browser(playwright, tmp_path / "profile", 1280, 900)
    yield opened
    opened.close()


@pytest.fixture
def phone(playwright, tmp_path):
    opened = Browser(playwright, tmp_path / "phone-profile", 390, 844)
    yield opened
    opened.close()


def assert_clean(browser: Browser) -> None:
    assert browser.errors == []
    assert browser.outside == []


def run_folic_acid_scenario(page, server: str) -> dict:
    """Select the folic-acid scenario, send it, and return what the browser sent."""
    page.select_option("#scenario", FOLIC)
    with page.expect_request(lambda r: r.url.endswith("/cds-services/b12-order-sign")) as sent:
        page.click("#run-scenario")
    page.wait_for_selector("#cards li.card")
    request = sent.value
    return {"method": request.method, "headers": request.headers, "body": request.post_data}


def test_the_page_loads_without_console_errors(browser, server):
    page = browser.page
    response = page.goto(server + "/")
    assert response.status == 200
    assert page.title() == "Vitamin B12 CDS service"
    assert page.locator("h1").inner_text().startswith("Vitamin B12 advice inside the EHR")
    for section in ("Connect", "Rules", "Try it", "Feedback"):
        assert page.get_by_role("heading", name=section, exact=True).is_visible()
    # The request.json of the selected scenario is shown before anything is sent.
    page.wait_for_function("document.getElementById('request-json').textContent.length > 100")
    page.wait_for_load_state("networkidle")
    assert_clean(browser)


def test_a_rule_is_found_by_search(browser, server):
    page = browser.page
    page.goto(server + "/")
    rules = page.locator("#rule-list > li")
    assert rules.count() == 15
    search = page.get_by_label("Search rules by id or word")
    search.fill("nitrous")
    visible = page.locator("#rule-list > li:visible")
    assert visible.count() == 1
    assert visible.first.locator(".rule-id").inner_text() == "nitrous-oxide-b12"
    assert page.locator("#rule-count").inner_text() == "1 of 15 rules match"
    search.fill("b12-cause-workup")
    assert [
        t.strip() for t in page.locator("#rule-list > li:visible .rule-id").all_inner_texts()
    ] == ["b12-cause-workup"]
    search.fill("renal warning")  # every word must match
    ids = page.locator("#rule-list > li:visible .rule-id").all_inner_texts()
    assert "cyanocobalamin-renal" in ids and "b12-cause-workup" not in ids
    search.fill("no such rule anywhere")
    assert page.locator("#rule-list > li:visible").count() == 0
    assert page.locator("#no-rule").is_visible()
    search.fill("")
    assert page.locator("#rule-list > li:visible").count() == 15
    assert_clean(browser)


def test_the_sandbox_link_carries_the_discovery_url(browser, server):
    page = browser.page
    page.goto(server + "/")
    link = page.get_by_role("link", name="Open in the CDS Hooks sandbox")
    href = link.get_attribute("href")
    parts = urlsplit(href)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "sandbox.cds-hooks.org", "/")
    assert parse_qs(parts.query) == {"serviceDiscoveryURL": [f"{server}/cds-services"]}
    assert page.locator("#discovery-url").inner_text() == f"{server}/cds-services"
    assert link.get_attribute("target") == "_blank"
    assert_clean(browser)


def test_the_folic_acid_scenario_shows_the_critical_card_with_its_suggestion(browser, server):
    page = browser.page
    page.goto(server + "/")
    sent = run_folic_acid_scenario(page, server)
    # The browser posted the fixture to the real service, at the scenario's evaluation time.
    assert sent["method"] == "POST"
    assert sent["headers"]["cds-evaluation-time"] == "2026-06-15T12:00:00Z"
    fixture = ROOT / "fixtures" / "scenarios" / FOLIC / "request.json"
    assert json.loads(sent["body"]) == json.loads(fixture.read_text(encoding="utf-8"))

    card = page.locator("#cards li.card")
    assert card.count() == 1
    assert "card-critical" in card.get_attribute("class")
    assert card.locator(".indicator").inner_text().lower() == "critical"
    assert card.locator(".card-summary").inner_text() == (
        "Combined deficiency (B12 118 ng/L (≈87 pmol/L), folate 2.1 ng/mL): start B12 now, "
        "give folic acid with it"
    )
    # Markdown rendered, not shown raw.
    assert card.locator(".card-detail strong").first.inner_text() == (
        "Combined deficiency: start B12 now and give the folic acid with it"
    )
    suggestion = card.locator(".suggestion.recommended")
    assert suggestion.locator(".suggestion-button").inner_text() == "Order Hydroxocobalamin 1 mg IM"
    assert "hydroxocobalamin 1 MG/ML Injectable Solution" in suggestion.inner_text()
    assert "1 mg IM three times a week for 2 weeks" in suggestion.inner_text()
    # Combined deficiency: the folic acid stays (no delete suggestion).
    assert "Remove draft" not in card.inner_text()
    assert "B12 started or given elsewhere" in card.locator(".override").inner_text()
    # Beside the raw request and response.
    response = json.loads(page.locator("#response-json").inner_text())
    assert [c["indicator"] for c in response["cards"]] == ["critical"]
    assert "pat-folic-118" in page.locator("#request-json").inner_text()
    assert page.locator("#try-status").inner_text() == "Response received: 1 card."

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "home-1280-full.png"), full_page=True)
    section = page.locator("#try-it")
    section.screenshot(path=str(ARTIFACTS / "home-1280-try-it.png"))
    if os.environ.get("UPDATE_DOCS_SCREENSHOT"):
        # The README's picture: the header and Try it with its card, as a 1280 px screen shows.
        DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
        page.set_viewport_size({"width": 1280, "height": 1400})
        page.evaluate("window.scrollTo(0, document.getElementById('try-it').offsetTop - 70)")
        page.wait_for_timeout(100)
        page.screenshot(path=str(DOCS_SCREENSHOT))
    assert_clean(browser)


def test_everything_works_from_the_keyboard_with_a_visible_focus(browser, server):
    page = browser.page
    page.goto(server + "/")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused == "Skip to content"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    page.focus("#scenario")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "run-scenario"
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
    page.keyboard.press("Enter")
    page.wait_for_selector("#cards li.card-critical")
    assert_clean(browser)


def test_on_a_phone_nothing_is_wider_than_the_screen(phone, server):
    page = phone.page
    page.goto(server + "/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    run_folic_acid_scenario(page, server)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.locator("#cards li.card-critical").is_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "home-phone-full.png"), full_page=True)
    assert_clean(phone)


def _widest_element(page) -> dict:
    """The element reaching furthest right outside any scrolling box, with every <details>
    open (the rules' settings tables)."""
    return page.evaluate("""() => {
        document.querySelectorAll('details').forEach(d => { d.open = true; });
        let widest = {right: 0, tag: ''};
        const clipped = el => {
            for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
                if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(a).overflowX)) {
                    return true;
                }
            }
            return false;
        };
        for (const el of document.querySelectorAll('body *')) {
            if (clipped(el)) continue;  // scrolls inside its own box, not the page
            const r = el.getBoundingClientRect();
            if (r.width && r.right > widest.right) {
                widest = {right: r.right, tag: el.tagName + '.' + el.className};
            }
        }
        return {widest, scroll: document.documentElement.scrollWidth};
    }""")


def test_on_a_phone_the_feedback_and_settings_tables_fit(phone, server):
    """Found by a new user: with feedback recorded and a rule's settings open, the tables
    widened the page to 414 and 555 px at 390 px."""
    import requests

    body = json.loads((SCENARIOS / FOLIC / "request.json").read_text(encoding="utf-8"))
    answer = requests.post(
        server + "/cds-services/b12-order-sign",
        json=body,
        headers={"CDS-Evaluation-Time": "2026-06-15T12:00:00Z"},
        timeout=30,
    ).json()
    card = answer["cards"][0]
    feedback = {
        "feedback": [
            {
                "card": card["uuid"],
                "outcome": "overridden",
                "overrideReason": {
                    "reason": card["overrideReasons"][0],
                    "userComment": "given elsewhere",
                },
                "outcomeTimestamp": "2026-06-15T12:01:00Z",
            }
        ]
    }
    stored = requests.post(
        server + "/cds-services/b12-order-sign/feedback", json=feedback, timeout=30
    )
    assert stored.ok, stored.text
    page = phone.page
    page.goto(server + "/")
    page.wait_for_load_state("networkidle")
    found = _widest_element(page)
    assert found["scroll"] <= 390, found
    assert found["widest"]["right"] <= 390, found
    assert_clean(phone)


def test_the_watch_catches_console_errors_and_outside_requests(browser, server):
    """A watch that cannot fail proves nothing: plant an error and outside fetches."""
    page = browser.page
    page.goto(server + "/")
    page.evaluate("console.error('planted')")
    # On the home page the Content-Security-Policy stops the fetch before it leaves...
    page.evaluate("fetch('https://example.org/home').catch(() => null)")
    page.wait_for_timeout(200)
    assert "console error: planted" in browser.errors
    assert any("Content Security Policy" in e for e in browser.errors), browser.errors
    # ...and on a page without one, the route filter refuses it.
    blank = browser.context.new_page()
    blank.evaluate("fetch('https://example.org/blank').catch(() => null)")
    blank.wait_for_timeout(200)
    assert browser.outside == ["https://example.org/blank"]
