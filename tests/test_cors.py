"""CORS is diagnosable (docs/security.md, "CORS"): an origin the configuration does not allow
is logged (the origin, at most once a minute per origin) and counted in the metrics, on
preflight and on the call itself; allowed origins and calls without an Origin are not."""

from __future__ import annotations

import logging

import pytest

from cds_service.cdshooks.application import CdsApplication
from cds_service.config import load_settings
from cds_service.web import create_app
from hooks import registry
from tests.metrics_text import value

ALLOWED = "https://sandbox.cds-hooks.org"
REFUSED = "https://evil.example.net"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def make_app(tmp_path, store):
    def make(origins: str, profile: str = "production"):
        settings = load_settings(
            {
                "CDS_PROFILE": profile,
                "CDS_DATABASE_URL": f"sqlite:///{tmp_path}/cds.sqlite3",
                "CDS_CORS_ORIGINS": origins,
                "CDS_ALLOW_ANONYMOUS": "1",
            }
        )
        app = create_app(settings, CdsApplication(registry=registry(), store=store))
        clock = Clock()
        app.extensions["cds_cors_refused"].clock = clock
        return app, clock

    return make


@pytest.fixture
def cors_log(caplog):
    caplog.set_level(logging.INFO, logger="cds_service.cors")
    return caplog


def refusals(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == "cors origin refused"]


def preflight(client, origin: str, path: str = "/cds-services/b12-order-sign"):
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )


def refused_count(client, kind: str) -> float:
    return value(client.get("/metrics").get_data(as_text=True), "cds_cors_refused_total", kind=kind)


def test_a_refused_preflight_is_logged_with_its_origin_and_counted(make_app, cors_log):
    app, _ = make_app(ALLOWED)
    client = app.test_client()
    before = refused_count(client, "preflight")
    response = preflight(client, REFUSED)
    assert "Access-Control-Allow-Origin" not in response.headers
    [record] = refusals(cors_log)
    assert record.levelno == logging.WARNING
    assert (record.origin, record.kind) == (REFUSED, "preflight")
    assert record.allowed_origins == [ALLOWED]
    assert record.path == "/cds-services/b12-order-sign"
    assert refused_count(client, "preflight") == before + 1


def test_an_origin_is_logged_at_most_once_a_minute_and_counted_every_time(make_app, cors_log):
    app, clock = make_app(ALLOWED)
    client = app.test_client()
    before = refused_count(client, "preflight")
    for _ in range(5):
        preflight(client, REFUSED)
        clock.now += 10
    assert len(refusals(cors_log)) == 1
    assert refused_count(client, "preflight") == before + 5
    clock.now += 20  # a minute after the first
    preflight(client, REFUSED)
    logged = refusals(cors_log)
    assert len(logged) == 2
    assert logged[-1].suppressed == 4  # the refusals of that minute that were not logged


def test_each_origin_has_its_own_minute(make_app, cors_log):
    app, _ = make_app(ALLOWED)
    client = app.test_client()
    preflight(client, REFUSED)
    preflight(client, "http://localhost:8080")
    preflight(client, REFUSED)
    assert [r.origin for r in refusals(cors_log)] == [REFUSED, "http://localhost:8080"]


def test_a_refused_call_is_counted_as_a_request(make_app, cors_log):
    app, _ = make_app(ALLOWED)
    client = app.test_client()
    before = refused_count(client, "request")
    response = client.get("/cds-services", headers={"Origin": REFUSED})
    assert response.status_code == 200  # CORS is the browser's to enforce
    assert "Access-Control-Allow-Origin" not in response.headers
    assert refusals(cors_log)[0].kind == "request"
    assert refused_count(client, "request") == before + 1


def test_a_long_origin_is_cut_in_the_log(make_app, cors_log):
    app, _ = make_app(ALLOWED)
    preflight(app.test_client(), "https://" + "a" * 5000 + ".example")
    assert len(refusals(cors_log)[0].origin) == 200


@pytest.mark.parametrize("origin", [ALLOWED, ALLOWED.upper().replace("HTTPS", "https"), None])
def test_an_allowed_origin_or_none_is_not_a_refusal(make_app, cors_log, origin):
    app, _ = make_app(ALLOWED)
    client = app.test_client()
    before = refused_count(client, "preflight")
    headers = {"Origin": origin} if origin else {}
    response = client.options("/cds-services", headers=headers)
    if origin:
        assert response.headers["Access-Control-Allow-Origin"]
    assert refusals(cors_log) == []
    assert refused_count(client, "preflight") == before


def test_production_without_origins_refuses_and_says_so(make_app, cors_log):
    app, _ = make_app("")
    preflight(app.test_client(), ALLOWED)
    [record] = refusals(cors_log)
    assert record.allowed_origins == []


def test_development_allows_any_origin(make_app, cors_log):
    app, _ = make_app("*", profile="development")
    response = preflight(app.test_client(), REFUSED)
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert refusals(cors_log) == []


def test_the_refused_origin_log_is_bounded():
    from cds_service.web.cors import MAX_TRACKED_ORIGINS, RefusedOrigins

    clock = Clock()
    refused = RefusedOrigins(clock=clock)
    for i in range(MAX_TRACKED_ORIGINS * 3):
        assert refused.should_log(f"https://o{i}.example")[0]
    assert len(refused._next) <= MAX_TRACKED_ORIGINS
