""".env.example documents every CDS_ setting the service reads, names none it does not know,
and its values (defaults included) are accepted by the service's own settings check."""

from __future__ import annotations

import re

from cds_service.config import BY_ENV, load_settings

from .files import ROOT

ENV_EXAMPLE = (ROOT / ".env.example").read_text(encoding="utf-8")
ASSIGNMENT = re.compile(r"^#?\s*(CDS_[A-Z_]+)=(.*)$")


def known_settings() -> set[str]:
    """Every CDS_ name cds_service/config.py accepts."""
    return set(BY_ENV)


def documented() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in ENV_EXAMPLE.splitlines():
        match = ASSIGNMENT.match(line.strip())
        if match:
            found.setdefault(match[1], []).append(match[2].strip())
    return found


def test_every_setting_is_documented():
    missing = known_settings() - set(documented())
    assert not missing, f".env.example does not document {sorted(missing)}"


def test_no_unknown_setting_is_documented():
    assert set(documented()) <= known_settings()


def test_each_documented_value_is_accepted():
    for name, values in documented().items():
        for value in values:
            if not value or name in (
                "CDS_TRUSTED_CLIENTS",
                "CDS_CONFIG_FILE",
                "CDS_SITE_POLICY",
                "CDS_DATABASE_PASSWORD_FILE",
            ):
                continue  # empty (unset), or a file inside the container
            load_settings({name: value, "CDS_PROFILE": "production"})


def test_it_holds_the_services_settings_only():
    # Compose hands the whole file (as cds.env) to the replicas, and only to them: no
    # variable of the stack (POSTGRES_*, HTTP_PORT) and no password belongs here.
    for line in ENV_EXAMPLE.splitlines():
        if line and not line.startswith("#") and "=" in line:
            name = line.split("=", 1)[0]
            assert name.startswith("CDS_") and name in known_settings(), name
