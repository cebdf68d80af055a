"""Fixtures for the prefetch fallback: fake DNS (no test resolves a real name), fetchers that
are closed after the test, a real loopback HTTP server, and request bodies shaped like the
sandbox captures in fixtures/sandbox/."""

from __future__ import annotations

import ipaddress
import json
import socket
from pathlib import Path

import pytest

from cds_service.fhir.client import FetchLimits, FhirFetcher
from cds_service.fhir.ssrf import AddressPolicy

from .localserver import LocalServer

EHR = "https://ehr.example.org/fhir"
TOKEN = "s3cr3t-access-token-Zq9"
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sandbox"

#: Names the fake resolver knows. The public addresses are never connected to: ``responses``
#: answers for those hosts, and nothing passes through to them.
DNS = {
    "ehr.example.org": ["93.184.215.14"],
    "other.example.net": ["93.184.215.15"],
    "metadata.example.org": ["169.254.169.254"],
    "mixed.example.org": ["93.184.215.16", "10.1.2.3"],
    "intranet.example.org": ["10.20.30.40"],
    "localhost": ["127.0.0.1"],
}


def fake_getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
    host = str(host).strip("[]")
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        if host not in DNS:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
        addresses = DNS[host]
    result = []
    for address in addresses:
        if ":" in address:
            result.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
        else:
            result.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
    return result


@pytest.fixture(autouse=True)
def fake_dns(monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)


@pytest.fixture
def mock(no_network):
    """The suite-wide ``responses`` mock (tests/conftest.py): register answers on it."""
    return no_network


@pytest.fixture
def make_fetcher():
    made: list[FhirFetcher] = []

    def make(allowlist=(EHR,), *, loopback=False, private=False, **limits) -> FhirFetcher:
        fetcher = FhirFetcher(
            allowlist=allowlist,
            address_policy=AddressPolicy(allow_loopback=loopback, allow_private=private),
            allow_loopback_servers=loopback,
            limits=FetchLimits(**limits),
        )
        made.append(fetcher)
        return fetcher

    yield make
    for fetcher in made:
        fetcher.close()


@pytest.fixture
def local_server():
    server = LocalServer().start()
    yield server
    server.stop()


def capture(name: str) -> dict:
    """The body of a request the public sandbox sent (fixtures/sandbox/)."""
    return json.loads((FIXTURES / f"{name}.request.json").read_text())
