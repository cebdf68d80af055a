"""Every clinical scenario, in Python (docs/rulebook.md; docs/architecture.md "Fixtures are
scenarios").

Boundary pairs are named for the boundary (``metformin-4-months-no-b12`` /
``metformin-3-months-no-b12``): the first fires the rule, the second sits just outside it.
Patient stories combine rules. Every date is relative to the scenario's evaluation time
(``kit.EVALUATION_TIME``, 2026-06-15T12:00:00Z), so a fixture gives the same answer next year.

``rules`` is what the cards must show, in card order (most urgent first). The generator fails
when the service disagrees, so a change in behaviour is a decision, not an accident.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from tests import fhirjson as fj

from .kit import (
    AMOXICILLIN,
    ATORVASTATIN,
    BARIATRIC,
    CKD_3B,
    CYANOCOBALAMIN_IM,
    CYANOCOBALAMIN_ORAL_500,
    CYANOCOBALAMIN_ORAL_1000,
    EVALUATION_TIME,
    FOLIC_ACID_5MG,
    FOLIC_ACID_100UG,
    FOLIC_ACID_400UG,
    HYDROXOCOBALAMIN_IM,
    MEGALOBLASTIC_ANAEMIA,
    METFORMIN,
    METHOTREXATE_WEEKLY,
    NITROUS_OXIDE,
    NITROUS_OXIDE_USE,
    OMEPRAZOLE,
    ORDER_SELECT,
    ORDER_SIGN,
    PARAESTHESIA,
    PATIENT_VIEW,
    PERIPHERAL_NEUROPATHY,
    PERNICIOUS_ANAEMIA,
    PREGNANCY,
    RHEUMATOID_ARTHRITIS,
    TYPE2_DIABETES,
    Chart,
    Scenario,
    When,
    epic_shape,
)

SCENARIOS: list[Scenario] = []

Builder = Callable[[When], "Chart | dict[str, Any]"]


def scenario(
    slug: str,
    *,
    title: str,
    shows: str,
    service: str,
    rules: tuple[str, ...] = (),
    evaluation_time: datetime = EVALUATION_TIME,
) -> Callable[[Builder], Builder]:
    def register(build: Builder) -> Builder:
        SCENARIOS.append(
            Scenario(
                slug, title, " ".join(shows.split()), service, tuple(rules), build, evaluation_time
            )
        )
        return build

    return register


# Rule ids, spelled once.
FOLATE = "folate-before-b12"
UNTREATED = "b12-deficiency-untreated"
NITROUS = "nitrous-oxide-b12"
MONITORING = "b12-treatment-monitoring"
RENAL = "cyanocobalamin-renal"
REGIMEN = "b12-regimen-check"
LIFELONG = "b12-lifelong-therapy"
PREGNANCY_RULE = "pregnancy-b12"
INDETERMINATE = "b12-indeterminate"
NORMAL_SYMPTOMATIC = "b12-normal-but-symptomatic"
SCREENING = "b12-screening-due"
CAUSE = "b12-cause-workup"
RETEST = "b12-retest-on-treatment"
INTERFERENCE = "b12-assay-interference"
UNIT = "lab-unit-unrecognised"


def normal_blood_count(c: Chart) -> None:
    c.blood_count(13.6, 91)


# =============================================================================================
# Total B12, mass units: 179.9 deficient, 180 and 350 indeterminate, 350.1 unlikely (section 2)
# =============================================================================================
def _total_b12_only(pid: str, value: float, unit: str = "ng/L") -> Builder:
    def build(t: When) -> Chart:
        c = Chart(t, pid, age=52)
        c.b12(value, unit)
        normal_blood_count(c)
        c.egfr(88)
        return c

    return build


scenario(
    "b12-179-9-ng-l-deficient",
    service=PATIENT_VIEW,
    rules=(UNTREATED, CAUSE),
    title="Total B12 179.9 ng/L: deficient",
    shows="""Total B12 179.9 ng/L is just below the NICE 180 ng/L limit: deficiency is confirmed,
    treatment is offered, and with no known cause a cause work-up is suggested.""",
)(_total_b12_only("pat-b12-179", 179.9))

scenario(
    "b12-180-ng-l-indeterminate",
    service=PATIENT_VIEW,
    rules=(INDETERMINATE,),
    title="Total B12 180 ng/L: indeterminate",
    shows="""Total B12 of exactly 180 ng/L is indeterminate, not deficient: the card asks for MMA
    (or active B12) before deciding.""",
)(_total_b12_only("pat-b12-180", 180))

scenario(
    "b12-350-ng-l-indeterminate",
    service=PATIENT_VIEW,
    rules=(INDETERMINATE,),
    title="Total B12 350 ng/L: still indeterminate",
    shows="Total B12 of exactly 350 ng/L is the top of the indeterminate band: check MMA.",
)(_total_b12_only("pat-b12-350", 350))

scenario(
    "b12-350-1-ng-l-unlikely",
    service=PATIENT_VIEW,
    rules=(),
    title="Total B12 350.1 ng/L: deficiency unlikely",
    shows="""Total B12 350.1 ng/L with a normal blood count and no symptoms: deficiency unlikely,
    no card.""",
)(_total_b12_only("pat-b12-350-1", 350.1))

# Molar units have their own NICE pair (133 / 258 pmol/L): never converted then compared.
scenario(
    "b12-132-9-pmol-l-deficient",
    service=PATIENT_VIEW,
    rules=(UNTREATED, CAUSE),
    title="Total B12 132.9 pmol/L: deficient",
    shows="""A molar total B12 of 132.9 pmol/L is compared with the molar limit 133 pmol/L:
    deficient (the card shows it in both units).""",
)(_total_b12_only("pat-b12-132", 132.9, "pmol/L"))

scenario(
    "b12-133-pmol-l-indeterminate",
    service=PATIENT_VIEW,
    rules=(INDETERMINATE,),
    title="Total B12 133 pmol/L: indeterminate",
    shows="""133 pmol/L is indeterminate against the molar pair, although it converts to
    180.3 ng/L: the value is judged in the unit it was reported in.""",
)(_total_b12_only("pat-b12-133", 133, "pmol/L"))


# =============================================================================================
# Active B12 (holotranscobalamin): 24.9 deficient, 25 and 70 indeterminate, 70.1 unlikely
# =============================================================================================
def _active_b12_only(pid: str, value: float) -> Builder:
    def build(t: When) -> Chart:
        c = Chart(t, pid, age=47, gender="male")
        c.active_b12(value)
        normal_blood_count(c)
        c.egfr(92)
        return c

    return build


scenario(
    "active-b12-24-9",
    service=PATIENT_VIEW,
    rules=(UNTREATED, CAUSE),
    title="Active B12 24.9 pmol/L: deficient",
    shows="Active B12 24.9 pmol/L is below 25 pmol/L: deficiency confirmed, start treatment.",
)(_active_b12_only("pat-active-24", 24.9))

scenario(
    "active-b12-25",
    service=PATIENT_VIEW,
    rules=(INDETERMINATE,),
    title="Active B12 25 pmol/L: indeterminate",
    shows="Active B12 of exactly 25 pmol/L is indeterminate: check MMA before deciding.",
)(_active_b12_only("pat-active-25", 25))

scenario(
    "active-b12-70",
    service=PATIENT_VIEW,
    rules=(INDETERMINATE,),
    title="Active B12 70 pmol/L: indeterminate",
    shows="Active B12 of exactly 70 pmol/L is the top of the indeterminate band: check MMA.",
)(_active_b12_only("pat-active-70", 70))

scenario(
    "active-b12-70-1",
    service=PATIENT_VIEW,
    rules=(),
    title="Active B12 70.1 pmol/L: deficiency unlikely",
    shows="Active B12 70.1 pmol/L with no signs: deficiency unlikely, no card.",
)(_active_b12_only("pat-active-70-1", 70.1))


# =============================================================================================
# b12-normal-but-symptomatic: macrocytosis is MCV > 100 fL
# =============================================================================================
def _normal_b12_with_mcv(pid: str, mcv: float) -> Builder:
    def build(t: When) -> Chart:
        c = Chart(t, pid, age=66)
        c.b12(420)
        c.blood_count(12.8, mcv)
        c.egfr(75)
        return c

    return build


scenario(
    "b12-420-mcv-100-1-macrocytic",
    service=PATIENT_VIEW,
    rules=(NORMAL_SYMPTOMATIC,),
    title="Normal total B12 with MCV 100.1 fL",
    shows="""Total B12 420 ng/L is normal, but MCV 100.1 fL is macrocytic: a normal total B12
    does not exclude deficiency, so MMA is suggested.""",
)(_normal_b12_with_mcv("pat-mcv-100-1", 100.1))

scenario(
    "b12-420-mcv-100",
    service=PATIENT_VIEW,
    rules=(),
    title="Normal total B12 with MCV 100 fL",
    shows="MCV of exactly 100 fL is not macrocytosis: with a normal total B12 there is no card.",
)(_normal_b12_with_mcv("pat-mcv-100", 100))


# =============================================================================================
# b12-screening-due: metformin >= 4 months, acid suppression >= 12 months, age > 75, window
# =============================================================================================
def _metformin_for(pid: str, start: Callable[[When], str]) -> Builder:
    def build(t: When) -> Chart:
        c = Chart(t, pid, age=61, gender="male")
        c.problem(TYPE2_DIABETES, onset=t.years_ago(1))
        c.taking(METFORMIN, start(t))
        normal_blood_count(c)
        c.egfr(81)
        return c

    return build


scenario(
    "metformin-4-months-no-b12",
    service=PATIENT_VIEW,
    rules=(SCREENING,),
    title="Metformin for 4 months, no B12 result",
    shows="""Metformin started 4 months ago (122 days) and no B12 result in the last 12 months:
    check B12 with a blood count.""",
)(_metformin_for("pat-metformin-4", lambda t: t.days_ago(122)))

scenario(
    "metformin-4-calendar-months-no-b12",
    service=PATIENT_VIEW,
    rules=(SCREENING,),
    title="Metformin started exactly 4 calendar months ago, no B12 result",
    shows="""Metformin started on 15 February, evaluated on 15 June: exactly 4 calendar months,
    which meets the 4-month threshold: check B12.""",
)(_metformin_for("pat-metformin-4-calendar", lambda t: t.months_ago(4)))

scenario(
    "metformin-3-months-no-b12",
    service=PATIENT_VIEW,
    rules=(),
    title="Metformin for 3 months, no B12 result",
    shows="""Metformin for 3 months is below the 4-month threshold: no screening card.""",
)(_metformin_for("pat-metformin-3", lambda t: t.months_ago(3)))


def _ppi_for(pid: str, months: int) -> Builder:
    def build(t: When) -> Chart:
        c = Chart(t, pid, age=54)
        c.taking(OMEPRAZOLE, t.months_ago(months))
        normal_blood_count(c)
        return c

    return build


scenario(
    "ppi-12-months",
    service=PATIENT_VIEW,
    rules=(SCREENING,),
    title="Omeprazole for 12 months, no B12 result",
    shows="A proton pump inhibitor for 12 months is a risk factor: check B12.",
)(_ppi_for("pat-ppi-12", 12))

scenario(
    "ppi-11-months",
    service=PATIENT_VIEW,
    rules=(),
    title="Omeprazole for 11 months, no B12 result",
    shows="A proton pump inhibitor for 11 months is not yet a risk factor: no card.",
)(_ppi_for("pat-ppi-11", 11))


def _aged(pid: str, age: int) -> Builder:
    def build(t: When) -> Chart:
        c = Chart(t, pid, age=age)
        normal_blood_count(c)
        return c

    return build


scenario(
    "age-76-no-b12",
    service=PATIENT_VIEW,
    rules=(SCREENING,),
    title="Age 76, no B12 result",
    shows="Age over 75 is a risk factor (AAFP 2017): check B12.",
)(_aged("pat-age-76", 76))

scenario(
    "age-75-no-b12",
    service=PATIENT_VIEW,
    rules=(),
    title="Age 75, no B12 result",
    shows="Age 75 is not over 75: no screening card for age alone.",
)(_aged("pat-age-75", 75))


def _metformin_with_b12_aged(pid: str, days: int) -> Builder:
    def build(t: When) -> Chart:
        c = Chart(t, pid, age=64, gender="male")
        c.problem(TYPE2_DIABETES, onset=t.years_ago(5))
        c.taking(METFORMIN, t.years_ago(5))
        c.b12(410, date=t.days_ago(days))
        normal_blood_count(c)
        return c

    return build


scenario(
    "b12-result-364-days-old",
    service=PATIENT_VIEW,
    rules=(),
    title="Metformin, normal B12 364 days ago",
    shows="""A normal B12 drawn 364 days ago is inside the 12-month look-back window: the patient
    on metformin is up to date, no card.""",
)(_metformin_with_b12_aged("pat-window-364", 364))

scenario(
    "b12-result-367-days-old",
    service=PATIENT_VIEW,
    rules=(SCREENING,),
    title="Metformin, normal B12 367 days ago",
    shows="""A B12 drawn 367 days ago is outside the 12-month window: check B12 again; the card
    quotes the stale value and its date.""",
)(_metformin_with_b12_aged("pat-window-367", 367))


# =============================================================================================
# folate-before-b12
# =============================================================================================
def _folic_acid_with_b12(pid: str, b12: float) -> Builder:
    def build(t: When) -> Chart:
        c = Chart(t, pid, age=58, gender="male")
        c.b12(b12)
        normal_blood_count(c)
        c.draft(FOLIC_ACID_5MG, mid="folic-1")
        return c

    return build


scenario(
    "folic-acid-with-b12-350-indeterminate",
    service=ORDER_SIGN,
    rules=(FOLATE,),
    title="Folic acid ordered with B12 350 ng/L",
    shows="""Folic acid 5 mg ordered while total B12 is 350 ng/L (indeterminate) and untreated:
    warning to settle and treat B12 first.""",
)(_folic_acid_with_b12("pat-folic-350", 350))

scenario(
    "folic-acid-with-b12-350-1",
    service=ORDER_SIGN,
    rules=(),
    title="Folic acid ordered with B12 350.1 ng/L",
    shows="Folic acid with total B12 350.1 ng/L (deficiency unlikely): no card.",
)(_folic_acid_with_b12("pat-folic-350-1", 350.1))


def _folic_acid_dose(pid: str, product: Any) -> Builder:
    def build(t: When) -> Chart:
        c = Chart(t, pid, age=49, gender="male")
        c.b12(250)
        normal_blood_count(c)
        c.draft(product, mid="folic-1")
        return c

    return build


scenario(
    "folic-acid-0-4-mg-daily-with-b12-250",
    service=ORDER_SIGN,
    rules=(FOLATE,),
    title="Folic acid 0.4 mg daily with B12 250 ng/L",
    shows="Folic acid 400 micrograms a day is above 0.1 mg/day: the folate warning applies.",
)(_folic_acid_dose("pat-folic-0-4", FOLIC_ACID_400UG))

scenario(
    "folic-acid-0-1-mg-daily-with-b12-250",
    service=ORDER_SIGN,
    rules=(),
    title="Folic acid 0.1 mg daily with B12 250 ng/L",
    shows="""Folic acid 0.1 mg a day is not above the 0.1 mg/day threshold: no folate card (the
    indeterminate B12 is left for patient-view).""",
)(_folic_acid_dose("pat-folic-0-1", FOLIC_ACID_100UG))


def _folic_acid_no_b12(pid: str, mcv: float) -> Builder:
    def build(t: When) -> Chart:
        c = Chart(t, pid, age=44)
        c.blood_count(11.2, mcv)
        c.draft(FOLIC_ACID_5MG, mid="folic-1")
        return c

    return build


scenario(
    "folic-acid-no-b12-result-mcv-104",
    service=ORDER_SIGN,
    rules=(FOLATE,),
    title="Folic acid ordered, no B12 result, MCV 104 fL",
    shows="""Folic acid ordered for a macrocytic anaemia with no B12 result: test B12 before
    folate can mask it.""",
)(_folic_acid_no_b12("pat-folic-unknown-mcv-104", 104))

scenario(
    "folic-acid-no-b12-result-mcv-92",
    service=ORDER_SIGN,
    rules=(),
    title="Folic acid ordered, no B12 result, MCV 92 fL",
    shows="""B12 status unknown but no macrocytosis and no neurological signs: no folate card.""",
)(_folic_acid_no_b12("pat-folic-unknown-mcv-92", 92))


# =============================================================================================
# b12-cause-workup: deficiency with no known cause and no intrinsic factor antibody result
# =============================================================================================
def _deficient_cause(pid: str, if_antibody: str | None) -> Builder:
    def build(t: When) -> Chart:
        c = Chart(t, pid, age=39)
        c.b12(150)
        c.blood_count(12.4, 97)
        if if_antibody:
            c.coded_result("31444-3", if_antibody)
        return c

    return build


scenario(
    "b12-150-no-known-cause",
    service=PATIENT_VIEW,
    rules=(UNTREATED, CAUSE),
    title="B12 150 ng/L with no known cause",
    shows="""Deficiency with no malabsorption cause, no risk drug and no intrinsic factor antibody
    result: treat, and look for the cause (IF antibodies, H. pylori, coeliac serology).""",
)(_deficient_cause("pat-cause-unknown", None))

scenario(
    "b12-150-if-antibody-negative",
    service=PATIENT_VIEW,
    rules=(UNTREATED,),
    title="B12 150 ng/L, intrinsic factor antibody negative",
    shows="""An intrinsic factor antibody result already exists: the cause work-up card is not
    repeated; only the treatment card shows.""",
)(_deficient_cause("pat-cause-if-negative", "Negative"))


# =============================================================================================
# b12-lifelong-therapy
# =============================================================================================
def _pernicious_anaemia(pid: str, on_therapy: bool) -> Builder:
    def build(t: When) -> Chart:
        c = Chart(t, pid, age=68)
        c.problem(PERNICIOUS_ANAEMIA, onset=t.years_ago(6))
        c.b12(95, date=t.years_ago(6))
        if on_therapy:
            c.taking(HYDROXOCOBALAMIN_IM, t.years_ago(6))
        else:
            c.taking(HYDROXOCOBALAMIN_IM, t.years_ago(6), status="stopped", end=t.months_ago(14))
        normal_blood_count(c)
        return c

    return build


scenario(
    "pernicious-anaemia-b12-stopped",
    service=PATIENT_VIEW,
    rules=(LIFELONG,),
    title="Pernicious anaemia, hydroxocobalamin stopped 14 months ago",
    shows="""Pernicious anaemia with no B12 therapy now: treatment is lifelong, restart the
    maintenance regimen.""",
)(_pernicious_anaemia("pat-pa-stopped", False))

scenario(
    "pernicious-anaemia-on-hydroxocobalamin",
    service=PATIENT_VIEW,
    rules=(),
    title="Pernicious anaemia on 3-monthly hydroxocobalamin",
    shows="Pernicious anaemia on maintenance hydroxocobalamin: nothing to say.",
)(_pernicious_anaemia("pat-pa-treated", True))


@scenario(
    "pernicious-anaemia-b12-stop-order",
    service=ORDER_SIGN,
    rules=(LIFELONG,),
    title="Stopping hydroxocobalamin in pernicious anaemia",
    shows="""A stop order for the hydroxocobalamin of a patient with pernicious anaemia: the
    card says treatment is lifelong and offers the maintenance regimen.""",
)
def _pa_stop_order(t: When) -> Chart:
    c = Chart(t, "pat-pa-stop-order", age=71)
    c.problem(PERNICIOUS_ANAEMIA, onset=t.years_ago(4))
    c.taking(HYDROXOCOBALAMIN_IM, t.years_ago(4))
    normal_blood_count(c)
    c.draft(HYDROXOCOBALAMIN_IM, mid="stop-hydroxo-1", status="stopped")
    return c


# =============================================================================================
# b12-regimen-check
# =============================================================================================
def _oral_b12_on_metformin(pid: str, neuro: bool) -> Builder:
    def build(t: When) -> Chart:
        c = Chart(t, pid, age=63, gender="male")
        c.problem(TYPE2_DIABETES, onset=t.years_ago(7))
        if neuro:
            c.problem(PARAESTHESIA, onset=t.months_ago(2))
        c.taking(METFORMIN, t.years_ago(7))
        c.b12(150)
        normal_blood_count(c)
        c.egfr(78)
        c.draft(CYANOCOBALAMIN_ORAL_1000, mid="oral-b12-1")
        return c

    return build


scenario(
    "oral-b12-with-paraesthesia",
    service=ORDER_SIGN,
    rules=(REGIMEN,),
    title="Oral B12 ordered for a patient with paraesthesia",
    shows="""Metformin-associated deficiency (B12 150 ng/L) with paraesthesia: oral B12 is not the
    preferred route with neurological involvement; replace it with the IM regimen.""",
)(_oral_b12_on_metformin("pat-oral-neuro", True))

scenario(
    "oral-b12-without-neurological-signs",
    service=ORDER_SIGN,
    rules=(),
    title="Oral B12 ordered, no neurological signs",
    shows="""The same order without neurological involvement or malabsorption is a NICE option
    (oral cyanocobalamin 1000 micrograms daily): no card.""",
)(_oral_b12_on_metformin("pat-oral-no-neuro", False))


def _post_bariatric_oral(pid: str, product: Any) -> Builder:
    def build(t: When) -> Chart:
        c = Chart(t, pid, age=45)
        c.problem(BARIATRIC, onset=t.years_ago(3))
        c.b12(240, date=t.days_ago(30))
        normal_blood_count(c)
        c.draft(product, mid="oral-b12-1")
        return c

    return build


scenario(
    "post-bariatric-oral-b12-500-mcg",
    service=ORDER_SIGN,
    rules=(REGIMEN,),
    title="Gastric bypass, oral B12 500 micrograms daily ordered",
    shows="""After gastric bypass an oral dose below 1000 micrograms a day does not fit:
    replace it with IM hydroxocobalamin.""",
)(_post_bariatric_oral("pat-bariatric-500", CYANOCOBALAMIN_ORAL_500))

scenario(
    "post-bariatric-oral-b12-1000-mcg",
    service=ORDER_SIGN,
    rules=(),
    title="Gastric bypass, oral B12 1000 micrograms daily ordered",
    shows="""1000 micrograms a day by mouth after gastric bypass fits (AAFP 2017): no card.""",
)(_post_bariatric_oral("pat-bariatric-1000", CYANOCOBALAMIN_ORAL_1000))


def _one_off_injection(pid: str, loaded: bool) -> Builder:
    def build(t: When) -> Chart:
        c = Chart(t, pid, age=74)
        if loaded:
            # Diagnosed 3 months ago; the loading course is finished; a maintenance dose now.
            c.problem(PERNICIOUS_ANAEMIA, onset=t.months_ago(3))
            c.b12(110, date=t.days_ago(95))
            c.blood_count(13.2, 95, date=t.days_ago(95))
            c.taking(
                HYDROXOCOBALAMIN_IM,
                t.days_ago(92),
                status="completed",
                end=t.days_ago(80),
                every=(2, "d"),
                count=6,
                sig="1 mg IM three times a week for 2 weeks",
            )
        else:
            c.problem(PERNICIOUS_ANAEMIA, onset=t.days_ago(5))
            c.b12(110, date=t.days_ago(7))
            c.blood_count(13.2, 95, date=t.days_ago(7))
        c.draft(HYDROXOCOBALAMIN_IM, mid="hydroxo-1", count=1, repeat=False, sig="1 mg IM once")
        return c

    return build


scenario(
    "hydroxocobalamin-one-off-without-loading",
    service=ORDER_SIGN,
    rules=(REGIMEN, MONITORING),
    title="One hydroxocobalamin injection, no loading course",
    shows="""A single IM injection for newly diagnosed pernicious anaemia, without a loading
    course: replace it with the loading regimen; monitoring plan as B12 starts.""",
)(_one_off_injection("pat-one-off", False))

# A course completed within the longest maintenance interval (3 months) is established B12
# therapy: a maintenance dose after it is not "B12 starting".
scenario(
    "hydroxocobalamin-one-off-after-loading",
    service=ORDER_SIGN,
    rules=(),
    title="One hydroxocobalamin injection after a loading course",
    shows="""The same one-off injection after a loading course that finished 11 weeks ago is
    maintenance of established therapy: no regimen card and no start-of-treatment monitoring
    plan.""",
)(_one_off_injection("pat-one-off-loaded", True))


def _maintenance_without_loading(pid: str, months: int) -> Builder:
    def build(t: When) -> Chart:
        c = Chart(t, pid, age=66)
        c.problem(PERNICIOUS_ANAEMIA, onset=t.days_ago(5))
        c.b12(120, date=t.days_ago(7))
        c.blood_count(13.0, 96, date=t.days_ago(7))
        c.draft(
            HYDROXOCOBALAMIN_IM,
            mid="hydroxo-1",
            every=(months, "mo"),
            sig=f"1 mg IM every {months} months",
        )
        return c

    return build


scenario(
    "hydroxocobalamin-every-4-months-without-loading",
    service=ORDER_SIGN,
    rules=(REGIMEN, MONITORING),
    title="Hydroxocobalamin every 4 months, no loading course",
    shows="""Injections every 4 months without a loading course are too far apart: replace with
    the loading regimen (three times a week for 2 weeks, then every 2-3 months).""",
)(_maintenance_without_loading("pat-4-monthly", 4))

# QUESTIONED: b12-regimen-check reads docs/rulebook.md's "one-off or interval > 3 months IM without
# loading" literally, so a newly diagnosed patient started on 3-monthly maintenance with no
# loading course gets no regimen card.
scenario(
    "hydroxocobalamin-every-3-months-without-loading",
    service=ORDER_SIGN,
    rules=(MONITORING,),
    title="Hydroxocobalamin every 3 months, no loading course",
    shows="""Every 3 months is not more than 3 months apart, so no regimen card, although no
    loading course was given (under clinical review); only the monitoring plan.""",
)(_maintenance_without_loading("pat-3-monthly", 3))


# =============================================================================================
# cyanocobalamin-renal: eGFR < 60
# =============================================================================================
def _cyanocobalamin_with_egfr(pid: str, egfr: float) -> Builder:
    def build(t: When) -> Chart:
        c = Chart(t, pid, age=72, gender="male")
        c.problem(TYPE2_DIABETES, onset=t.years_ago(12))
        c.taking(METFORMIN, t.years_ago(12))
        c.b12(160)
        normal_blood_count(c)
        c.egfr(egfr)
        c.draft(CYANOCOBALAMIN_IM, mid="cyano-1", count=6)
        return c

    return build


scenario(
    "cyanocobalamin-im-egfr-59",
    service=ORDER_SIGN,
    rules=(RENAL, MONITORING),
    title="Cyanocobalamin 1 mg IM ordered with eGFR 59",
    shows="""eGFR 59 is impaired renal function: prefer hydroxocobalamin to high-dose
    cyanocobalamin (DIVINe); a warning, not a block.""",
)(_cyanocobalamin_with_egfr("pat-cyano-egfr-59", 59))

scenario(
    "cyanocobalamin-im-egfr-60",
    service=ORDER_SIGN,
    rules=(MONITORING,),
    title="Cyanocobalamin 1 mg IM ordered with eGFR 60",
    shows="""eGFR 60 is not impaired: no renal card (only the monitoring plan for the new
    injections).""",
)(_cyanocobalamin_with_egfr("pat-cyano-egfr-60", 60))


# =============================================================================================
# b12-treatment-monitoring
# =============================================================================================
def _megaloblastic_start(pid: str, potassium: float) -> Builder:
    def build(t: When) -> Chart:
        c = Chart(t, pid, age=69)
        c.problem(PERNICIOUS_ANAEMIA, onset=t.days_ago(5))
        c.b12(85, date=t.days_ago(7))
        c.blood_count(8.9, 112, date=t.days_ago(7))
        c.potassium(potassium, date=t.days_ago(7))
        c.draft(
            HYDROXOCOBALAMIN_IM,
            mid="hydroxo-1",
            every=(2, "d"),
            count=6,
            sig="1 mg IM three times a week for 2 weeks",
        )
        return c

    return build


scenario(
    "hydroxocobalamin-start-potassium-2-9",
    service=ORDER_SIGN,
    rules=(MONITORING,),
    title="Starting B12 in megaloblastic anaemia with potassium 2.9",
    shows="""Potassium 2.9 mmol/L as IM B12 starts for a megaloblastic anaemia: critical,
    hypokalaemia risk; check potassium within 48 h.""",
)(_megaloblastic_start("pat-k-2-9", 2.9))

scenario(
    "hydroxocobalamin-start-potassium-3-0",
    service=ORDER_SIGN,
    rules=(MONITORING,),
    title="Starting B12 in megaloblastic anaemia with potassium 3.0",
    shows="""Potassium 3.0 mmol/L is not below 3.0: the monitoring card is a warning (potassium,
    reticulocytes, blood count), not critical.""",
)(_megaloblastic_start("pat-k-3-0", 3.0))


def _started_days_ago(pid: str, days: int) -> Builder:
    def build(t: When) -> Chart:
        c = Chart(t, pid, age=77)
        c.problem(PERNICIOUS_ANAEMIA, onset=t.days_ago(days + 2))
        c.b12(90, date=t.days_ago(days + 3))
        c.blood_count(9.4, 109, date=t.days_ago(days + 3))
        c.taking(
            HYDROXOCOBALAMIN_IM,
            t.days_ago(days),
            every=(2, "d"),
            count=6,
            sig="1 mg IM three times a week for 2 weeks",
        )
        return c

    return build


scenario(
    "hydroxocobalamin-started-6-days-ago",
    service=PATIENT_VIEW,
    rules=(MONITORING,),
    title="IM B12 started 6 days ago in megaloblastic anaemia",
    shows="""Parenteral B12 started 6 days ago for a megaloblastic anaemia: check potassium,
    reticulocytes and blood count; review at 3 months.""",
)(_started_days_ago("pat-started-6", 6))

scenario(
    "hydroxocobalamin-started-7-days-ago",
    service=PATIENT_VIEW,
    rules=(MONITORING,),
    title="IM B12 started 7 calendar days ago in megaloblastic anaemia",
    shows="""Started on the date 7 days before: still within the 7-day window (counted in
    calendar days), so the monitoring card shows.""",
)(_started_days_ago("pat-started-7", 7))

scenario(
    "hydroxocobalamin-started-8-days-ago",
    service=PATIENT_VIEW,
    rules=(),
    title="IM B12 started 8 days ago in megaloblastic anaemia",
    shows="Started 8 days ago is outside the 7-day start window: no monitoring card.",
)(_started_days_ago("pat-started-8", 8))


# =============================================================================================
# nitrous-oxide-b12
# =============================================================================================
@scenario(
    "nitrous-oxide-use-recorded",
    service=PATIENT_VIEW,
    rules=(NITROUS,),
    title="Recreational nitrous oxide use, normal total B12",
    shows="""Nitrous oxide inactivates B12, so a normal total B12 (410 ng/L) does not reassure:
    test homocysteine and MMA.""",
)
def _nitrous_recorded(t: When) -> Chart:
    c = Chart(t, "pat-n2o", age=22, gender="male")
    c.problem(NITROUS_OXIDE_USE, onset=t.months_ago(8))
    c.b12(410)
    normal_blood_count(c)
    return c


@scenario(
    "entonox-order-only",
    service=ORDER_SIGN,
    rules=(),
    title="Entonox ordered for a procedure",
    shows="""A drafted Entonox order for procedural analgesia is not nitrous oxide use: no
    card.""",
)
def _entonox(t: When) -> Chart:
    c = Chart(t, "pat-entonox", age=34)
    c.b12(410)
    normal_blood_count(c)
    c.draft(NITROUS_OXIDE, mid="entonox-1")
    return c


# =============================================================================================
# pregnancy-b12: total B12 < 350 ng/L without active B12
# =============================================================================================
def _pregnant_with_b12(pid: str, b12: float) -> Builder:
    def build(t: When) -> Chart:
        c = Chart(t, pid, age=31)
        c.problem(PREGNANCY, onset=t.weeks_ago(22))
        c.b12(b12, date=t.days_ago(10))
        c.blood_count(11.8, 90, date=t.days_ago(10))
        return c

    return build


scenario(
    "pregnancy-b12-350-ng-l",
    service=PATIENT_VIEW,
    rules=(PREGNANCY_RULE,),
    title="Pregnant, total B12 350 ng/L",
    shows="""Total B12 falls in pregnancy: at 350 ng/L NICE recommends active B12 to confirm
    (information).""",
)(_pregnant_with_b12("pat-preg-350", 350))

scenario(
    "pregnancy-b12-350-1-ng-l",
    service=PATIENT_VIEW,
    rules=(),
    title="Pregnant, total B12 350.1 ng/L",
    shows="Total B12 350.1 ng/L in pregnancy is above the band: no card.",
)(_pregnant_with_b12("pat-preg-350-1", 350.1))


# =============================================================================================
# b12-assay-interference
# =============================================================================================
def _b12_and_antibiotic(pid: str, during: bool) -> Builder:
    def build(t: When) -> Chart:
        c = Chart(t, pid, age=57)
        c.b12(390, date=t.days_ago(20))
        normal_blood_count(c)
        if during:
            c.taking(AMOXICILLIN, t.days_ago(23), status="completed", end=t.days_ago(16))
        else:
            c.taking(AMOXICILLIN, t.days_ago(30), status="completed", end=t.days_ago(23))
        return c

    return build


scenario(
    "b12-drawn-during-amoxicillin",
    service=PATIENT_VIEW,
    rules=(INTERFERENCE,),
    title="B12 drawn during an amoxicillin course",
    shows="""Antibiotics invalidate microbiological B12 assays: the B12 390 ng/L drawn on day 4
    of an amoxicillin course may be invalid.""",
)(_b12_and_antibiotic("pat-abx-during", True))

scenario(
    "b12-drawn-after-amoxicillin",
    service=PATIENT_VIEW,
    rules=(),
    title="B12 drawn after an amoxicillin course ended",
    shows="The course ended 3 days before the sample: no interference card.",
)(_b12_and_antibiotic("pat-abx-after", False))


# =============================================================================================
# b12-retest-on-treatment: total B12 ordered on established (> 3 months) IM therapy
# =============================================================================================
def _retest(pid: str, months: int) -> Builder:
    def build(t: When) -> Chart:
        c = Chart(t, pid, age=70)
        c.problem(PERNICIOUS_ANAEMIA, onset=t.months_ago(months))
        c.b12(120, date=t.months_ago(months))
        c.taking(HYDROXOCOBALAMIN_IM, t.months_ago(months))
        c.draft_test("2132-9", "Vitamin B12 [Mass/volume] in Serum or Plasma", sid="b12-test-1")
        return c

    return build


scenario(
    "b12-test-on-im-b12-for-4-months",
    service=ORDER_SIGN,
    rules=(RETEST,),
    title="Total B12 test ordered after 4 months of IM B12",
    shows="""On established IM therapy a B12 level is not informative: review symptoms and the
    blood count instead (the card offers to remove the test).""",
)(_retest("pat-retest-4", 4))

scenario(
    "b12-test-on-im-b12-for-2-months",
    service=ORDER_SIGN,
    rules=(),
    title="Total B12 test ordered after 2 months of IM B12",
    shows="Therapy for 2 months is not yet established: no retest card.",
)(_retest("pat-retest-2", 2))


# =============================================================================================
# lab-unit-unrecognised
# =============================================================================================
def _b12_unit(pid: str, value: float, unit: str) -> Builder:
    def build(t: When) -> Chart:
        c = Chart(t, pid, age=60)
        c.b12(value, unit)
        normal_blood_count(c)
        return c

    return build


scenario(
    "b12-unit-mg-unrecognised",
    service=PATIENT_VIEW,
    rules=(UNIT,),
    title="B12 reported as 0.2 mg",
    shows="A B12 result in 'mg' cannot be interpreted: the card says so instead of guessing.",
)(_b12_unit("pat-unit-mg", 0.2, "mg"))

scenario(
    "b12-unit-ng-ml-converted",
    service=PATIENT_VIEW,
    rules=(INDETERMINATE,),
    title="B12 reported as 0.25 ng/mL",
    shows="""0.25 ng/mL is 250 ng/L: a recognised unit, converted and judged indeterminate
    (no unit card).""",
)(_b12_unit("pat-unit-ng-ml", 0.25, "ng/mL"))


# =============================================================================================
# Patient stories
# =============================================================================================
@scenario(
    "long-term-metformin",
    service=PATIENT_VIEW,
    rules=(SCREENING,),
    title="Type 2 diabetes on metformin for 6 years and omeprazole for 2",
    shows="""No B12 result in 12 months for a patient on metformin for 6 years and a proton pump
    inhibitor for 2: check B12 (the card lists each risk factor and the last, stale value).""",
)
def _long_term_metformin(t: When) -> Chart:
    c = Chart(t, "pat-metformin", age=67, gender="male")
    c.problem(TYPE2_DIABETES, onset=t.years_ago(6))
    c.taking(METFORMIN, t.years_ago(6), dose=(2, "{tablet}"), sig="1000 mg by mouth daily")
    c.prescribed(OMEPRAZOLE, t.years_ago(2))
    c.b12(290, date=t.years_ago(2))
    c.blood_count(13.9, 94, date=t.days_ago(40))
    c.egfr(72, date=t.days_ago(40))
    return c


@scenario(
    "folic-acid-with-b12-118-megaloblastic",
    service=ORDER_SIGN,
    rules=(FOLATE,),
    title="Folic acid ordered with B12 118 ng/L and folate 2.1 ng/mL in a megaloblastic anaemia",
    shows="""Folic acid 5 mg ordered for a macrocytic anaemia while B12 is 118 ng/L and untreated,
    and serum folate is 2.1 ng/mL (below the BSH 3 ng/mL limit): combined deficiency, critical,
    start B12 now and give the folic acid with it; the folate value is shown and deleting the
    folic acid is not offered.""",
)
def _folic_acid_118(t: When) -> Chart:
    c = Chart(t, "pat-folic-118", age=71)
    c.problem(MEGALOBLASTIC_ANAEMIA, onset=t.days_ago(10))
    c.b12(118, date=t.days_ago(14))
    c.blood_count(9.8, 108, date=t.days_ago(14))
    c.lab("2284-8", 2.1, "ng/mL", t.days_ago(14))
    c.egfr(74, date=t.days_ago(14))
    c.draft(FOLIC_ACID_5MG, mid="folic-1")
    return c


@scenario(
    "pregnancy-prenatal-folic-acid",
    service=ORDER_SIGN,
    rules=(FOLATE,),
    title="Pregnant, prenatal folic acid ordered, B12 160 ng/L",
    shows="""Prenatal folic acid 400 micrograms with a low total B12 in pregnancy: a warning to
    address B12 at the same time, never to stop the folic acid, and active B12 (recommended) to
    confirm before treating, since total B12 falls in pregnancy. One card: it silences
    pregnancy-b12.""",
)
def _pregnancy_folic(t: When) -> Chart:
    c = Chart(t, "pat-pregnant", age=29)
    c.problem(PREGNANCY, onset=t.weeks_ago(10))
    c.b12(160, date=t.days_ago(7))
    c.blood_count(12.1, 89, date=t.days_ago(7))
    c.draft(FOLIC_ACID_400UG, mid="folic-prenatal-1")
    return c


@scenario(
    "post-bariatric-no-b12-therapy",
    service=PATIENT_VIEW,
    rules=(LIFELONG,),
    title="Gastric bypass 4 years ago, no B12 therapy",
    shows="""After bariatric surgery B12 is lifelong: no B12 therapy is recorded, so the card asks
    for maintenance (it quotes 1 mg oral daily or 1000 micrograms IM monthly, and offers
    hydroxocobalamin every 2-3 months).""",
)
def _post_bariatric(t: When) -> Chart:
    c = Chart(t, "pat-bariatric", age=41)
    c.problem(BARIATRIC, onset=t.years_ago(4))
    normal_blood_count(c)
    return c


@scenario(
    "molar-b12-98-pmol-l-neuropathy",
    service=PATIENT_VIEW,
    rules=(UNTREATED, CAUSE),
    title="Total B12 98 pmol/L with peripheral neuropathy (molar units)",
    shows="""A laboratory reporting in pmol/L: 98 pmol/L is deficient against the molar limit;
    with peripheral neuropathy the card recommends the neurological IM regimen.""",
)
def _molar(t: When) -> Chart:
    c = Chart(t, "pat-molar", age=59)
    c.problem(PERIPHERAL_NEUROPATHY, onset=t.months_ago(4))
    c.b12(98, "pmol/L")
    c.blood_count(12.9, 99)
    c.egfr(84)
    return c


@scenario(
    "renal-impairment-cyanocobalamin-order",
    service=ORDER_SIGN,
    rules=(MONITORING, RENAL),
    title="CKD 3b with eGFR 38: cyanocobalamin injections ordered",
    shows="""Cyanocobalamin 1 mg IM ordered for a macrocytic anaemia with eGFR 38: check potassium
    and reticulocytes as B12 starts, and prefer hydroxocobalamin at the same schedule (DIVINe,
    indirect evidence; a warning, not a block).""",
)
def _renal(t: When) -> Chart:
    c = Chart(t, "pat-renal", age=76, gender="male")
    c.problem(CKD_3B, onset=t.years_ago(3))
    c.problem(TYPE2_DIABETES, onset=t.years_ago(15))
    c.taking(METFORMIN, t.years_ago(15))
    c.b12(140, date=t.days_ago(9))
    c.blood_count(11.0, 104, date=t.days_ago(9))
    c.egfr(38, date=t.days_ago(9))
    c.potassium(4.4, date=t.days_ago(9))
    c.draft(CYANOCOBALAMIN_IM, mid="cyano-1", count=6)
    return c


@scenario(
    "nitrous-oxide-with-paraesthesia",
    service=PATIENT_VIEW,
    rules=(NITROUS,),
    title="Nitrous oxide use with paraesthesia, normal total B12",
    shows="""Recreational nitrous oxide with new paraesthesia: critical, start B12 now and refer
    urgently; a normal total B12 does not exclude functional deficiency.""",
)
def _nitrous_neuro(t: When) -> Chart:
    c = Chart(t, "pat-n2o-neuro", age=19, gender="male")
    c.problem(NITROUS_OXIDE_USE, onset=t.months_ago(6))
    c.problem(PARAESTHESIA, onset=t.weeks_ago(3))
    c.b12(380, date=t.days_ago(5))
    normal_blood_count(c)
    return c


@scenario(
    "conflicting-normal-total-low-active-b12",
    service=PATIENT_VIEW,
    rules=(UNTREATED, CAUSE),
    title="Normal total B12 420 ng/L but active B12 20 pmol/L",
    shows="""Total B12 is normal but active B12 is low: the more specific test wins (antibody
    interference can make total B12 falsely normal) and the card states the conflict.""",
)
def _conflict(t: When) -> Chart:
    c = Chart(t, "pat-conflict", age=55)
    c.b12(420, date=t.days_ago(12))
    c.active_b12(20, date=t.days_ago(12))
    c.blood_count(12.6, 98, date=t.days_ago(12))
    c.egfr(90, date=t.days_ago(12))
    return c


@scenario(
    "order-select-folic-acid-selected",
    service=ORDER_SELECT,
    rules=(FOLATE,),
    title="order-select: folic acid selected beside a statin, B12 250 ng/L",
    shows="""The clinician selects folic acid 5 mg among two draft orders while B12 is
    indeterminate: the folate warning concerns the selected order.""",
)
def _order_select(t: When) -> Chart:
    c = Chart(t, "pat-select", age=62, gender="male")
    c.b12(250)
    c.blood_count(13.1, 102)
    c.draft(ATORVASTATIN, mid="statin-1")
    c.draft(FOLIC_ACID_5MG, mid="folic-1")
    c.selections = ["MedicationRequest/folic-1"]
    return c


@scenario(
    "sandbox-dstu2-medication-order",
    service=ORDER_SIGN,
    rules=(FOLATE,),
    title="Sandbox quirks: DSTU2 MedicationOrder draft in a Bundle without type",
    shows="""What the public sandbox's default server sends: a DSTU2 MedicationOrder for folic
    acid in a draftOrders Bundle without type. It is read like an R4 order: critical card, and
    the delete action names MedicationOrder/folic-dstu2.""",
)
def _sandbox(t: When) -> dict[str, Any]:
    c = Chart(t, "pat-sandbox", age=66)
    c.b12(150)
    c.blood_count(10.9, 106)
    body = c.request(ORDER_SIGN)
    order = {
        "resourceType": "MedicationOrder",
        "id": "folic-dstu2",
        "dateWritten": t.today(),
        "status": "draft",
        "patient": {"reference": f"Patient/{c.pid}"},
        "medicationCodeableConcept": {
            "coding": [
                {"system": fj.RXNORM, "code": "199318", "display": "Folic acid 5 MG Oral Tablet"}
            ],
            "text": "Folic acid 5 MG Oral Tablet",
        },
        "dosageInstruction": [
            {
                "text": "5 mg by mouth daily",
                "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                "route": {
                    "coding": [{"system": fj.SNOMED, "code": "26643006", "display": "Oral route"}]
                },
                "doseQuantity": {"value": 5, "unit": "mg", "system": fj.UCUM, "code": "mg"},
            }
        ],
    }
    body["context"]["draftOrders"] = {"resourceType": "Bundle", "entry": [{"resource": order}]}
    return body


@scenario(
    "folic-acid-labs-unavailable",
    service=ORDER_SIGN,
    rules=(FOLATE,),
    title="Folic acid ordered when no laboratory data could be obtained",
    shows="""Only the patient, medications and conditions were prefetched and there is no FHIR
    server: B12 and the blood count are unknown, so the folic-acid order gets a warning that B12
    results could not be retrieved, with a B12 test.""",
)
def _labs_missing(t: When) -> dict[str, Any]:
    c = Chart(t, "pat-no-labs", age=70)
    c.draft(FOLIC_ACID_5MG, mid="folic-1")
    body = c.request(ORDER_SIGN)
    for key in ("b12Labs", "bloodCounts", "renalLabs"):
        del body["prefetch"][key]
    return body


@scenario(
    "folic-acid-labs-unavailable-paraesthesia",
    service=ORDER_SIGN,
    rules=(FOLATE,),
    title="Folic acid ordered with paraesthesia when no laboratory data could be obtained",
    shows="""The same missing laboratory data, in a patient with paraesthesia: B12 results are
    unavailable, so the card asks for a B12 test before folic acid.""",
)
def _labs_missing_neuro(t: When) -> dict[str, Any]:
    c = Chart(t, "pat-no-labs-neuro", age=70)
    c.problem(PARAESTHESIA, onset=t.months_ago(2))
    c.draft(FOLIC_ACID_5MG, mid="folic-1")
    body = c.request(ORDER_SIGN)
    for key in ("b12Labs", "bloodCounts", "renalLabs"):
        del body["prefetch"][key]
    return body


# QUESTIONED: the diagnostic sample is usually drawn on the day of the first injection (before
# it). With both dated that day, the service counts the sample as drawn on therapy: the low
# result becomes "may be invalid" (on-therapy results are falsely *high*) and it no longer
# counts as a current result. The pernicious anaemia *name* is not an anaemia sign (Hb is
# 13.1 g/dL), and the loading course finished 80 days ago is established therapy, so with a
# maintenance order neither the screening card nor the start-of-treatment plan shows: the
# two would contradict ("no routine B12 retest" beside "check B12 before the first dose").
def _sampled_on_first_injection_day(pid: str, maintenance_order: bool) -> Builder:
    def build(t: When) -> Chart:
        c = Chart(t, pid, age=72)
        c.problem(PERNICIOUS_ANAEMIA, onset=t.days_ago(92))
        c.b12(95, date=t.days_ago(92))
        c.blood_count(13.1, 96, date=t.days_ago(92))
        c.taking(
            HYDROXOCOBALAMIN_IM,
            t.days_ago(92),
            status="completed",
            end=t.days_ago(80),
            every=(2, "d"),
            count=6,
            sig="1 mg IM three times a week for 2 weeks",
        )
        if maintenance_order:
            c.draft(HYDROXOCOBALAMIN_IM, mid="hydroxo-1", count=1, repeat=False, sig="1 mg IM once")
        return c

    return build


scenario(
    "b12-drawn-on-day-of-first-injection",
    service=PATIENT_VIEW,
    rules=(LIFELONG, INTERFERENCE),
    title="Pernicious anaemia: B12 95 ng/L drawn on the day loading began, course finished",
    shows="""The loading course is finished and no maintenance is recorded, so the lifelong-therapy
    card asks for it; the diagnostic B12, drawn the day the first injection was given, is
    called possibly invalid (under clinical review).""",
)(_sampled_on_first_injection_day("pat-same-day", False))

scenario(
    "b12-drawn-on-day-of-first-injection-maintenance-order",
    service=ORDER_SIGN,
    rules=(),
    title="Pernicious anaemia: maintenance injection ordered, B12 drawn on the day loading began",
    shows="""Signing the first maintenance injection after a loading course finished 80 days ago:
    established therapy, so no B12 test is asked for and no start-of-treatment plan shows (no
    contradictory cards; pernicious anaemia is not read as anaemia with Hb 13.1 g/dL).""",
)(_sampled_on_first_injection_day("pat-same-day-maintenance", True))


# =============================================================================================
# Second clinical pass: comparator and text values, folate exceptions, statuses, age
# =============================================================================================
def _b12_as_reported(
    pid: str,
    *,
    value: float = 150,
    unit: str = "pg/mL",
    comparator: str | None = None,
    text: str | None = None,
    folic_acid: bool = False,
    mcv: float = 91,
) -> Builder:
    """A B12 reported the way laboratories send their extremes: a comparator or a text value."""

    def build(t: When) -> Chart:
        c = Chart(t, pid, age=61)
        obs = c.b12(value, unit)
        if text is not None:
            del obs["valueQuantity"]
            obs["valueString"] = text
        elif comparator is not None:
            obs["valueQuantity"]["comparator"] = comparator
        c.blood_count(13.4, mcv)
        c.egfr(84)
        if folic_acid:
            c.draft(FOLIC_ACID_5MG, mid="folic-1")
        return c

    return build


scenario(
    "b12-text-below-150-pg-ml-with-folic-acid",
    service=ORDER_SIGN,
    rules=(FOLATE,),
    title='B12 sent as text "<150 pg/mL", folic acid ordered, MCV 110',
    shows="""A laboratory's lowest result sent as valueString "<150 pg/mL" is read as deficient:
    with folic acid drafted and MCV 110 the folate card is critical and shows "<150 pg/mL",
    never the bare number.""",
)(_b12_as_reported("pat-text-150", text="<150 pg/mL", folic_acid=True, mcv=110))

scenario(
    "b12-text-see-comment-with-folic-acid",
    service=ORDER_SIGN,
    rules=(FOLATE, UNIT),
    title='B12 sent as "see comment", folic acid ordered, MCV 110',
    shows="""A B12 that cannot be read counts as no current result for the folate card (warning
    with macrocytosis) and is reported by the unit card, a warning beside the folate order.""",
)(_b12_as_reported("pat-text-comment", text="see comment", folic_acid=True, mcv=110))

scenario(
    "b12-comparator-below-180-deficient",
    service=PATIENT_VIEW,
    rules=(UNTREATED, CAUSE),
    title="Total B12 <180 ng/L (comparator): deficient",
    shows="""valueQuantity 180 ng/L with comparator "<": every value it allows is below the
    180 ng/L cut-off, so deficiency is confirmed and the card shows "<180 ng/L".""",
)(_b12_as_reported("pat-cmp-180", value=180, unit="ng/L", comparator="<"))

# 210, not 200: the no-PHI log test treats every value as patient data, and 200 is also
# every response's status code.
scenario(
    "b12-comparator-below-210-indeterminate",
    service=PATIENT_VIEW,
    rules=(INDETERMINATE,),
    title="Total B12 <210 ng/L (comparator): indeterminate, never unlikely",
    shows="""A "<210 ng/L" may be deficient or not: indeterminate, check MMA.""",
)(_b12_as_reported("pat-cmp-210", value=210, unit="ng/L", comparator="<"))

scenario(
    "b12-comparator-above-350-unlikely",
    service=PATIENT_VIEW,
    rules=(),
    title="Total B12 >350 ng/L (comparator): deficiency unlikely",
    shows="""">350 ng/L" is above the "unlikely" cut-off whatever its exact value: no card.""",
)(_b12_as_reported("pat-cmp-350", value=350, unit="ng/L", comparator=">"))

scenario(
    "b12-comparator-above-300-not-interpreted",
    service=PATIENT_VIEW,
    rules=(UNIT,),
    title="Total B12 >300 ng/L (comparator): not interpreted",
    shows="""">300 ng/L" could be indeterminate or normal: it is not interpreted, and the unit card
    reports it instead of dropping it.""",
)(_b12_as_reported("pat-cmp-300", value=300, unit="ng/L", comparator=">"))


def _folic_acid_combined(pid: str, folate: float) -> Builder:
    def build(t: When) -> Chart:
        c = Chart(t, pid, age=66)
        c.b12(118, date=t.days_ago(10))
        c.blood_count(10.2, 109, date=t.days_ago(10))
        c.lab("2284-8", folate, "ng/mL", t.days_ago(10))
        c.egfr(80, date=t.days_ago(10))
        c.draft(FOLIC_ACID_5MG, mid="folic-1")
        return c

    return build


scenario(
    "folic-acid-b12-118-folate-2-9-combined",
    service=ORDER_SIGN,
    rules=(FOLATE,),
    title="Folic acid ordered, B12 118 ng/L, serum folate 2.9 ng/mL",
    shows="""Serum folate 2.9 ng/mL is below the BSH 3 ng/mL limit: combined deficiency, critical,
    start B12 now and give the folic acid with it; no suggestion deletes the folic acid.""",
)(_folic_acid_combined("pat-folate-2-9", 2.9))

scenario(
    "folic-acid-b12-118-folate-3-0",
    service=ORDER_SIGN,
    rules=(FOLATE,),
    title="Folic acid ordered, B12 118 ng/L, serum folate 3.0 ng/mL",
    shows="""Serum folate 3.0 ng/mL is not deficient: folate deficiency is not proven, so the card
    says treat B12 first and offers to remove the folic acid draft.""",
)(_folic_acid_combined("pat-folate-3-0", 3.0))


@scenario(
    "folic-acid-weekly-methotrexate-b12-118",
    service=ORDER_SIGN,
    rules=(FOLATE,),
    title="Folic acid with weekly methotrexate, B12 118 ng/L",
    shows="""Folic acid prevents methotrexate toxicity: with deficient B12 the card is a warning
    that recommends B12 treatment and never offers to delete the folic acid.""",
)
def _methotrexate_deficient(t: When) -> Chart:
    c = Chart(t, "pat-mtx-118", age=59)
    c.problem(RHEUMATOID_ARTHRITIS, onset=t.years_ago(5))
    c.taking(METHOTREXATE_WEEKLY, t.years_ago(3))
    c.b12(118, date=t.days_ago(12))
    normal_blood_count(c)
    c.egfr(79)
    c.draft(FOLIC_ACID_5MG, mid="folic-mtx-1", sig="5 mg by mouth once weekly, 24 h after")
    return c


@scenario(
    "b12-future-dated-result-metformin",
    service=PATIENT_VIEW,
    rules=(SCREENING,),
    title="Metformin for 6 years, the only B12 result dated 10 days ahead",
    shows="""A result dated more than a day after now is a data error: it is skipped (never
    current, never "the last result"), so the metformin patient is due a B12 test.""",
)
def _future_dated(t: When) -> Chart:
    c = Chart(t, "pat-future", age=64, gender="male")
    c.taking(METFORMIN, t.years_ago(6))
    c.b12(420, date=t.days_ahead(10))
    normal_blood_count(c)
    return c


@scenario(
    "metformin-intended-not-exposure",
    service=PATIENT_VIEW,
    rules=(),
    title="Metformin recorded as intended, never started",
    shows="""A MedicationStatement with status "intended" is not exposure: no screening card for a
    drug the patient has not taken.""",
)
def _metformin_intended(t: When) -> Chart:
    c = Chart(t, "pat-intended", age=58, gender="male")
    c.taking(METFORMIN, t.years_ago(2), status="intended")
    normal_blood_count(c)
    return c


@scenario(
    "b12-118-aged-15",
    service=PATIENT_VIEW,
    rules=(UNTREATED, CAUSE),
    title="Total B12 118 ng/L in a 15-year-old",
    shows="""The rules still apply under 16 (deficiency is no less dangerous), but every card says
    that NICE NG239 covers over-16s and that paediatric ranges and doses differ.""",
)
def _teenager(t: When) -> Chart:
    c = Chart(t, "pat-aged-15", age=15)
    c.b12(118)
    normal_blood_count(c)
    return c


@scenario(
    "pernicious-anaemia-b12-250-indeterminate",
    service=PATIENT_VIEW,
    rules=(LIFELONG,),
    title="Pernicious anaemia, no B12 therapy, total B12 250 ng/L",
    shows="""The recorded cause makes B12 lifelong whatever the level: one card asks for
    maintenance; no second card asks for MMA "before deciding" (that would contradict it).""",
)
def _pa_indeterminate(t: When) -> Chart:
    c = Chart(t, "pat-pa-250", age=69)
    c.problem(PERNICIOUS_ANAEMIA, onset=t.years_ago(3))
    c.b12(250)
    normal_blood_count(c)
    return c


# =============================================================================================
# Epic's shape: every rule that reads medications, with the drug known only by the codes on a
# Medication resource (draftOrders entry, absolute reference into the prefetch, contained) and
# a site product name ("FA 5MG TAB") that no name match recognises.
# =============================================================================================
EPIC_TWINS = {
    FOLATE: "folic-acid-with-b12-118-megaloblastic",
    f"{FOLATE} (order-select)": "order-select-folic-acid-selected",
    RENAL: "cyanocobalamin-im-egfr-59",
    REGIMEN: "hydroxocobalamin-every-4-months-without-loading",
    MONITORING: "hydroxocobalamin-started-6-days-ago",
    LIFELONG: "pernicious-anaemia-b12-stop-order",
    RETEST: "b12-test-on-im-b12-for-4-months",
    SCREENING: "metformin-4-months-no-b12",
    f"{SCREENING} (acid suppression)": "ppi-12-months",
    INTERFERENCE: "b12-drawn-during-amoxicillin",
}


def _epic_twin(original: Scenario) -> Builder:
    def build(t: When) -> dict[str, Any]:
        made = original.build(t)
        body = made.request(original.service) if isinstance(made, Chart) else made
        # A patient of its own: the seeded FHIR server (deploy/) holds every scenario at once.
        pid = body["context"]["patientId"]
        return epic_shape(json.loads(json.dumps(body).replace(pid, f"epic-{pid}")))

    return build


for _rule, _slug in EPIC_TWINS.items():
    _original = next(s for s in SCENARIOS if s.slug == _slug)
    scenario(
        f"epic-{_slug}",
        service=_original.service,
        rules=_original.rules,
        title=f"Epic's medication shape: {_original.title}",
        shows=f"""{_original.shows} The same chart as Epic sends it: each drug is named only
        by the codes on its Medication resource, under a site product name no name match
        recognises, so the cards depend on resolving the references.""",
        evaluation_time=_original.evaluation_time,
    )(_epic_twin(_original))


@scenario(
    "epic-nitrous-oxide-taken",
    service=PATIENT_VIEW,
    rules=(NITROUS,),
    title="Epic's medication shape: nitrous oxide among the patient's medications",
    shows="""Nitrous oxide recorded as a medication the patient takes (a contained Medication
    coded by ATC, named "N2O/O2 50/50 INH GAS"): a normal total B12 does not reassure.""",
)
def _epic_nitrous(t: When) -> dict[str, Any]:
    c = Chart(t, "pat-epic-n2o", age=24, gender="male")
    c.taking(NITROUS_OXIDE, t.months_ago(2))
    c.b12(410)
    normal_blood_count(c)
    return epic_shape(c.request(PATIENT_VIEW))
