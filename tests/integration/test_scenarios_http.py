"""Every scenario over real HTTP: gunicorn (development profile) answers each request.json with
its expected.json when told the scenario's evaluation time (header ``CDS-Evaluation-Time``)."""

from __future__ import annotations

import pytest
import requests

from tests.conftest import FIXTURES, load_json
from tests.integration.server import running_service
from tests.scenarios.build import strip_uuids

pytestmark = pytest.mark.integration

SCENARIO_DIR = FIXTURES / "scenarios"
SLUGS = sorted(p.name for p in SCENARIO_DIR.iterdir() if p.is_dir())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_service(tmp_path_factory.mktemp("scenarios")) as (base, _log_path):
        yield base


@pytest.mark.parametrize("slug", SLUGS)
def test_scenario_over_http(server, slug):
    folder = SCENARIO_DIR / slug
    meta = load_json(folder / "scenario.json")
    response = requests.post(
        f"{server}/cds-services/{meta['service']}",
        data=(folder / "request.json").read_bytes(),
        headers={"Content-Type": "application/json", "CDS-Evaluation-Time": meta["evaluationTime"]},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert strip_uuids(response.json()) == load_json(folder / "expected.json")
