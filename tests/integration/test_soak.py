"""The soak (bench/soak.py) for ~10 s in CI: a real server under mixed good, hostile and
feedback requests; zero 5xx, zero lost feedback, bounded worker memory; and ~24 s of its
fault mode. Longer by hand: ``make soak SOAK_SECONDS=600`` (``SOAK_FAULTS=1``)."""

from __future__ import annotations

import pytest

from bench import soak

pytestmark = pytest.mark.integration


def test_a_short_soak_passes(tmp_path):
    report = soak.run(10, workdir=tmp_path)
    assert report.ok, f"{report.summary()}\n{report.log_tail}"
    assert report.statuses[200] and report.statuses[400] and report.feedback_acknowledged


def test_a_short_soak_with_faults_passes(tmp_path):
    """PostgreSQL stopped and restarted, a worker killed: only the promised 503s, no feedback
    lost, cards never stopped (bench/soak.py, fault mode)."""
    report = soak.run(24, workdir=tmp_path, faults=True)
    assert report.ok, f"{report.summary()}\n{report.log_tail}"
    assert report.workers_replaced and report.statuses[200] and report.feedback_acknowledged
    assert any("database stopped" in event for event in report.events)
