"""Settings are validated at start-up with a message naming the bad variable."""

from __future__ import annotations

import json

import pytest

from cds_service.config import ConfigError, load_settings
from cds_service.domain.policy import Formulary


def test_defaults_are_the_production_profile():
    settings = load_settings({})
    assert settings.profile == "production"
    assert settings.cors_origins == ()
    assert settings.max_body_bytes == 5 * 1024 * 1024


def test_development_profile_allows_any_origin():
    assert load_settings({"CDS_PROFILE": "development"}).cors_origins == ("*",)


@pytest.mark.parametrize(
    "env, named",
    [
        ({"CDS_PROFILE": "staging"}, "CDS_PROFILE"),
        ({"CDS_MAX_BODY_BYTES": "lots"}, "CDS_MAX_BODY_BYTES"),
        ({"CDS_MAX_BODY_BYTES": "0"}, "CDS_MAX_BODY_BYTES"),
        ({"CDS_WORKERS": "-1"}, "CDS_WORKERS"),
        ({"CDS_CORS_ORIGINS": "example.org"}, "CDS_CORS_ORIGINS"),
        ({"CDS_LOG_LEVEL": "LOUD"}, "CDS_LOG_LEVEL"),
        ({"CDS_ALLOW_ANONYMOUS": "maybe"}, "CDS_ALLOW_ANONYMOUS"),
        ({"CDS_TYPO": "1"}, "CDS_TYPO"),
        ({"CDS_SITE_POLICY": "/nonexistent/policy.yaml"}, "CDS_SITE_POLICY"),
    ],
)
def test_bad_values_name_the_setting(env, named):
    with pytest.raises(ConfigError, match=named):
        load_settings(env)


def test_config_file_is_read_and_environment_wins(tmp_path):
    path = tmp_path / "cds.yaml"
    path.write_text("max_body_bytes: 1000\nlog_level: debug\n")
    settings = load_settings({"CDS_CONFIG_FILE": str(path), "CDS_LOG_LEVEL": "WARNING"})
    assert settings.max_body_bytes == 1000
    assert settings.log_level == "WARNING"


def test_site_policy_file_overrides_thresholds(tmp_path):
    path = tmp_path / "policy.json"
    path.write_text(
        json.dumps(
            {"thresholds": {"total_b12_deficient_below_ng_l": 200}, "formulary": "cyanocobalamin"}
        )
    )
    settings = load_settings({"CDS_SITE_POLICY": str(path)})
    assert settings.policy.thresholds.total_b12_deficient_below_ng_l == 200
    assert settings.policy.formulary is Formulary.CYANOCOBALAMIN


def test_site_policy_error_names_the_bad_key(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("thresholds:\n  total_b12_deficient_below_ng_l: low\n")
    with pytest.raises(ConfigError, match="thresholds.total_b12_deficient_below_ng_l"):
        load_settings({"CDS_SITE_POLICY": str(path)})
