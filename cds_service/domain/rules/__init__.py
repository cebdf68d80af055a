"""The registry: one module per rule, named after its id, each exposing ``RULE``.

The order below is the tie-break order of cards of equal urgency: what protects the patient
now first, then treatment quality, then testing, then data quality. ``registry`` refuses a
duplicate id or a supersession that names no rule, so a mistake here fails at import.
"""

from __future__ import annotations

from ..rule import Rule, registry
from . import (
    b12_assay_interference,
    b12_cause_workup,
    b12_deficiency_untreated,
    b12_indeterminate,
    b12_lifelong_therapy,
    b12_normal_but_symptomatic,
    b12_regimen_check,
    b12_retest_on_treatment,
    b12_screening_due,
    b12_treatment_monitoring,
    cyanocobalamin_renal,
    folate_before_b12,
    lab_unit_unrecognised,
    nitrous_oxide_b12,
    pregnancy_b12,
)

ALL_RULES: tuple[Rule, ...] = registry(
    (
        folate_before_b12.RULE,
        b12_deficiency_untreated.RULE,
        nitrous_oxide_b12.RULE,
        b12_treatment_monitoring.RULE,
        cyanocobalamin_renal.RULE,
        b12_regimen_check.RULE,
        b12_lifelong_therapy.RULE,
        pregnancy_b12.RULE,
        b12_indeterminate.RULE,
        b12_normal_but_symptomatic.RULE,
        b12_screening_due.RULE,
        b12_cause_workup.RULE,
        b12_retest_on_treatment.RULE,
        b12_assay_interference.RULE,
        lab_unit_unrecognised.RULE,
    )
)
