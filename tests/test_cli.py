"""``cds-service``: evaluate prints what the HTTP call answers; rules lists the catalogue;
feedback-report summarises per rule."""

from __future__ import annotations

import json

import pytest

from cds_service import cli
from cds_service.storage import IssuedCard, open_store
from tests.builders import NOW
from tests.conftest import FIXTURES
from tests.test_conformance import folate_request


def strip_uuids(data):
    if isinstance(data, dict):
        return {k: strip_uuids(v) for k, v in data.items() if k != "uuid"}
    if isinstance(data, list):
        return [strip_uuids(v) for v in data]
    return data


def test_evaluate_prints_the_same_answer_as_http(tmp_path, capsys, monkeypatch, client):
    monkeypatch.setenv("CDS_DATABASE_URL", f"sqlite:///{tmp_path}/cli.sqlite3")
    request = tmp_path / "request.json"
    request.write_text(json.dumps(folate_request()))
    assert cli.main(["evaluate", str(request), "--now", NOW.isoformat()]) == 0
    printed = json.loads(capsys.readouterr().out)
    over_http = client.post("/cds-services/b12-order-sign", json=folate_request()).get_json()
    assert strip_uuids(printed) == strip_uuids(over_http)


def test_evaluate_a_sandbox_capture(capsys):
    assert cli.main(["evaluate", str(FIXTURES / "sandbox" / "patient-view.request.json")]) == 0
    assert json.loads(capsys.readouterr().out) == {"cards": []}


def test_evaluate_prints_an_operation_outcome_for_a_bad_request(tmp_path, capsys):
    request = tmp_path / "bad.json"
    request.write_text(json.dumps({"hook": "order-sign"}))
    assert cli.main(["evaluate", str(request), "--service", "b12-order-sign"]) == 1
    assert json.loads(capsys.readouterr().out)["resourceType"] == "OperationOutcome"


def test_rules_lists_every_rule_with_sources_and_settings(capsys):
    from cds_service.domain.rules import ALL_RULES

    assert cli.main(["rules", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [e["id"] for e in entries] == [r.id for r in ALL_RULES]
    assert all(e["sources"] and e["title"] for e in entries)


def test_rules_shows_site_policy_in_effect(tmp_path, capsys, monkeypatch):
    policy = tmp_path / "policy.yaml"
    policy.write_text("windows:\n  lookback_months: 18\n")
    monkeypatch.setenv("CDS_SITE_POLICY", str(policy))
    assert cli.main(["rules"]) == 0
    assert "windows.lookback_months = 18" in capsys.readouterr().out


def test_feedback_report_counts_per_rule(tmp_path, capsys, monkeypatch):
    url = f"sqlite:///{tmp_path}/report.sqlite3"
    monkeypatch.setenv("CDS_DATABASE_URL", url)
    store = open_store(url)
    store.record_cards(
        [IssuedCard("c1", "b12-order-sign", "folate-before-b12", "critical", "h", NOW)]
    )
    from cds_service.storage import FeedbackRecord

    store.record_feedback(
        "b12-order-sign",
        [
            FeedbackRecord(
                "c1",
                "overridden",
                NOW,
                override_code="x",
                override_display="B12 already given elsewhere",
            )
        ],
        NOW,
    )
    assert cli.main(["feedback-report"]) == 0
    out = capsys.readouterr().out
    assert "folate-before-b12" in out and "B12 already given elsewhere (1)" in out


def test_bad_configuration_exits_2_with_the_setting_named(monkeypatch, capsys):
    monkeypatch.setenv("CDS_PROFILE", "staging")
    assert cli.main(["rules"]) == 2
    assert "CDS_PROFILE" in capsys.readouterr().err


def test_version_is_printed(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("cds-service ")


def test_a_wrong_service_lists_the_valid_ids(capsys):
    request = "fixtures/scenarios/long-term-metformin/request.json"
    assert cli.main(["evaluate", request, "--service", "b12-nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown service 'b12-nope'" in err and "b12-order-sign" in err


def test_a_request_that_is_not_an_object_says_so(tmp_path, capsys):
    path = tmp_path / "request.json"
    path.write_text("[]", encoding="utf-8")
    assert cli.main(["evaluate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "not a CDS Hooks request" in err and "--service" not in err


def test_bad_json_names_line_and_column(tmp_path, capsys):
    path = tmp_path / "request.json"
    path.write_text('{\n  "hook": "order-sign",\n  oops\n}', encoding="utf-8")
    assert cli.main(["evaluate", str(path)]) == 2
    assert "line 3, column 3" in capsys.readouterr().err


def test_evaluate_into_a_closed_pipe_ends_quietly(tmp_path):
    import subprocess
    import sys

    request = "fixtures/scenarios/folic-acid-with-b12-118-megaloblastic/request.json"
    command = (
        f"{sys.executable} -m cds_service.cli evaluate {request} --now 2026-06-15T12:00:00Z"
        " | head -c 10 >/dev/null"
    )
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, timeout=60
    )
    assert "Traceback" not in result.stderr and "BrokenPipeError" not in result.stderr


def test_trusted_clients_json_error_names_line_and_column(tmp_path):
    from cds_service.config import ConfigError, load_file

    path = tmp_path / "clients.json"
    path.write_text('{"clients": [\n  {"issuer": "x",}\n]}', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"line 2, column 18"):
        load_file(path, "CDS_TRUSTED_CLIENTS")


def test_trusted_clients_yaml_error_names_line_and_column(tmp_path):
    from cds_service.config import ConfigError, load_file

    path = tmp_path / "clients.yaml"
    path.write_text("clients:\n  - issuer: x\n   jwks_url: [\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"line \d+, column \d+"):
        load_file(path, "CDS_TRUSTED_CLIENTS")
