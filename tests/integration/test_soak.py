"""The soak (bench/soak.py) for ~10 s in CI: a real server under mixed good, hostile and
feedback requests; zero 5xx, zero lost feedback, bounded worker memory. Longer by hand:
``.venv/bin/python -m bench.soak --seconds 600``."""

from __future__ import annotations

import pytest

from bench import soak

pytestmark = pytest.mark.integration


def test_a_short_soak_passes(tmp_path):
    report = soak.run(10, workdir=tmp_path)
    assert report.ok, f"{report.summary()}\n{report.log_tail}"
    assert report.statuses[200] and report.statuses[400] and report.feedback_acknowledged
