"""deploy/seed_fhir.py, the demo stack's seeding: one transaction Bundle per scenario with ids
that cannot collide, and, against a real FHIR server (sekmet-fhir on loopback), seeded data
the prefetch fallback fetches back into the scenario's own cards."""

from __future__ import annotations

import importlib.util
import re
from collections import Counter

import pytest

from cds_service.bootstrap import build_core
from cds_service.config import load_settings
from cds_service.web import create_app
from tests.conftest import FIXTURES, load_json
from tests.fallback.conftest import TOKEN

from .files import ROOT

pytestmark = pytest.mark.integration

SCENARIOS = FIXTURES / "scenarios"
AT = {"CDS-Evaluation-Time": "2026-06-15T12:00:00Z"}


def seeder():
    spec = importlib.util.spec_from_file_location("seed_fhir", ROOT / "deploy" / "seed_fhir.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_one_transaction_per_scenario_with_ids_that_cannot_collide():
    bundles = seeder().bundles(SCENARIOS)
    assert len(bundles) == len(list(SCENARIOS.glob("*/request.json")))
    seen = Counter()
    for slug, bundle in bundles.items():
        assert bundle["type"] == "transaction"
        entries = bundle["entry"]
        assert entries[0]["resource"]["resourceType"] == "Patient"
        for entry in entries:
            resource = entry["resource"]
            assert re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", resource["id"]), (slug, resource["id"])
            assert entry["request"] == {
                "method": "PUT",
                "url": f"{resource['resourceType']}/{resource['id']}",
            }
            seen[(resource["resourceType"], resource["id"])] += 1
    assert max(seen.values()) == 1


def cards(response) -> list[tuple[str, str]]:
    assert response.status_code == 200, response.get_json()
    return [(c["source"]["topic"]["code"], c["indicator"]) for c in response.get_json()["cards"]]


def test_the_seeded_server_gives_the_scenarios_their_cards(fhir_server, tmp_path):
    assert seeder().main([fhir_server, str(SCENARIOS), "--token", TOKEN]) == 0
    settings = load_settings(
        {"CDS_PROFILE": "development", "CDS_DATABASE_URL": f"sqlite:///{tmp_path}/c.sqlite3"}
    )
    core = build_core(settings)
    client = create_app(settings, core).test_client()
    slugs = [
        "folic-acid-with-b12-118-megaloblastic",
        "long-term-metformin",
        "nitrous-oxide-with-paraesthesia",
    ]
    try:
        for slug in slugs:
            request = load_json(SCENARIOS / slug / "request.json")
            service = load_json(SCENARIOS / slug / "scenario.json")["service"]
            expected = load_json(SCENARIOS / slug / "expected.json")
            fetched = dict(request, fhirServer=fhir_server)
            del fetched["prefetch"]  # everything comes from the seeded server
            fetched["fhirAuthorization"] = {
                "access_token": TOKEN,
                "token_type": "Bearer",
                "expires_in": 300,
                "scope": "patient/*.read",
                "subject": "cds-service",
            }
            answer = client.post(f"/cds-services/{service}", json=fetched, headers=AT)
            assert cards(answer) == [
                (c["source"]["topic"]["code"], c["indicator"]) for c in expected["cards"]
            ], slug
            assert cards(answer), slug
    finally:
        core.fetcher.close()
