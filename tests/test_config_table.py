"""Each setting is declared once, on its ``Settings`` field: the loader, the unknown-name check,
the file keys and the defaults all come from that one declaration."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from cds_service.config import BY_ENV, SETTINGS, ConfigError, Settings, load_settings

#: The names operators have configured: renaming one would silently drop their setting (the
#: unknown-name check would then refuse the old name, but only after an upgrade).
NAMES = {
    "CDS_PROFILE", "CDS_PUBLIC_BASE_URL", "CDS_TRUSTED_CLIENTS", "CDS_ALLOW_ANONYMOUS",
    "CDS_JWT_ALGORITHMS", "CDS_JWT_MAX_LIFETIME_S", "CDS_CORS_ORIGINS", "CDS_DATABASE_URL",
    "CDS_DATABASE_PASSWORD_FILE", "CDS_LEDGER_RETENTION_DAYS", "CDS_FEEDBACK_RETENTION_DAYS",
    "CDS_PORT", "CDS_WORKERS", "CDS_THREADS", "CDS_GRACEFUL_TIMEOUT", "CDS_MAX_REQUESTS",
    "CDS_FORWARDED_ALLOW_IPS", "CDS_REPLAY_STORE_UNAVAILABLE", "CDS_MAX_BODY_BYTES",
    "CDS_LOG_LEVEL", "CDS_SITE_POLICY", "CDS_CONFIG_FILE", "CDS_HOME_PAGE", "CDS_HOME_TRY_IT",
    "CDS_HOME_FEEDBACK", "CDS_SCENARIOS_DIR", "CDS_FHIR_ALLOWLIST", "CDS_FHIR_ALLOW_PRIVATE",
    "CDS_FHIR_STRICT", "CDS_FHIR_BUDGET_MS", "CDS_FHIR_CONNECT_TIMEOUT_MS",
    "CDS_FHIR_READ_TIMEOUT_MS", "CDS_FHIR_MAX_PAGES", "CDS_FHIR_MAX_ENTRIES", "CDS_FHIR_MAX_BYTES",
}  # fmt: skip


def test_every_known_name_is_still_read():
    assert set(BY_ENV) == NAMES


def test_every_field_but_the_policy_is_a_setting():
    attributes = {f.name for f in dataclasses.fields(Settings)}
    assert attributes - {s.attribute for s in SETTINGS} == {"policy"}


@pytest.mark.parametrize("item", SETTINGS, ids=lambda s: s.env)
def test_each_default_reads_back_as_itself(item):
    # The default written as an environment variable (what .env.example shows) is accepted
    # and means the default.
    assert item.read(item.kind.text(item.default)) == item.default


@pytest.mark.parametrize("item", SETTINGS, ids=lambda s: s.env)
def test_each_setting_has_help_and_says_what_it_accepts(item):
    assert len(item.help) > 20 and item.kind.accepts
    assert item.section


def test_loading_nothing_gives_the_declared_defaults_of_production():
    loaded, declared = load_settings({}), Settings()
    for item in SETTINGS:
        if item.profile_default is None:
            assert getattr(loaded, item.attribute) == getattr(declared, item.attribute), item.env


@pytest.mark.parametrize(
    "env, attribute, development, production",
    [
        ("CDS_CORS_ORIGINS", "cors_origins", ("*",), ()),
        ("CDS_HOME_TRY_IT", "home_try_it", True, False),
        ("CDS_HOME_FEEDBACK", "home_feedback", True, False),
    ],
)
def test_profile_defaults_follow_the_profile_and_yield_to_a_value(
    env, attribute, development, production
):
    assert getattr(load_settings({"CDS_PROFILE": "development"}), attribute) == development
    assert getattr(load_settings({"CDS_PROFILE": "production"}), attribute) == production
    explicit = BY_ENV[env].kind.text(production)
    chosen = load_settings({"CDS_PROFILE": "development", env: explicit})
    assert getattr(chosen, attribute) == production


#: Paths of files read where they are used; each is tested with its own file.
FILES = ("CDS_CONFIG_FILE", "CDS_SITE_POLICY", "CDS_TRUSTED_CLIENTS", "CDS_DATABASE_PASSWORD_FILE")


@pytest.mark.parametrize("item", [s for s in SETTINGS if s.env not in FILES], ids=lambda s: s.env)
def test_each_setting_can_come_from_the_config_file(item, tmp_path):
    value = item.example if item.example is not None else item.kind.text(item.default)
    if item.env == "CDS_SCENARIOS_DIR":
        value = str(tmp_path)
    path = tmp_path / "cds.yaml"
    path.write_text(yaml.safe_dump({item.file_key: value}))
    loaded = load_settings({"CDS_CONFIG_FILE": str(path)})
    assert getattr(loaded, item.attribute) == item.read(value)


def test_the_environment_wins_over_the_config_file(tmp_path):
    path = tmp_path / "cds.yaml"
    path.write_text("fhir_max_pages: 3\nthreads: 4\n")
    loaded = load_settings({"CDS_CONFIG_FILE": str(path), "CDS_THREADS": "2"})
    assert (loaded.fhir_max_pages, loaded.threads) == (3, 2)


@pytest.mark.parametrize("where", ["environment", "file"])
def test_an_unknown_name_is_refused_wherever_it_is(where, tmp_path):
    path = tmp_path / "cds.yaml"
    path.write_text("fhir_max_pagez: 3\n")
    environ = {"CDS_FHIR_MAX_PAGEZ": "3"} if where == "environment" else {}
    if where == "file":
        environ["CDS_CONFIG_FILE"] = str(path)
    with pytest.raises(ConfigError, match="CDS_FHIR_MAX_PAGEZ: unknown setting"):
        load_settings(environ)


@pytest.mark.parametrize(
    "env, raw, message",
    [
        ("CDS_PORT", "http", "CDS_PORT: expected a whole number, got 'http'"),
        ("CDS_JWT_MAX_LIFETIME_S", "59", "CDS_JWT_MAX_LIFETIME_S: must be at least 60, got 59"),
        ("CDS_HOME_PAGE", "maybe", "CDS_HOME_PAGE: expected 1/0"),
        ("CDS_REPLAY_STORE_UNAVAILABLE", "drop", "expected accept or refuse, got 'drop'"),
        ("CDS_LOG_LEVEL", "loud", "expected DEBUG, INFO, WARNING or ERROR, got 'LOUD'"),
        ("CDS_FHIR_ALLOWLIST", "ftp://x", "CDS_FHIR_ALLOWLIST: 'ftp://x' is not an http"),
    ],
)
def test_a_bad_value_says_what_the_setting_expects(env, raw, message):
    with pytest.raises(ConfigError) as raised:
        load_settings({env: raw})
    assert message in str(raised.value)


def test_a_yaml_boolean_is_not_a_number(tmp_path):
    path = tmp_path / "cds.yaml"
    path.write_text("threads: true\n")
    with pytest.raises(ConfigError, match="CDS_THREADS: expected a whole number"):
        load_settings({"CDS_CONFIG_FILE": str(path)})


def test_workers_default_to_two_per_available_cpu(monkeypatch):
    monkeypatch.setattr("cds_service.config.available_cpus", lambda: 3)
    assert load_settings({}).workers == 6
