"""The home page's settings, and where Try it finds its synthetic scenarios."""

from __future__ import annotations

import json

import pytest

from cds_service.config import ConfigError, Settings, load_settings
from cds_service.web.scenarios import DEFAULT_DIR, FEATURED, load_scenarios
from tests.conftest import FIXTURES


def test_development_shows_try_it_and_feedback_production_does_not():
    dev = load_settings({"CDS_PROFILE": "development"})
    prod = load_settings({"CDS_PROFILE": "production"})
    assert (dev.home_page, dev.home_try_it, dev.home_feedback) == (True, True, True)
    assert (prod.home_page, prod.home_try_it, prod.home_feedback) == (True, False, False)
    assert Settings().home_try_it is False  # the safe default


def test_each_section_is_a_switch():
    settings = load_settings(
        {
            "CDS_PROFILE": "production",
            "CDS_HOME_PAGE": "0",
            "CDS_HOME_TRY_IT": "yes",
            "CDS_HOME_FEEDBACK": "true",
        }
    )
    assert (settings.home_page, settings.home_try_it, settings.home_feedback) == (
        False,
        True,
        True,
    )


@pytest.mark.parametrize("name", ["CDS_HOME_PAGE", "CDS_HOME_TRY_IT", "CDS_HOME_FEEDBACK"])
def test_a_bad_switch_names_the_setting(name):
    with pytest.raises(ConfigError, match=name):
        load_settings({name: "maybe"})


def test_the_scenarios_directory_must_exist(tmp_path):
    assert load_settings({"CDS_SCENARIOS_DIR": str(tmp_path)}).scenarios_dir == str(tmp_path)
    with pytest.raises(ConfigError, match="CDS_SCENARIOS_DIR"):
        load_settings({"CDS_SCENARIOS_DIR": str(tmp_path / "missing")})
    assert load_settings({}).scenarios_dir is None


def test_the_default_scenarios_are_the_projects_fixtures():
    assert DEFAULT_DIR == FIXTURES / "scenarios"


def write(folder, meta=None, request=True):
    folder.mkdir(parents=True)
    if meta is not None:
        (folder / "scenario.json").write_text(json.dumps(meta))
    if request:
        (folder / "request.json").write_text('{"hook": "order-sign"}')


META = {
    "title": "B",
    "shows": "s",
    "service": "b12-order-sign",
    "evaluationTime": "2026-06-15T12:00:00Z",
    "rules": ["folate-before-b12"],
}


def test_scenarios_load_featured_first_then_by_title_skipping_what_cannot_be_shown(tmp_path):
    write(tmp_path / "b", META)
    write(tmp_path / "a", {**META, "title": "A"})
    write(tmp_path / FEATURED, {**META, "title": "Z"})
    write(tmp_path / "unknown-service", {**META, "service": "other"})
    write(tmp_path / "no-meta")
    write(tmp_path / "bad-json", META)
    (tmp_path / "bad-json" / "scenario.json").write_text("{")
    write(tmp_path / "bad-time", {**META, "evaluationTime": "soon"})
    write(tmp_path / "no-request", META, request=False)
    (tmp_path / "stray-file.txt").write_text("x")
    scenarios = load_scenarios(tmp_path, ["b12-order-sign"])
    assert list(scenarios) == [FEATURED, "a", "b"]
    scenario = scenarios["b"]
    assert scenario.now.isoformat() == "2026-06-15T12:00:00+00:00"
    assert scenario.rules == ("folate-before-b12",)
    assert scenario.request() == {"hook": "order-sign"}


def test_a_missing_directory_offers_no_scenario(tmp_path):
    assert load_scenarios(tmp_path / "missing", ["b12-order-sign"]) == {}


def test_a_settings_directory_replaces_the_default(make_app, tmp_path):
    write(tmp_path / "only-one", {**META, "title": "Only one"})
    app, _ = make_app(CDS_PROFILE="development", CDS_SCENARIOS_DIR=str(tmp_path))
    page = app.test_client().get("/").get_data(as_text=True)
    assert page.count("<option ") == 1 and "Only one" in page


def test_without_scenarios_try_it_says_where_to_point(make_app, tmp_path):
    app, _ = make_app(CDS_PROFILE="development", CDS_SCENARIOS_DIR=str(tmp_path))
    page = app.test_client().get("/").get_data(as_text=True)
    assert "No scenarios found. Set <code>CDS_SCENARIOS_DIR</code>" in page


def test_a_scenario_whose_request_cannot_be_read_says_so(make_app, tmp_path):
    write(tmp_path / "broken", {**META, "title": "Broken"})
    (tmp_path / "broken" / "request.json").write_text("{not json")
    app, _ = make_app(CDS_PROFILE="development", CDS_SCENARIOS_DIR=str(tmp_path))
    response = app.test_client().get("/?scenario=broken")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert (
        "The service refused the request: The scenario&#39;s request.json cannot be read." in page
    )
