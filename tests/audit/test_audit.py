"""``cds-service audit``: its counts are the service's answers summed over the population (the
same patients sent through the HTTP service), whatever the executor; it streams through
partitions; its output holds counts only."""

from __future__ import annotations

import gzip
import io
import json
import logging
import shutil
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from cds_service import cli
from cds_service.audit.evaluate import chart_as_of, folic_acid_reorder
from cds_service.audit.ndjson import Chunk, chunks, lines, patient_key
from cds_service.audit.partition import partition_of
from cds_service.audit.report import write_outputs
from cds_service.audit.run import AuditOptions, Progress, run_audit
from cds_service.audit.tally import ANY_RULE
from cds_service.cdshooks.application import CdsApplication
from cds_service.cdshooks.tally import InvocationTally
from cds_service.config import load_settings
from cds_service.domain.policy import Policy
from cds_service.storage import open_store
from cds_service.web import create_app
from hooks import registry

from .conftest import AS_OF, PATIENTS

#: A frequent rule made silent, so that the silent counts are compared too.
POLICY = Policy.from_mapping({"rules": {"b12-screening-due": {"mode": "silent"}}})


def read_population(folder: Path) -> dict[str, list[dict[str, Any]]]:
    by_patient: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(folder.glob("*.ndjson")):
        for line in path.read_text(encoding="utf-8").splitlines():
            resource = json.loads(line)
            by_patient.setdefault(patient_key(resource), []).append(resource)
    return by_patient


def prefetch_for(service, chart: list[dict[str, Any]], patient_id: str) -> dict[str, Any]:
    """What an EHR would prefetch for each of the service's templates (type, code, status)."""
    prefetch: dict[str, Any] = {}
    for key, declared in service.prefetch.items():
        path, _, query = declared.template.partition("?")
        kind = path.split("/")[0]
        if not query:
            prefetch[key] = next(r for r in chart if r["resourceType"] == kind)
            continue
        params = parse_qs(query)
        codes = {c.split("|")[-1] for c in ",".join(params.get("code", [])).split(",") if c}
        statuses = set(",".join(params.get("status", [])).split(",")) - {""}
        entries = [
            {"resource": r}
            for r in chart
            if r["resourceType"] == kind
            and (not codes or {c["code"] for c in r["code"]["coding"]} & codes)
            and (not statuses or r.get("status") in statuses)
        ]
        prefetch[key] = {"resourceType": "Bundle", "type": "searchset", "entry": entries}
    return prefetch


def service_answers(population: Path, tmp_path: Path) -> tuple[Counter, Counter, dict]:
    """Every patient through the HTTP service: cards per (hook, rule, indicator, mode)."""
    url = f"sqlite:///{tmp_path}/ledger.sqlite3"
    settings = load_settings({"CDS_PROFILE": "development", "CDS_DATABASE_URL": url})
    store = open_store(url)
    core = CdsApplication(
        registry=registry(),
        store=store,
        policy=POLICY,
        clock=lambda: AS_OF,
        tally=InvocationTally(store, flush_every=1),
    )
    client = create_app(settings, core).test_client()
    services = {s.hook.value: s for s in core.registry}
    counts: Counter = Counter()
    invocations: Counter = Counter()
    for number, (patient_id, resources) in enumerate(sorted(read_population(population).items())):
        chart = chart_as_of(resources, AS_OF)
        calls = [("patient-view", {"patientId": patient_id, "userId": "Practitioner/1"})]
        draft = folic_acid_reorder(chart, patient_id, AS_OF)
        if draft is not None:
            bundle = {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": draft}],
            }
            context = {"patientId": patient_id, "userId": "Practitioner/1", "draftOrders": bundle}
            calls.append(("order-sign", context))
        for hook, context in calls:
            service = services[hook]
            body = {
                "hook": hook,
                "hookInstance": f"audit-test-{number}-{hook}",
                "context": context,
                "prefetch": prefetch_for(service, chart, patient_id),
            }
            response = client.post(f"/cds-services/{service.id}", json=body)
            assert response.status_code == 200, response.get_data(as_text=True)
            cards = response.get_json()["cards"]
            invocations[hook] += 1
            for card in cards:
                counts[(hook, card["source"]["topic"]["code"], card["indicator"], "active")] += 1
    # Silent findings never reach a response: they are in the ledger, marked silent.
    silent = {r.rule_id: r.silent for r in core.feedback_report() if r.silent}
    return counts, invocations, silent


def audit(population: Path, **kw) -> Any:
    options = AuditOptions(inputs=[str(population)], as_of=AS_OF, policy=POLICY, **kw)
    return run_audit(options)


@pytest.fixture(scope="module")
def local_result(population):
    return audit(population, workers=2, partitions=5, chunk_bytes=64 * 1024)


def per_rule(result) -> Counter:
    return Counter(
        {k: v for k, v in result.tally.patients.items() if k[1] != ANY_RULE and k[3] == "active"}
    )


def test_audit_counts_equal_the_sum_of_the_service_answers(population, local_result, tmp_path):
    counts, invocations, silent = service_answers(population, tmp_path)
    assert per_rule(local_result) == counts
    assert dict(local_result.tally.invocations) == dict(invocations)
    audit_silent = Counter()
    for (hook, rule_id, _, mode), n in local_result.tally.patients.items():
        if mode == "silent":
            audit_silent[rule_id] += n
    assert dict(audit_silent) == silent
    assert silent["b12-screening-due"] > 0  # the silent rule was evaluated
    # Not a vacuous comparison: the population exercises both hooks and several rules.
    assert local_result.tally.population == PATIENTS
    assert invocations["order-sign"] > 0
    assert len({k[1] for k in counts}) >= 5


def test_one_process_and_several_give_the_same_counts(population, local_result):
    single = audit(population, workers=1, partitions=3)
    assert single.tally.patients == local_result.tally.patients
    assert single.tally.invocations == local_result.tally.invocations


def test_the_dask_path_gives_the_same_counts_as_the_local_one(population, local_result, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        result = audit(
            population,
            scheduler=cluster.scheduler_address,
            workdir=str(tmp_path / "shared"),
            partitions=5,
            chunk_bytes=64 * 1024,
        )
    assert result.backend == "dask"
    assert result.tally.patients == local_result.tally.patients
    assert result.tally.invocations == local_result.tally.invocations
    assert result.tally.counts == local_result.tally.counts


def test_gzip_exports_give_the_same_counts(population, local_result, tmp_path):
    for path in population.glob("*.ndjson"):
        with open(path, "rb") as src, gzip.open(tmp_path / (path.name + ".gz"), "wb") as dst:
            shutil.copyfileobj(src, dst)
    result = audit(tmp_path, workers=2, partitions=4)
    assert result.tally.patients == local_result.tally.patients


def test_resources_are_grouped_through_partition_files(population, tmp_path):
    """Each patient's resources are in one partition file set, whatever chunk they came from:
    the evaluation holds one partition at a time, never the whole export."""
    workdir = tmp_path / "work"
    audit(population, workers=1, partitions=4, chunk_bytes=32 * 1024, workdir=str(workdir))
    parts = sorted(workdir.glob("part-*"))
    assert 1 < len(parts) <= 4
    seen: dict[str, str] = {}
    for part in parts:
        assert len(list(part.glob("chunk-*.ndjson"))) > 1  # several chunks wrote to it
        for path in part.glob("chunk-*.ndjson"):
            for line in path.read_bytes().splitlines():
                key = line.split(b"\t", 1)[0].decode()
                assert seen.setdefault(key, part.name) == part.name
                assert partition_of(key, 4) == int(part.name.removeprefix("part-"))
    assert len(seen) == PATIENTS
    biggest = max(sum(p.stat().st_size for p in part.iterdir()) for part in parts)
    total = sum(p.stat().st_size for p in population.iterdir())
    assert biggest < total / 2


@pytest.mark.parametrize("size", [1, 7, 64, 1000, 10**6])
def test_chunks_read_every_line_exactly_once(tmp_path, size):
    path = tmp_path / "Observation.ndjson"
    written = [json.dumps({"n": i, "pad": "x" * (i % 13)}).encode() for i in range(300)]
    path.write_bytes(b"\n".join(written) + b"\n\n")
    got = [line for chunk in chunks([path], size) for line in lines(chunk)]
    assert got == written


def test_a_gzip_file_is_one_chunk(tmp_path):
    path = tmp_path / "Patient.ndjson.gz"
    with gzip.open(path, "wb") as stream:
        stream.write(b'{"a": 1}\r\n\n{"b": 2}')
    (only,) = chunks([path], 1)
    assert only == Chunk(0, str(path), 0, -1)
    assert list(lines(only)) == [b'{"a": 1}', b'{"b": 2}']


@pytest.mark.parametrize(
    "resource, key",
    [
        ({"resourceType": "Patient", "id": "p1"}, "p1"),
        ({"resourceType": "Observation", "subject": {"reference": "Patient/p1"}}, "p1"),
        (
            {"resourceType": "Condition", "subject": {"reference": "https://x/fhir/Patient/p2"}},
            "p2",
        ),
        (
            {
                "resourceType": "MedicationStatement",
                "subject": {"reference": "Patient/p3/_history/2"},
            },
            "p3",
        ),
        ({"resourceType": "Observation", "subject": {"reference": "Group/g1"}}, None),
        ({"resourceType": "Observation", "subject": {"reference": "NotPatient/x"}}, None),
        ({"resourceType": "Observation"}, None),
        ({"resourceType": "Patient", "id": 5}, None),
        ([], None),
    ],
)
def test_the_patient_a_resource_belongs_to(resource, key):
    assert patient_key(resource) == key


def test_bad_lines_are_counted_not_fatal(population, tmp_path, caplog):
    for path in population.glob("*.ndjson"):
        shutil.copy(path, tmp_path / path.name)
    with open(tmp_path / "Observation.ndjson", "a", encoding="utf-8") as stream:
        stream.write("{not json\n")
        stream.write('{"resourceType": "Observation", "id": "orphan"}\n')
        stream.write('{"resourceType": "Observation", "subject": {"reference": "Patient/ghost"}}\n')
        stream.write('{"resourceType": "Encounter", "subject": {"reference": "Patient/x"}}\n')
        stream.write("[1, 2]\n")
        malformed = {
            "resourceType": "Observation",
            "id": "malformed-obs",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2132-9"}]},
            "subject": {"reference": "Patient/synth-00000001"},
            "effectiveDateTime": "2026-06-01",
            "valueQuantity": {"value": "one hundred", "unit": "ng/L"},
        }
        stream.write(json.dumps(malformed) + "\n")
    caplog.set_level(logging.INFO)
    result = audit(tmp_path, workers=1, partitions=2)
    assert "malformed-obs" not in caplog.text  # counted, not logged
    counts = result.tally.counts
    assert counts["resources_skipped_malformed"] == 1
    assert counts["unreadable_lines"] == 1
    assert counts["resources_without_patient"] == 1
    assert counts["resources_of_absent_patient"] == 1
    assert counts["other_resources"] == 2
    assert result.tally.population == PATIENTS


def test_output_holds_counts_only_and_no_patient_id(population, local_result, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    ids = set(read_population(population))
    paths = write_outputs(local_result, POLICY, tmp_path / "out")
    texts = {kind: path.read_text(encoding="utf-8") for kind, path in paths.items()}
    result = audit(population, workers=1, partitions=2)  # logs captured in this process
    texts["log"] = caplog.text
    for kind, text in texts.items():
        assert not [i for i in ids if i in text], kind
    summary = json.loads(texts["json"])
    assert summary["population"]["patients"] == PATIENTS
    assert summary["rule_modes"] == {"b12-screening-due": "silent"}
    header, *rows = texts["csv"].splitlines()
    assert header.split(",") == [
        "hook",
        "rule_id",
        "indicator",
        "mode",
        "patients",
        "per_1000_patients",
        "per_1000_invocations",
    ]
    assert len(rows) == len(summary["rows"]) == len(result.tally.patients)
    assert texts["svg"].startswith("<?xml") and 'class="audit-chart"' in texts["svg"]
    assert "<script" not in texts["svg"]
    view = next(r for r in summary["rows"] if r["hook"] == "patient-view" and r["patients"] > 1)
    assert view["per_1000_patients"] == round(1000 * view["patients"] / PATIENTS, 2)


def test_the_worklist_is_written_only_when_asked_for(population, tmp_path):
    worklist = tmp_path / "worklist.csv"
    result = audit(population, workers=1, partitions=3, worklist=str(worklist))
    header, *rows = worklist.read_text(encoding="utf-8").splitlines()
    assert header == "patient_id,hook,rule_id,indicator,mode"
    ids = set(read_population(population))
    assert {row.split(",")[0] for row in rows} <= ids
    expected = sum(n for k, n in result.tally.patients.items() if k[1] != ANY_RULE)
    assert len(rows) == expected


def test_cli_audit_and_synth(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CDS_SITE_POLICY", raising=False)
    assert (
        cli.main(
            [
                "synth",
                "--patients",
                "60",
                "--out",
                str(tmp_path / "pop"),
                "--as-of",
                "2026-06-15",
                "--gzip",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in (tmp_path / "pop").iterdir()) == [
        f"{kind}.ndjson.gz"
        for kind in sorted(
            ["Patient", "Observation", "MedicationStatement", "MedicationRequest", "Condition"]
        )
    ]
    capsys.readouterr()
    args = [
        "audit",
        str(tmp_path / "pop"),
        "--out",
        str(tmp_path / "out"),
        "--as-of",
        "2026-06-15",
        "--workers",
        "1",
    ]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("60 patients as of 2026-06-15")
    assert {p.name for p in (tmp_path / "out").iterdir()} == {
        "audit.csv",
        "audit.json",
        "audit.svg",
    }
    assert cli.main(["audit", str(tmp_path / "nothing"), "--out", str(tmp_path / "o2")]) == 2


def test_the_progress_bar_is_drawn_only_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    pipe, terminal = io.StringIO(), Terminal()
    for stream in (pipe, terminal):
        bar = Progress(stream)
        bar.start("reading", 2)
        bar.step()
        bar.step()
        bar.done()
    assert pipe.getvalue() == ""
    assert "reading [" in terminal.getvalue() and "2/2" in terminal.getvalue()


def test_the_audit_leaves_the_services_skip_log_alone(population, caplog):
    """The audit counts malformed resources instead of logging their ids; the service in the
    same process still logs them."""
    from cds_service.fhir.extract import extract_facts

    audit(population, workers=1, partitions=2)
    caplog.set_level(logging.INFO)
    bad = {"resourceType": "Observation", "id": "bad", "status": "final", "code": "x"}
    extract_facts([bad], (), patient_id="p")
    assert any(r.getMessage() == "resource skipped" for r in caplog.records)
