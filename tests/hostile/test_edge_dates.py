"""Dates at the edges of the calendar (docs/security.md, "Dates"): every timestamp the service
parses, on every endpoint, at year 1 or 9999 with any offset, is either used or refused with
a 4xx OperationOutcome, never a 500. Feedback ``outcomeTimestamp``, the FHIR dates of
prefetched resources and draft orders, the token's ``iat``/``exp``/``nbf``, and the
development profile's ``CDS-Evaluation-Time``. Deterministic examples (``derandomize``)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.issuer import ALGORITHM, ISSUER, KID
from tests.conftest import sandbox_request

from .conftest import BASE, bearer
from .test_properties import SERVICES, assert_answer, deterministic, post, request_for

YEARS = st.sampled_from([1, 2, 1969, 1970, 9998, 9999]) | st.integers(1, 9999)
OFFSETS = st.sampled_from(
    ["Z", "+00:00", "-00:00", "+14:00", "-14:00", "+05:00", "-05:00", "+23:59", "-23:59", ""]
)
EDGE_TIMES = st.sampled_from(["00:00:00", "23:59:59", "23:59:59.999999", "12:00:00.5"])


@st.composite
def date_texts(draw) -> str:
    """A FHIR-style date or date-time near the edges: '9999', '0001-01', '9999-12-31',
    '9999-12-31T23:59:59-05:00', '0001-01-01T00:00:00+05:00', without an offset too."""
    year = draw(YEARS)
    month = draw(st.sampled_from([1, 12]) | st.integers(1, 12))
    day = draw(st.sampled_from([1, 28, 31]) | st.integers(1, 28))
    precision = draw(st.sampled_from(["year", "month", "day", "time", "time"]))
    if precision == "year":
        return f"{year:04d}"
    if precision == "month":
        return f"{year:04d}-{month:02d}"
    if precision == "day":
        return f"{year:04d}-{month:02d}-{day:02d}"
    return f"{year:04d}-{month:02d}-{day:02d}T{draw(EDGE_TIMES)}{draw(OFFSETS)}"


FHIR_DATE_KEYS = {
    "effectiveDateTime",
    "issued",
    "authoredOn",
    "birthDate",
    "onsetDateTime",
    "recordedDate",
    "abatementDateTime",
    "dateAsserted",
    "occurrenceDateTime",
    "start",
    "end",
    "date",
    "dateWritten",
    "lastUpdated",
}


def replace_dates(document: Any, draw_date) -> int:
    """Every date-valued element of ``document`` replaced by a drawn one; how many."""
    count = 0
    if isinstance(document, dict):
        for key, value in document.items():
            if key in FHIR_DATE_KEYS and isinstance(value, str):
                document[key] = draw_date()
                count += 1
            else:
                count += replace_dates(value, draw_date)
    elif isinstance(document, list):
        for item in document:
            count += replace_dates(item, draw_date)
    return count


@deterministic(200)
@given(stamp=date_texts())
def test_feedback_outcome_timestamp_at_any_edge_is_used_or_a_400(production_app, issuer, stamp):
    body = sandbox_request("feedback")
    body["feedback"][0]["outcomeTimestamp"] = stamp
    response = post(production_app, issuer, "/cds-services/b12-order-sign/feedback", body)
    assert_answer(response)
    assert response.status_code in (200, 400)


@pytest.mark.parametrize(
    "stamp", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00-01:00"]
)
def test_the_reported_edge_timestamps(production_app, issuer, stamp):
    body = sandbox_request("feedback")
    body["feedback"][0]["outcomeTimestamp"] = stamp
    response = post(production_app, issuer, "/cds-services/b12-order-sign/feedback", body)
    issue = assert_answer(response)["issue"][0]
    assert response.status_code == 400
    assert "outcomeTimestamp" in issue["diagnostics"]


@pytest.mark.parametrize("stamp", ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"])
def test_edge_timestamps_utc_can_hold_are_stored(production_app, issuer, stamp):
    body = sandbox_request("feedback")
    body["feedback"][0]["card"] = f"edge-{stamp}"
    body["feedback"][0]["outcomeTimestamp"] = stamp
    response = post(production_app, issuer, "/cds-services/b12-order-sign/feedback", body)
    assert response.status_code == 200, response.get_data(as_text=True)


@deterministic(150)
@given(hook=st.sampled_from(sorted(SERVICES)), data=st.data())
def test_fhir_dates_at_any_edge_in_prefetch_and_drafts_are_never_a_5xx(
    production_app, issuer, hook, data
):
    body = request_for(hook)
    body.pop("fhirServer")  # nothing absent is fetched: the prefetch is all there is
    body.pop("fhirAuthorization")
    replaced = replace_dates(body, lambda: data.draw(date_texts()))
    assert replaced > 5
    response = post(production_app, issuer, f"/cds-services/{SERVICES[hook]}", body)
    assert_answer(response)
    assert response.status_code in (200, 400, 412)


# --- token claims -------------------------------------------------------------------------
def epoch(year: int, offset_minutes: int) -> float:
    """Seconds since 1970 of Jan 1st (year 1) or Dec 31st (year 9999) at that offset; may lie
    beyond what a datetime can hold once the offset is applied."""
    if year <= 1:
        moment = datetime(1, 1, 1, tzinfo=timezone.utc)
    else:
        moment = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)
    return moment.timestamp() - offset_minutes * 60


CLAIM_TIMES = (
    st.builds(epoch, st.sampled_from([1, 9999]), st.integers(-14 * 60, 14 * 60))
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
)


@deterministic(200)
@given(
    endpoint=st.sampled_from(["/cds-services", "/cds-services/b12-patient-view"]),
    iat=CLAIM_TIMES,
    exp=CLAIM_TIMES,
    nbf=st.none() | CLAIM_TIMES,
)
def test_token_times_at_any_edge_are_a_401_never_a_5xx(
    production_app, issuer, endpoint, iat, exp, nbf
):
    payload = {
        "iss": ISSUER,
        "aud": BASE + endpoint,
        "iat": iat,
        "exp": exp,
        "jti": str(uuid.uuid4()),
    }
    if nbf is not None:
        payload["nbf"] = nbf
    token = jwt.encode(payload, issuer.key, algorithm=ALGORITHM, headers={"kid": KID, "typ": "JWT"})
    headers = {"Authorization": f"Bearer {token}"}
    client = production_app.test_client()
    if endpoint == "/cds-services":
        response = client.get(endpoint, headers=headers)
    else:
        response = client.post(endpoint, json=sandbox_request("patient-view"), headers=headers)
    assert_answer(response)
    assert response.status_code in (200, 401, 412)


# --- the development profile's evaluation time --------------------------------------------
@deterministic(100)
@given(stamp=date_texts())
def test_evaluation_time_at_any_edge_is_used_or_a_400(client, stamp):
    response = client.post(
        "/cds-services/b12-order-sign",
        data=json.dumps(sandbox_request("order-sign")),
        headers={"Content-Type": "application/json", "CDS-Evaluation-Time": stamp},
    )
    assert_answer(response)
    assert response.status_code in (200, 400, 412)


def test_bearer_helper_is_the_same_as_the_suites(issuer):
    # This module signs its own claims; the rest of the suite's tokens come from bearer().
    assert bearer(issuer, "/cds-services")["Authorization"].startswith("Bearer ")
