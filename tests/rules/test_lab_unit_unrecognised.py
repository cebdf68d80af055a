import pytest

from cds_service.domain.rules import lab_unit_unrecognised as rule
from cds_service.domain.vocabulary import Indicator
from tests.builders import Analyte, b12, folic_acid_draft, lab, run


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


# --- values that cannot be interpreted, not only units -----------------------------------------
def test_b12_reported_as_see_comment_is_reported_never_silently_dropped():
    finding = run(rule, lab(Analyte.TOTAL_B12, None, None, text="see comment", rid="Observation/t"))
    assert finding.summary == "B12 result 'see comment' could not be interpreted."
    assert "Observation/t" in finding.detail
    assert finding.indicator is Indicator.INFO


@pytest.mark.parametrize(
    "result",
    [
        b12(300, comparator=">"),  # above something below the 350 ng/L "unlikely" cut-off
        b12(250, "pmol/L", comparator=">"),
        lab(Analyte.ACTIVE_B12, 50, comparator=">"),
        lab(Analyte.MMA, 400, comparator="<"),  # below a value above the 271 limit
    ],
    ids=[">300 ng/L", ">250 pmol/L", "active >50", "MMA <400"],
)
def test_a_limit_that_settles_no_band_is_reported_with_its_sign(result):
    finding = run(rule, result)
    assert finding is not None
    assert f"result {result.comparator}" in finding.summary


@pytest.mark.parametrize(
    "result",
    [b12(150, comparator="<"), b12(400, comparator=">"), lab(Analyte.MMA, 500, comparator=">")],
    ids=["<150 ng/L", ">400 ng/L", "MMA >500"],
)
def test_a_limit_that_settles_the_band_is_not_reported(result):
    assert run(rule, result) is None


def test_an_uninterpretable_b12_beside_a_folate_draft_is_a_warning_about_that_order():
    folate = folic_acid_draft(5, rid="MedicationRequest/fa")
    finding = run(rule, lab(Analyte.TOTAL_B12, None, None, text="see comment"), folate)
    assert finding.indicator is Indicator.WARNING
    assert finding.concerns == {"MedicationRequest/fa"}
    assert "MedicationRequest/fa" in finding.detail


def test_summary_of_a_long_text_value_stays_under_140_characters():
    finding = run(rule, lab(Analyte.TOTAL_B12, None, None, text="x" * 300))
    assert len(finding.summary) < 140
