"""The real FHIR server of the prefetch fallback's tests (sekmet-fhir on loopback), reused to
check that the demo seeding works against a real server."""

from tests.fallback.test_real_fhir_server import fhir_server  # noqa: F401
