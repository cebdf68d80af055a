"""One module per rule of rule book §3, named after its id.

Each module defines ``ID``, ``TITLE``, ``SOURCES`` (``domain.sources.Source``), ``SETTINGS``
(the site-policy keys it reads, for ``cds-service rules``), ``INDICATORS`` (the urgencies its
cards can have) and ``evaluate(picture)`` returning a ``Finding`` or ``None``. The order below
is the tie-break order of cards of equal urgency: what protects the patient now first, then
treatment quality, then testing, then data quality.
"""

from __future__ import annotations

from types import ModuleType

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

ALL_RULES: tuple[ModuleType, ...] = (
    folate_before_b12,
    b12_deficiency_untreated,
    nitrous_oxide_b12,
    b12_treatment_monitoring,
    cyanocobalamin_renal,
    b12_regimen_check,
    b12_lifelong_therapy,
    pregnancy_b12,
    b12_indeterminate,
    b12_normal_but_symptomatic,
    b12_screening_due,
    b12_cause_workup,
    b12_retest_on_treatment,
    b12_assay_interference,
    lab_unit_unrecognised,
)
