"""The synthetic population: seeded, documented, and covering what the rules need."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from cds_service.audit.synth import PREVALENCE, write_population
from cds_service.domain.vocabulary import ConditionKind, DrugClass
from cds_service.fhir.extract import extract_facts

from .conftest import AS_OF, PATIENTS
from .test_audit import read_population

ROOT = Path(__file__).resolve().parents[2]


def test_the_same_seed_writes_the_same_population(tmp_path):
    write_population(tmp_path / "a", 50, seed=3, as_of=AS_OF)
    write_population(tmp_path / "b", 50, seed=3, as_of=AS_OF)
    write_population(tmp_path / "c", 80, seed=3, as_of=AS_OF)
    write_population(tmp_path / "d", 50, seed=4, as_of=AS_OF)
    for name in ("Patient.ndjson", "Observation.ndjson"):
        a = (tmp_path / "a" / name).read_text()
        assert a == (tmp_path / "b" / name).read_text()
        assert (tmp_path / "c" / name).read_text().startswith(a)  # a prefix of a larger one
        assert a != (tmp_path / "d" / name).read_text()


def test_the_population_has_what_the_rules_read(population):
    drugs: Counter = Counter()
    conditions: Counter = Counter()
    units: Counter = Counter()
    sexes: Counter = Counter()
    for patient_id, resources in read_population(population).items():
        facts = extract_facts(resources, (), patient_id=patient_id).facts
        sexes[facts.patient.sex.value] += 1
        for m in facts.medications:
            drugs.update(m.classes)
        for c in facts.conditions:
            conditions.update(c.kinds)
        units.update(lab.unit for lab in facts.labs if lab.analyte.name == "TOTAL_B12")
    assert sum(sexes.values()) == PATIENTS and len(sexes) == 2
    for drug in (DrugClass.METFORMIN, DrugClass.PPI, DrugClass.FOLIC_ACID):
        assert drugs[drug] > 0, drug
    assert drugs[DrugClass.HYDROXOCOBALAMIN] > 0
    for kind in (ConditionKind.TYPE2_DIABETES, ConditionKind.PREGNANCY):
        assert conditions[kind] > 0, kind
    assert units["ng/L"] > 0 and units["pmol/L"] > 0


def test_rare_cases_appear_in_a_larger_population(tmp_path):
    write_population(tmp_path, 3000, seed=16, as_of=AS_OF)
    conditions: Counter = Counter()
    for patient_id, resources in read_population(tmp_path).items():
        for c in extract_facts(resources, (), patient_id=patient_id).facts.conditions:
            conditions.update(c.kinds)
    assert conditions[ConditionKind.PERNICIOUS_ANAEMIA] > 0
    assert conditions[ConditionKind.BARIATRIC_SURGERY] > 0


def test_every_prevalence_is_documented_with_its_source():
    doc = (ROOT / "docs" / "go-live.md").read_text(encoding="utf-8")
    for name, rate in PREVALENCE.items():
        assert 0 < rate.value < 1, name
        assert rate.source, name
        assert f"`{name}`" in doc, f"{name} is not in docs/go-live.md"
