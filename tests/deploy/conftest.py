"""The real FHIR server of the prefetch fallback's tests (sekmet-fhir on loopback), reused to
check that the demo seeding works against a real server."""

from tests.fallback.test_real_fhir_server import fhir_server  # noqa: F401


def pytest_terminal_summary(terminalreporter):
    """Say which parts of the docker tests ran on stand-in images (tests/deploy/standins.py)."""
    from .docker_env import REPORT

    if REPORT:
        terminalreporter.section("docker: images")
        for line in REPORT:
            terminalreporter.line(line)
