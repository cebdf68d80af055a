"""Every clinical scenario under fixtures/scenarios/ (CONTRIBUTING.md, "Fixtures and scenarios").

- golden: each ``request.json`` POSTed to its service, evaluated at the scenario's fixed time,
  gives ``expected.json`` (uuids removed), and its cards are the rules ``scenario.json`` names;
- every fixture is valid JSON, every FHIR resource in a request is valid R4 (R4B models);
- every expected card is a valid CDS Hooks card and every suggested resource valid R4;
- the fixtures are what ``tests/scenarios/definitions.py`` describes (not stale).
"""

from __future__ import annotations

import copy
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from cds_service.cdshooks.application import CdsApplication
from cds_service.cdshooks.schemas import CardSchema
from cds_service.fhir.lenient import repair
from cds_service.fhir.models import validate
from cds_service.web import create_app
from hooks import registry
from tests.conftest import FIXTURES, load_json
from tests.scenarios import build

SCENARIO_DIR = FIXTURES / "scenarios"
SLUGS = sorted(p.name for p in SCENARIO_DIR.iterdir() if p.is_dir())
FIXTURE_FILES = sorted(p.relative_to(FIXTURES).as_posix() for p in FIXTURES.rglob("*.json"))
SERVICES = {"b12-order-sign", "b12-order-select", "b12-patient-view"}
PLACEHOLDER_UUID = "00000000-0000-4000-8000-000000000000"


def scenario(slug: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    folder = SCENARIO_DIR / slug
    return (
        load_json(folder / "request.json"),
        load_json(folder / "scenario.json"),
        load_json(folder / "expected.json"),
    )


def evaluation_time(meta: dict[str, Any]) -> datetime:
    moment = datetime.fromisoformat(meta["evaluationTime"])
    assert moment.tzinfo is not None, "evaluationTime must carry a zone"
    return moment


def card_rules(response: dict[str, Any]) -> list[str]:
    return [card["source"]["topic"]["code"] for card in response["cards"]]


@pytest.fixture
def client_at(settings, store, uuids):
    """A test client whose clock is fixed at a given time (conftest's app, another clock)."""

    def make(now: datetime):
        core = CdsApplication(
            registry=registry(),
            store=store,
            policy=settings.policy,
            clock=lambda: now,
            new_uuid=uuids,
        )
        return create_app(settings, core).test_client()

    return make


def test_there_are_scenarios_for_every_service():
    assert len(SLUGS) >= 30
    assert {scenario(slug)[1]["service"] for slug in SLUGS} == SERVICES


def test_the_quick_start_scenario_exists():
    """README's quick start POSTs this one to b12-order-sign."""
    _, meta, expected = scenario("folic-acid-with-b12-118-megaloblastic")
    assert meta["service"] == "b12-order-sign"
    assert card_rules(expected) == ["folate-before-b12"]
    assert expected["cards"][0]["indicator"] == "critical"


def test_every_rule_fires_in_some_scenario():
    from cds_service.domain.rules import ALL_RULES

    shown = {rule for slug in SLUGS for rule in scenario(slug)[1]["rules"]}
    assert shown == {rule.id for rule in ALL_RULES}


# --- (a) golden ------------------------------------------------------------------------------
@pytest.mark.parametrize("slug", SLUGS)
def test_scenario_gives_its_expected_response(client_at, slug):
    request, meta, expected = scenario(slug)
    assert set(meta) == {"title", "shows", "service", "evaluationTime", "rules"}
    assert meta["service"] in SERVICES
    client = client_at(evaluation_time(meta))
    response = client.post(f"/cds-services/{meta['service']}", json=request)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert build.strip_uuids(body) == expected
    assert card_rules(body) == meta["rules"]


# --- (b) fixtures are JSON; requests carry valid FHIR R4 --------------------------------------
@pytest.mark.parametrize("name", FIXTURE_FILES)
def test_fixture_is_valid_json(name):
    text = (FIXTURES / name).read_text(encoding="utf-8")

    def no_duplicates(pairs):
        keys = [k for k, _ in pairs]
        assert len(keys) == len(set(keys)), f"duplicate key in {name}"
        return dict(pairs)

    json.loads(text, object_pairs_hook=no_duplicates)


def request_resources(request: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(where, resource) for every prefetched resource and Bundle entry, and every draft."""
    found: list[tuple[str, dict[str, Any]]] = []
    for key, value in (request.get("prefetch") or {}).items():
        if not isinstance(value, dict):
            continue
        found.append((f"prefetch.{key}", value))
        if value.get("resourceType") == "Bundle":
            for index, entry in enumerate(value.get("entry") or []):
                found.append((f"prefetch.{key}.entry[{index}]", entry["resource"]))
    drafts = request["context"].get("draftOrders") or {}
    patient_ref = f"Patient/{request['context']['patientId']}"
    for index, entry in enumerate(drafts.get("entry") or []):
        resource = entry["resource"]
        if resource.get("resourceType") == "MedicationOrder":
            # DSTU2, on purpose (the public sandbox sends it): valid once the service repairs it.
            resource = repair(resource, patient_ref=patient_ref, draft=True)
        found.append((f"context.draftOrders.entry[{index}]", resource))
    return found


@pytest.mark.parametrize("slug", SLUGS)
def test_request_resources_are_valid_fhir_r4(slug):
    request, meta, _ = scenario(slug)
    resources = request_resources(request)
    assert resources
    for where, resource in resources:
        try:
            validate(resource)
        except Exception as error:  # pydantic.ValidationError / ValueError: say where
            kind = resource.get("resourceType")
            pytest.fail(f"{slug}: {where} ({kind}) is not valid R4: {error}")


@pytest.mark.parametrize("slug", SLUGS)
def test_request_has_the_seven_prefetch_keys_unless_about_missing_data(slug):
    request, meta, _ = scenario(slug)
    keys = set(request.get("prefetch") or {})
    full = {
        "patient",
        "b12Labs",
        "bloodCounts",
        "renalLabs",
        "medicationStatements",
        "medicationRequests",
        "conditions",
    }
    if "unavailable" in slug:
        assert keys < full
    else:
        assert keys == full


# --- (c) expected cards are valid cards with valid FHIR suggestions ---------------------------
def with_uuids(card: dict[str, Any]) -> dict[str, Any]:
    """expected.json has its uuids removed; put placeholders back for the schema."""
    card = copy.deepcopy(card)
    card["uuid"] = PLACEHOLDER_UUID
    for suggestion in card.get("suggestions", []):
        suggestion["uuid"] = PLACEHOLDER_UUID
    return card


@pytest.mark.parametrize("slug", SLUGS)
def test_expected_cards_are_valid_cards(slug):
    _, meta, expected = scenario(slug)
    assert set(expected) == {"cards"}
    for card in expected["cards"]:
        assert CardSchema().validate(with_uuids(card)) == {}, card["summary"]
        for suggestion in card.get("suggestions", []):
            for action in suggestion["actions"]:
                if "resource" in action:
                    validate(action["resource"])
                    assert action["resource"]["status"] == "draft"
                else:
                    assert action["type"] == "delete" and action["resourceId"]


# --- (d) fixtures are fresh -------------------------------------------------------------------
def test_fixtures_are_not_stale():
    problems = build.check()
    assert problems == [], "run `make scenarios`:\n" + "\n".join(problems)


def test_check_reports_a_stale_file(tmp_path: Path):
    from tests.scenarios.definitions import SCENARIOS

    first = SCENARIOS[:1]
    build.write(tmp_path, first)
    assert build.check(tmp_path, first) == []
    (tmp_path / first[0].slug / "expected.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "orphan").mkdir()
    problems = build.check(tmp_path, first)
    assert f"{first[0].slug}/expected.json: stale" in problems
    assert "orphan: no definition in tests/scenarios/definitions.py" in problems


@pytest.mark.parametrize("hook", ["order-sign", "order-select", "patient-view"])
def test_sandbox_capture_resources_are_valid_fhir_r4_once_repaired(hook):
    """The sandbox's quirks (category as an object) are repaired exactly as the service does;
    everything else it sends must be valid R4."""
    from cds_service.fhir.lenient import repair
    from cds_service.fhir.models import validate

    body = json.loads((FIXTURES / "sandbox" / f"{hook}.request.json").read_text())
    resources = [e["resource"] for e in body["context"].get("draftOrders", {}).get("entry", [])]
    for value in (body.get("prefetch") or {}).values():
        if isinstance(value, dict) and value.get("resourceType") == "Bundle":
            resources += [e["resource"] for e in value.get("entry", [])]
        elif isinstance(value, dict):
            resources.append(value)
    drafts = body["context"].get("draftOrders", {}).get("entry", [])
    for resource in resources:
        is_draft = any(e["resource"] is resource for e in drafts)
        validate(
            repair(resource, patient_ref=f"Patient/{body['context']['patientId']}", draft=is_draft)
        )
