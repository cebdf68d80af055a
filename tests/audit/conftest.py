"""A small synthetic population, written once per session (it is seeded: always the same)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from cds_service.audit.synth import write_population

AS_OF = datetime(2026, 6, 15, 9, 0, tzinfo=timezone.utc)
PATIENTS = 400


@pytest.fixture(scope="session")
def population(tmp_path_factory):
    folder = tmp_path_factory.mktemp("population")
    write_population(folder, PATIENTS, seed=7, as_of=AS_OF)
    return folder
