"""GET /: Connect, Rules, Try it and Feedback, server-rendered; the card rendering endpoint;
what each profile and setting shows."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from cds_service.domain.catalogue import catalogue
from cds_service.domain.policy import Policy
from cds_service.web.home import CONTENT_SECURITY_POLICY
from hooks import registry
from tests.conftest import FIXTURES, load_json
from tests.scenarios.build import strip_uuids

from .page import Page

FOLIC = "folic-acid-with-b12-118-megaloblastic"
SCENARIOS = FIXTURES / "scenarios"


def outcome(response, status: int) -> dict:
    """Every non-2xx answer is an OperationOutcome, the home page's included."""
    assert response.status_code == status
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    return body["issue"][0]


# --- the page ------------------------------------------------------------------------------------
def test_development_shows_every_section(client, get_page):
    page = get_page(client)
    for section in ("connect", "rules", "try-it", "feedback"):
        assert page.find("section", id=section), section
    nav = [a["href"] for a in page.find("a") if (a.get("href") or "").startswith("#")]
    assert nav[:5] == ["#main", "#connect", "#rules", "#try-it", "#feedback"]
    assert "Profile: development." in page.text


def test_the_page_is_one_document_with_a_language_a_title_and_headings(client, get_page):
    page = get_page(client)
    assert page.find("html", lang="en")
    assert page.find("meta", name="viewport")
    assert page.source.count("<h1") == 1
    assert page.find("main", id="main")


def test_the_page_forbids_inline_script_and_outside_resources(client):
    response = client.get("/")
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    page = Page(response.get_data(as_text=True))
    # One script, from this origin, and no inline handler or style anywhere.
    assert [s.get("src") for s in page.find("script")] == ["/home/static/home.js"]
    assert "<script>" not in page.source
    assert not [a for _, a in page.elements if any(k.startswith("on") or k == "style" for k in a)]


def test_static_files_are_served(client):
    for name, mimetypes in (
        ("home.css", {"text/css"}),
        ("home.js", {"text/javascript", "application/javascript"}),
        ("favicon.svg", {"image/svg+xml"}),
    ):
        response = client.get(f"/home/static/{name}")
        assert response.status_code == 200, name
        assert response.mimetype in mimetypes
        response.close()


# --- Connect -------------------------------------------------------------------------------------
def test_connect_gives_the_discovery_url_of_the_host_called(client, get_page):
    page = get_page(client, base_url="http://cds.test:8080")
    assert "http://cds.test:8080/cds-services" in page.text
    link = page.by_id("sandbox-link")
    parts = urlsplit(link["href"])
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "sandbox.cds-hooks.org", "/")
    assert parse_qs(parts.query) == {"serviceDiscoveryURL": ["http://cds.test:8080/cds-services"]}
    # URL-encoded, so that the sandbox reads one parameter whatever the URL holds.
    assert "serviceDiscoveryURL=http%3A%2F%2Fcds.test%3A8080%2Fcds-services" in link["href"]
    assert link["rel"] == "noopener noreferrer"


def test_the_public_base_url_wins_over_the_host_header(make_app, get_page):
    app, _ = make_app(CDS_PROFILE="development", CDS_PUBLIC_BASE_URL="https://cds.example.org/b12")
    page = get_page(app.test_client(), base_url="http://evil.test")
    assert "https://cds.example.org/b12/cds-services" in page.text
    assert "evil.test" not in page.source
    query = parse_qs(urlsplit(page.by_id("sandbox-link")["href"]).query)
    assert query == {"serviceDiscoveryURL": ["https://cds.example.org/b12/cds-services"]}


def test_connect_lists_every_service_with_its_hook_and_prefetch_templates(client, get_page):
    page = get_page(client)
    for service in registry():
        assert service.title in page.text
        assert f"id {service.id} hook {service.hook.value}" in page.text
        for key, prefetch in service.prefetch.items():
            assert f"{key} {prefetch.template} {'yes' if prefetch.required else 'no'}" in page.text


def test_connect_shows_the_curl_command_for_a_fixture(client, get_page):
    page = get_page(client)
    assert (
        "curl -s -X POST -H 'Content-Type: application/json' \\ "
        "-H 'CDS-Evaluation-Time: 2026-06-15T12:00:00Z' \\ "
        f"--data @fixtures/scenarios/{FOLIC}/request.json \\ "
        "http://localhost/cds-services/b12-order-sign"
    ) in page.text


# --- Rules ---------------------------------------------------------------------------------------
def test_rules_lists_the_catalogue_with_indicators_sources_and_settings(client, get_page):
    page = get_page(client)
    entries = catalogue(Policy())
    items = page.find("li", class_="rule panel")
    assert [i["id"] for i in items] == [f"rule-{e['id']}" for e in entries]
    for entry in entries:
        assert entry["title"] in page.text
        assert f"{entry['id']} {' '.join(entry['indicators'])}" in page.text
        for source in entry["sources"]:
            assert page.find("a", href=source["url"])
        for key in entry["settings"]:
            assert key in page.text
    folate = page.text.split("Folate ordered or taken while B12 deficiency is untreated", 1)[1]
    assert "folate-before-b12 critical warning info" in folate
    assert "thresholds.total_b12_deficient_below_ng_l 180 " in folate


def test_rule_search_matches_ids_and_words_and_is_hidden_without_javascript(client, get_page):
    page = get_page(client)
    search = page.by_id("rule-search")
    assert search["type"] == "search"
    assert page.find("label", for_="rule-search")
    # Without JavaScript the box could not filter: it stays hidden and every rule is listed.
    assert "hidden" in page.find("div", class_="search")[0]
    folate = page.by_id("rule-folate-before-b12")
    for word in ("folate-before-b12", "folate", "nice ng239", "critical", "lookback_months"):
        assert word in folate["data-search"]


def test_rules_mark_the_values_site_policy_changed(make_app, get_page, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("windows:\n  lookback_months: 18\n")
    app, _ = make_app(CDS_PROFILE="development", CDS_SITE_POLICY=str(policy))
    page = get_page(app.test_client())
    assert "windows.lookback_months 18 site policy (default 12)" in page.text
    assert "including this site's policy" in page.text
    assert "thresholds.total_b12_deficient_below_ng_l 180 site policy" not in page.text


# --- Try it --------------------------------------------------------------------------------------
def test_try_it_offers_every_scenario_with_the_folic_acid_one_selected(client, get_page):
    page = get_page(client)
    options = page.find("option")
    slugs = sorted(p.name for p in SCENARIOS.iterdir() if (p / "scenario.json").is_file())
    assert sorted(o["value"] for o in options) == slugs
    selected = [o for o in options if "selected" in o]
    assert [o["value"] for o in selected] == [FOLIC]
    folic = selected[0]
    meta = load_json(SCENARIOS / FOLIC / "scenario.json")
    assert folic["data-service"] == meta["service"]
    assert folic["data-evaluation-time"] == meta["evaluationTime"]
    assert folic["data-request-url"] == f"/home/scenarios/{FOLIC}/request.json"
    assert page.find("label", for_="scenario")
    form = page.by_id("try-form")
    assert (form["data-mode"], form["data-service-base"]) == ("service", "/cds-services/")
    assert form["data-render-url"] == "/home/render"


def test_a_scenario_request_is_served_as_is(client):
    response = client.get(f"/home/scenarios/{FOLIC}/request.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.data == (SCENARIOS / FOLIC / "request.json").read_bytes()


@pytest.mark.parametrize("slug", ["no-such-scenario", "..", "%2e%2e%2fscenario.json"])
def test_only_known_scenarios_are_served(client, slug):
    issue = outcome(client.get(f"/home/scenarios/{slug}/request.json"), 404)
    assert issue["code"] == "not-found"


def test_render_shows_the_cards_the_way_an_ehr_does(client):
    expected = load_json(SCENARIOS / FOLIC / "expected.json")
    response = client.post("/home/render", json=expected)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = Page(response.get_data(as_text=True))
    card = page.find("li", class_="card card-critical")
    assert len(card) == 1
    text = page.text
    assert (
        "Critical Combined deficiency (B12 118 ng/L (≈87 pmol/L), folate 2.1 ng/mL): start B12 now"
        in text
    )
    assert (
        "<strong>Combined deficiency: start B12 now and give the folic acid with it</strong>"
        in page.source
    )
    # The suggestion, and what it would order.
    assert "Order Hydroxocobalamin 1 mg IM Recommended" in text
    assert (
        "Would order MedicationRequest : hydroxocobalamin 1 MG/ML Injectable Solution "
        "(RxNorm 317106)"
    ) in text
    assert "1 mg IM three times a week for 2 weeks then 1 mg IM every 2-3 months" in text
    assert "Would remove MedicationRequest/folic-1" not in text  # combined deficiency: kept
    assert "If you override, say why B12 started or given elsewhere" in text
    assert page.find("a", href="https://www.nice.org.uk/guidance/ng239")
    assert "rule folate-before-b12" in text


def test_a_lab_order_shows_its_code_and_only_http_links_are_kept():
    from cds_service.web.cardview import card_view

    card = card_view(
        {
            "summary": "s",
            "indicator": "warning",
            "suggestions": [
                {
                    "label": "Order serum vitamin B12",
                    "actions": [
                        {
                            "type": "create",
                            "description": "Serum vitamin B12 (total)",
                            "resource": {
                                "resourceType": "ServiceRequest",
                                "code": {
                                    "coding": [
                                        {
                                            "system": "http://loinc.org",
                                            "code": "2132-9",
                                            "display": "Cobalamin [Mass/volume] in Serum",
                                        }
                                    ]
                                },
                                "note": [{"text": "Draw before any B12 is given."}],
                            },
                        }
                    ],
                }
            ],
            "links": [
                {"label": "Guideline", "url": "https://www.nice.org.uk/x", "type": "absolute"},
                {"label": "Bad", "url": "javascript:alert(1)", "type": "absolute"},
            ],
        }
    )
    order = card.suggestions[0].actions[0].order
    assert (order.resource_type, order.display, order.code) == (
        "ServiceRequest",
        "Cobalamin [Mass/volume] in Serum",
        "LOINC 2132-9",
    )
    assert order.note == "Draw before any B12 is given."
    assert [(link.label, link.url) for link in card.links] == [
        ("Guideline", "https://www.nice.org.uk/x"),
        ("Bad", None),
    ]
    assert card.indicator == "warning"


HOSTILE_CARD = {
    "cards": [
        {
            "summary": "<script>alert('summary')</script>",
            "indicator": 'critical" onmouseover="alert(1)',
            "detail": (
                "<img src=x onerror=alert(1)> [x](javascript:alert(2)) &lt;script&gt; "
                "<script>alert(3)</script>"
            ),
            "source": {"label": "<b>src</b>", "url": "javascript:alert(4)"},
            "suggestions": [
                {
                    "label": "<svg onload=alert(5)>",
                    "isRecommended": "yes",
                    "actions": [
                        {
                            "type": "create",
                            "description": "<i>d</i>",
                            "resource": {
                                "resourceType": "<script>x</script>",
                                "medicationCodeableConcept": {"text": '"><script>y</script>'},
                                "dosageInstruction": [{"text": "<iframe src=x>"}],
                            },
                        }
                    ],
                }
            ],
            "links": [{"label": "l", "url": "javascript:alert(6)", "type": "smart"}],
            "overrideReasons": [{"display": "<a href=javascript:alert(7)>r</a>"}],
        }
    ]
}


def test_render_never_lets_card_text_run_script(client):
    response = client.post("/home/render", json=HOSTILE_CARD)
    assert response.status_code == 200
    source = response.get_data(as_text=True)
    page = Page(source)
    assert not page.find("script")
    assert not page.find("img") and not page.find("svg") and not page.find("iframe")
    assert not [a for _, a in page.elements if any(k.startswith("on") for k in a)]
    assert all((a.get("href") or "").startswith("https://") for a in page.find("a"))
    # The hostile text is shown, as text.
    assert "&lt;script&gt;alert(&#39;summary&#39;)&lt;/script&gt;" in source
    assert "<script>alert('summary')</script>" in page.text
    # An unknown indicator is shown as info, never pasted into a class attribute.
    assert page.find("li", class_="card card-info")
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


@pytest.mark.parametrize(
    "body", [{}, {"cards": "x"}, {"cards": [1, None, "x"]}, [], {"cards": [{"summary": 5}]}]
)
def test_render_survives_any_json(client, body):
    response = client.post("/home/render", json=body)
    assert response.status_code == 200


def test_render_answers_a_response_without_cards(client):
    response = client.post("/home/render", json={"cards": []})
    assert "No cards" in Page(response.get_data(as_text=True)).text


def test_render_takes_json_only(client):
    # A cross-site form cannot send application/json without a CORS preflight.
    response = client.post(
        "/home/render", data=json.dumps({"cards": []}), content_type="text/plain"
    )
    assert outcome(response, 415)["code"] == "not-supported"
    response = client.post("/home/render", data="{", content_type="application/json")
    assert outcome(response, 400)["code"] == "invalid"


def test_without_javascript_try_it_is_evaluated_on_the_server_at_the_scenario_date(
    client, get_page, store
):
    page = get_page(client, f"/?scenario={FOLIC}")
    selected = [o["value"] for o in page.find("option") if "selected" in o]
    assert selected == [FOLIC]
    assert page.find("li", class_="card card-critical")
    assert "Critical Combined deficiency (B12 118 ng/L (≈87 pmol/L)" in page.text
    assert "Response received: 1 card." in page.text
    # The raw request and response are shown beside the cards.
    request_text = page.source.split('id="request-json"', 1)[1].split("</pre>", 1)[0]
    assert "pat-folic-118" in request_text
    # Server-side Try it writes nothing to the ledger: demo cards must not skew Feedback.
    assert store.feedback_report() == []


def test_an_unknown_scenario_is_a_404(client):
    outcome(client.get("/?scenario=nope"), 404)


# --- Feedback ------------------------------------------------------------------------------------
def test_feedback_without_any_card_says_so(client, get_page):
    page = get_page(client)
    assert "No cards issued and no feedback yet." in page.text
    assert not page.find("svg")


def test_feedback_charts_the_rates_per_rule(client, core, get_page):
    body = load_json(SCENARIOS / FOLIC / "request.json")
    card = client.post("/cds-services/b12-order-sign", json=body).get_json()["cards"][0]
    client.post("/cds-services/b12-order-sign", json=body)
    client.post(
        "/cds-services/b12-order-sign/feedback",
        json={
            "feedback": [
                {
                    "card": card["uuid"],
                    "outcome": "overridden",
                    "outcomeTimestamp": "2026-06-15T12:00:00Z",
                    "overrideReason": {"reason": card["overrideReasons"][0]},
                }
            ]
        },
    )
    page = get_page(client)
    assert page.find("svg", class_="feedback-chart", role="img")
    assert page.find("g", class_="feedback-row", data_rule="folate-before-b12")
    assert "0% accepted, 50% overridden (n=2)" in page.text
    # Shown, silent, accepted, overridden, then shown and silent per 1,000 invocations (2).
    assert "folate-before-b12 2 0 0 (0%) 1 (50%) 1000.0 0.0" in page.text


def test_feedback_says_when_the_store_cannot_be_read(client, core, get_page, monkeypatch):
    from cds_service.storage import StorageError

    def broken():
        raise StorageError("down")

    monkeypatch.setattr(core.store, "feedback_report", broken)
    page = get_page(client)
    assert "Feedback How clinicians answered" in page.text
    assert "The feedback store cannot be read; retry later." in page.text
    assert not page.find("svg")


# --- settings ------------------------------------------------------------------------------------
def test_home_page_off_leaves_a_404_operation_outcome(make_app):
    app, _ = make_app(CDS_PROFILE="development", CDS_HOME_PAGE="0")
    client = app.test_client()
    assert outcome(client.get("/"), 404)["code"] == "not-found"
    outcome(client.get("/home/static/home.css"), 404)
    outcome(client.post("/home/render", json={"cards": []}), 404)
    assert client.get("/cds-services").status_code == 200


def test_production_shows_connect_and_rules_only(make_app, get_page):
    app, _ = make_app(CDS_PROFILE="production", CDS_ALLOW_ANONYMOUS="1")
    client = app.test_client()
    page = get_page(client)
    assert page.find("section", id="connect") and page.find("section", id="rules")
    assert not page.has_id("try-it") and not page.has_id("feedback")
    assert "Profile: production." in page.text
    # The curl command needs a token there, and no evaluation-time header.
    assert "Authorization: Bearer $JWT" in page.text
    assert "CDS-Evaluation-Time:" not in page.text
    outcome(client.post("/home/render", json={"cards": []}), 404)
    outcome(client.get(f"/home/scenarios/{FOLIC}/request.json"), 404)
    # ?scenario= is ignored when Try it is off: nothing is evaluated.
    assert not get_page(client, f"/?scenario={FOLIC}").find("li", class_="card card-critical")


def test_production_with_try_it_evaluates_scenarios_on_the_server(make_app, get_page):
    app, core = make_app(CDS_PROFILE="production", CDS_ALLOW_ANONYMOUS="1", CDS_HOME_TRY_IT="1")
    client = app.test_client()
    page = get_page(client)
    assert page.find("section", id="try-it") and not page.has_id("feedback")
    # Production ignores CDS-Evaluation-Time and wants a token: the form goes to the server.
    assert page.by_id("try-form")["data-mode"] == "server"
    page = get_page(client, f"/?scenario={FOLIC}")
    response_text = page.source.split('id="response-json"', 1)[1].split(">", 1)[1]
    response = json.loads(Page(response_text.split("</pre>", 1)[0]).text)
    assert strip_uuids(response) == load_json(SCENARIOS / FOLIC / "expected.json")
    assert core.store.feedback_report() == []


def test_production_can_show_feedback_when_enabled(make_app, get_page):
    app, _ = make_app(CDS_PROFILE="production", CDS_ALLOW_ANONYMOUS="1", CDS_HOME_FEEDBACK="1")
    page = get_page(app.test_client())
    assert page.find("section", id="feedback") and not page.has_id("try-it")


def test_try_it_can_be_switched_off_in_development(make_app, get_page):
    app, _ = make_app(CDS_PROFILE="development", CDS_HOME_TRY_IT="0", CDS_HOME_FEEDBACK="0")
    page = get_page(app.test_client())
    assert not page.has_id("try-it") and not page.has_id("feedback")
