import pytest

from cds_service.domain.rules import lab_unit_unrecognised as rule
from cds_service.domain.vocabulary import Indicator
from tests.builders import Analyte, b12, lab, run


def test_b12_in_mg_is_reported_with_value_and_unit():
    finding = run(rule, b12(0.2, "mg", rid="Observation/odd"))
    assert finding.indicator is Indicator.INFO
    assert finding.summary == "B12 result 0.2 (unit 'mg') could not be interpreted."
    assert "Observation/odd" in finding.detail


def test_b12_without_unit_is_reported():
    finding = run(rule, lab(Analyte.TOTAL_B12, 250, None))
    assert "(no unit)" in finding.summary


@pytest.mark.parametrize("unit", ["pg/mL", "ng/L", "ng/mL", "pmol/L", "ng/ml"])
def test_recognised_b12_units_are_silent(unit):
    assert run(rule, b12(250, unit)) is None


def test_stale_result_is_not_reported():
    assert run(rule, b12(0.2, "mg", days=400)) is None


def test_mma_in_unknown_unit_is_reported():
    assert run(rule, lab(Analyte.MMA, 3, "mg/L")).summary.startswith("MMA result 3")
