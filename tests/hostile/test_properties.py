"""Property tests (hypothesis): whatever a caller puts in a request, the service answers 2xx
or a 4xx OperationOutcome, never a 5xx; unit conversions round-trip; severity never falls as
B12 falls. Deterministic (``derandomize``): CI runs the same examples every time.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench import workloads
from cds_service.cdshooks.application import CdsApplication
from cds_service.domain.units import (
    NG_L_TO_PMOL_L,
    canonical_unit,
    is_convertible,
    normalise_unit,
    to_canonical,
)
from cds_service.domain.vocabulary import Analyte
from hooks import registry
from tests import fhirjson as fj
from tests.builders import NOW, active_b12, b12, folic_acid_draft
from tests.rules.test_safety_properties import MONOTONIC_CONTEXTS, shown_severity

from .conftest import bearer


def deterministic(examples: int) -> settings:
    """The same examples on every run (CI must not be flaky), no example database."""
    return settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


SERVICES = {
    "order-sign": "b12-order-sign",
    "order-select": "b12-order-select",
    "patient-view": "b12-patient-view",
}

# --- values --------------------------------------------------------------------------------
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


def request_for(hook: str) -> dict[str, Any]:
    body = workloads.order_sign(n_obs=12, n_meds=4, n_conditions=3, folic_acid=True)
    body["hook"] = hook
    if hook == "patient-view":
        body["context"].pop("draftOrders")
    if hook == "order-select":
        body["context"]["selections"] = ["MedicationRequest/draft-folic"]
    body["fhirAuthorization"] = {
        "access_token": "opaque-token",
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "cds-service",
    }
    body["fhirServer"] = "https://ehr.example.org/fhir"
    return body


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path into a JSON document (dict keys and list indexes), the root excluded."""
    found = []
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, child in items:
        found.append(prefix + (key,))
        if isinstance(child, (dict, list)) and len(prefix) < 8:
            found.extend(paths(child, prefix + (key,)))
    return found


DELETE = object()


def mutate(document: Any, path: tuple, value: Any) -> None:
    target = document
    for key in path[:-1]:
        target = target[key]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value


def assert_answer(response) -> dict:
    """2xx, or a 4xx FHIR OperationOutcome with a stable code; never a 5xx."""
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    body = response.get_json()
    if response.status_code >= 400:
        assert body["resourceType"] == "OperationOutcome"
        issue = body["issue"][0]
        assert issue["details"]["coding"][0]["code"]
        assert issue["diagnostics"]
    return body


def post(app, issuer, path: str, body: Any):
    data = json.dumps(body, allow_nan=False)
    headers = {"Content-Type": "application/json", **bearer(issuer, path)}
    return app.test_client().post(path, data=data, headers=headers)


# Envelope paths down to the context's fields and the first draft order (not into the bulk of
# the prefetch, which the FHIR properties below cover).
def envelope_paths(hook: str) -> list[tuple]:
    body = request_for(hook)
    chosen = [p for p in paths(body) if p[0] != "prefetch" or len(p) <= 2]
    return [p for p in chosen if p[:3] != ("context", "draftOrders", "entry") or len(p) <= 5]


ENVELOPE = {hook: envelope_paths(hook) for hook in SERVICES}


@deterministic(300)
@given(
    hook=st.sampled_from(sorted(SERVICES)),
    data=st.data(),
    value=JSON | st.just(DELETE),
)
def test_arbitrary_json_in_any_envelope_field_is_never_a_5xx(
    production_app, issuer, hook, data, value
):
    body = request_for(hook)
    path = data.draw(st.sampled_from(ENVELOPE[hook]), label="path")
    mutate(body, path, value)
    assert_answer(post(production_app, issuer, f"/cds-services/{SERVICES[hook]}", body))


@deterministic(100)
@given(hook=st.sampled_from(sorted(SERVICES)), value=JSON)
def test_any_json_document_as_the_whole_body_is_never_a_5xx(production_app, issuer, hook, value):
    response = post(production_app, issuer, f"/cds-services/{SERVICES[hook]}", value)
    assert_answer(response)
    assert response.status_code == 400 or isinstance(value, dict)


# --- random FHIR resources, valid and broken ------------------------------------------------
def _resources() -> list[dict[str, Any]]:
    body = workloads.order_sign(n_obs=10, n_meds=6, n_conditions=4, folic_acid=True)
    prefetch = body["prefetch"]
    found = [prefetch["patient"]]
    for key, bundle in prefetch.items():
        if key != "patient":
            found.extend(e["resource"] for e in bundle["entry"])
    found.extend(e["resource"] for e in body["context"]["draftOrders"]["entry"])
    found.append(fj.service_request("sr-1", "2132-9", "Vitamin B12"))
    found.append(fj.observation("mma-1", "13964-2", 420, "nmol/L", "2026-06-01", high=271))
    return found


BASE_RESOURCES = _resources()


@st.composite
def fhir_resources(draw) -> dict[str, Any]:
    """A real resource of a kind the service reads, with a few elements replaced by arbitrary
    JSON or removed (so: valid, subtly broken, or nonsense), or arbitrary JSON altogether."""
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON)
    resource = copy.deepcopy(draw(st.sampled_from(BASE_RESOURCES)))
    for _ in range(draw(st.integers(0, 3))):
        candidates = paths(resource)
        if not candidates:
            break
        path = draw(st.sampled_from(candidates))
        try:
            mutate(resource, path, draw(JSON | st.just(DELETE)))
        except (KeyError, IndexError, TypeError):
            pass  # an earlier mutation removed the parent
    return resource


PREFETCH_KEYS = [
    "b12Labs",
    "bloodCounts",
    "renalLabs",
    "medicationStatements",
    "medicationRequests",
    "conditions",
]


@deterministic(250)
@given(
    hook=st.sampled_from(sorted(SERVICES)),
    prefetched=st.dictionaries(
        st.sampled_from(PREFETCH_KEYS), st.lists(fhir_resources(), max_size=6), max_size=6
    ),
    patient=fhir_resources(),
    drafts=st.lists(fhir_resources(), max_size=5),
)
def test_random_fhir_resources_in_prefetch_and_drafts_never_fail_the_request(
    production_app, issuer, hook, prefetched, patient, drafts
):
    body = request_for(hook)
    body.pop("fhirServer")  # nothing to fetch from: what was sent is all there is
    for key, resources in prefetched.items():
        body["prefetch"][key] = fj.bundle(resources)
    body["prefetch"]["patient"] = patient
    if hook != "patient-view":
        body["context"]["draftOrders"] = fj.bundle(drafts, type_="collection")
    response = post(production_app, issuer, f"/cds-services/{SERVICES[hook]}", body)
    assert_answer(response)
    # A broken resource is skipped, it never fails the request (docs/protocol.md); only
    # patient-view requires one key (the patient), and only its absence is a 412.
    assert response.status_code in ((200, 412) if hook == "patient-view" else (200,))


# --- random units and values ------------------------------------------------------------------
KNOWN_UNITS = sorted(
    {
        "ng/L",
        "pg/mL",
        "ng/mL",
        "pmol/L",
        "nmol/L",
        "umol/L",
        "mmol/L",
        "g/dL",
        "g/L",
        "fL",
        "%",
        "mg/dL",
        "mL/min/{1.73_m2}",
        "10*9/L",
        "10*3/uL",
        "ug/L",
        "nmol/mL",
        "L/L",
    }
)
SPELLINGS = (
    st.sampled_from(KNOWN_UNITS)
    | st.sampled_from(
        [
            "PG/ML",
            " ng/l ",
            "µmol/L",
            "\u03bcmol/L",
            "mcg/L",
            "mL/min/1.73 m\u00b2",
            "x10E9/L",
            "10^9/L",
            "{titer}",
            "mg",
            "",
            "ng/ml ",
        ]
    )
    | st.text(max_size=12)
)
VALUES = (
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300)
    | st.integers(-(10**30), 10**30)
    | st.sampled_from([0, 0.0, -0.0, 1e-300, 179.9, 180, 350, 350.1, 5e-324])
)
LOINCS = [
    "2132-9",
    "14685-2",
    "72160-5",
    "13964-2",
    "13965-9",
    "2284-8",
    "787-2",
    "718-7",
    "2823-3",
    "98979-8",
    "82810-3",
]


@deterministic(250)
@given(
    loinc=st.sampled_from(LOINCS),
    unit=SPELLINGS,
    code=SPELLINGS | st.none(),
    value=VALUES,
    high=st.none() | VALUES,
    hook=st.sampled_from(sorted(SERVICES)),
)
def test_random_units_and_values_are_read_or_skipped_never_a_5xx(
    production_app, issuer, loinc, unit, code, value, high, hook
):
    body = request_for(hook)
    body.pop("fhirServer")
    obs = fj.observation("obs-random", loinc, value, unit, "2026-06-01", high=high)
    if code is None:
        del obs["valueQuantity"]["code"]
    else:
        obs["valueQuantity"]["code"] = code
    body["prefetch"]["b12Labs"] = fj.bundle([obs])
    response = post(production_app, issuer, f"/cds-services/{SERVICES[hook]}", body)
    assert_answer(response)
    assert response.status_code == 200


# --- unit conversions -------------------------------------------------------------------------
CONVERTIBLE = [
    (analyte, unit)
    for analyte in Analyte
    for unit in KNOWN_UNITS
    if canonical_unit(analyte) is not None and is_convertible(analyte, unit)
]


@deterministic(300)
@given(
    pair=st.sampled_from(CONVERTIBLE),
    value=st.floats(min_value=1e-6, max_value=1e9, allow_nan=False, allow_infinity=False),
)
def test_a_conversion_to_the_canonical_unit_round_trips(pair, value):
    analyte, unit = pair
    canonical = to_canonical(analyte, value, unit)
    factor = to_canonical(analyte, 1.0, unit)
    assert canonical is not None and factor and factor > 0
    assert abs(canonical / factor - value) <= 1e-9 * value
    # And the canonical unit converts to itself unchanged.
    assert to_canonical(analyte, canonical, canonical_unit(analyte)) == canonical


@deterministic(300)
@given(value=st.floats(min_value=1, max_value=100_000, allow_nan=False))
def test_b12_ng_l_to_pmol_l_and_back_is_within_rounding(value):
    pmol = value * NG_L_TO_PMOL_L
    back = to_canonical(Analyte.TOTAL_B12, pmol, "pmol/L")
    # rule book §2 gives both factors to 4-5 figures: 0.7378 x 1.3554 = 1.00001.
    assert abs(back - value) <= 2e-5 * value


@deterministic(500)
@given(unit=SPELLINGS)
def test_normalising_a_unit_is_idempotent_and_case_blind(unit):
    once = normalise_unit(unit)
    assert normalise_unit(once) == once
    if once in KNOWN_UNITS and unit.isascii():
        # ("\u00b5".upper() is a Greek capital mu: case-blindness is for ASCII spellings.)
        assert normalise_unit(unit.upper()) == normalise_unit(unit.lower()) == once


# --- severity is monotonic in the B12 value -----------------------------------------------------
B12_UNITS = {
    "total ng/L": (lambda v: b12(v), 20.0, 1500.0),
    "total pmol/L": (lambda v: b12(v, "pmol/L"), 15.0, 1100.0),
    "active pmol/L": (active_b12, 1.0, 250.0),
}


@deterministic(400)
@given(
    kind=st.sampled_from(sorted(B12_UNITS)),
    data=st.data(),
    context=st.sampled_from(sorted(MONOTONIC_CONTEXTS)),
    with_folate=st.booleans(),
)
def test_a_lower_b12_is_never_less_severe(kind, data, context, with_folate):
    make, low, high = B12_UNITS[kind]
    values = st.floats(min_value=low, max_value=high, allow_nan=False).map(lambda v: round(v, 1))
    a, b = sorted((data.draw(values, label="a"), data.draw(values, label="b")))
    folate = (folic_acid_draft(5),) if with_folate else ()
    extra = MONOTONIC_CONTEXTS[context]()
    lower, higher = (shown_severity((make(v), *folate, *extra)) for v in (a, b))
    assert lower >= higher, f"{kind} {a} gives {lower} but the higher {b} gives {higher}"


_CORE = CdsApplication(registry=registry())
_INDICATOR = {"info": 1, "warning": 2, "critical": 3}


def _most_urgent(value: float, unit: str, folate: bool) -> int:
    body = workloads.order_sign(n_obs=1, n_meds=0, n_conditions=0, folic_acid=folate)
    labs = [fj.observation("b12-x", "2132-9", value, unit, "2026-06-05", pid="pat-bench")]
    body["prefetch"]["b12Labs"] = fj.bundle(labs)
    cards = _CORE.invoke("b12-order-sign", body, now=NOW)["cards"]
    return max((_INDICATOR[c["indicator"]] for c in cards), default=0)


@deterministic(150)
@given(
    unit=st.sampled_from(["ng/L", "pg/mL", "pmol/L"]),
    a=st.floats(min_value=20, max_value=1200, allow_nan=False),
    b=st.floats(min_value=20, max_value=1200, allow_nan=False),
    folate=st.booleans(),
)
def test_through_the_whole_service_a_lower_b12_never_gives_a_less_urgent_card(unit, a, b, folate):
    low, high = sorted((round(a, 1), round(b, 1)))
    assert _most_urgent(low, unit, folate) >= _most_urgent(high, unit, folate)
