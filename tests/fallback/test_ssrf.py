"""SSRF protection: allowlist prefixes, address classes, and connections that go only to the
address that was checked (docs/protocol.md, "The FHIR server the service calls")."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from cds_service.fhir.client import FetchLimits, FhirFetcher
from cds_service.fhir.ssrf import (
    AddressGuard,
    AddressPolicy,
    Refused,
    ResolutionFailed,
    address_problem,
    check_url,
    under_prefix,
)

PREFIX = "https://ehr.example.org/fhir"


@pytest.mark.parametrize(
    "url",
    [
        "https://ehr.example.org/fhir",
        "https://ehr.example.org/fhir/",
        "https://ehr.example.org/fhir/Patient/1",
        "https://EHR.example.org/fhir/Observation?patient=1",
        "https://ehr.example.org:443/fhir",
        "https://ehr.example.org./fhir",
    ],
)
def test_urls_under_the_prefix(url):
    assert under_prefix(url, PREFIX)


@pytest.mark.parametrize(
    "url",
    [
        "https://ehr.example.org/fhir-admin",
        "https://ehr.example.org/",
        "https://ehr.example.org.evil.net/fhir",
        "https://evil.net/ehr.example.org/fhir",
        "http://ehr.example.org/fhir",
        "https://ehr.example.org:8443/fhir",
        "https://ehr.example.org@evil.net/fhir",
        "https://user:pw@ehr.example.org/fhir",
        "ftp://ehr.example.org/fhir",
        "https://ehr.example.org:99999/fhir",
    ],
)
def test_urls_not_under_the_prefix(url):
    assert not under_prefix(url, PREFIX)


def test_credentials_in_fhir_server_are_refused_even_when_the_host_is_allowed():
    with pytest.raises(Refused, match="credentials"):
        check_url("https://me:pw@ehr.example.org/fhir", [PREFIX], allow_loopback=False)


@pytest.mark.parametrize(
    "url", ["http://localhost:8090/fhir", "http://127.0.0.1/fhir", "http://[::1]:9/fhir"]
)
def test_loopback_urls_only_when_allowed(url):
    assert check_url(url, [], allow_loopback=True).host in ("localhost", "127.0.0.1", "::1")
    with pytest.raises(Refused, match="allowlist"):
        check_url(url, [], allow_loopback=False)


NEVER = [
    "169.254.169.254",
    "169.254.10.10",
    "fe80::1",
    "fd00:ec2::254",
    "100.100.100.200",
    "0.0.0.0",
    "::",
    "224.0.0.251",
    "ff02::1",
    "240.0.0.1",
    "::ffff:169.254.169.254",
    "64:ff9b::a9fe:a9fe",
]
PRIVATE = ["10.0.0.1", "172.16.5.4", "192.168.1.1", "100.64.0.1", "fd12:3456::1", "::ffff:10.0.0.1"]
LOOPBACK = ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"]
PUBLIC = ["93.184.215.14", "2606:4700::1111"]


@pytest.mark.parametrize("address", NEVER)
def test_link_local_metadata_multicast_unspecified_are_never_allowed(address):
    ip = ipaddress.ip_address(address)
    assert address_problem(ip, AddressPolicy(allow_loopback=True, allow_private=True))


@pytest.mark.parametrize("address", PRIVATE)
def test_private_ranges_need_allow_private(address):
    ip = ipaddress.ip_address(address)
    assert address_problem(ip, AddressPolicy()) == "a private address"
    assert address_problem(ip, AddressPolicy(allow_loopback=True)) == "a private address"
    assert address_problem(ip, AddressPolicy(allow_private=True)) is None


@pytest.mark.parametrize("address", LOOPBACK)
def test_loopback_needs_the_development_profile_or_allow_private(address):
    ip = ipaddress.ip_address(address)
    assert address_problem(ip, AddressPolicy()) == "a loopback address"
    assert address_problem(ip, AddressPolicy(allow_loopback=True)) is None
    assert address_problem(ip, AddressPolicy(allow_private=True)) is None


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address):
    assert address_problem(ipaddress.ip_address(address), AddressPolicy()) is None


def test_every_resolved_address_is_checked():
    guard = AddressGuard(AddressPolicy())
    with pytest.raises(Refused, match="private"):
        guard.check("mixed.example.org", 443)  # one public, one private address
    assert guard.check("ehr.example.org", 443) == ("93.184.215.14",)


def test_resolution_failure_is_its_own_reason():
    with pytest.raises(ResolutionFailed, match="could not be resolved"):
        AddressGuard(AddressPolicy()).check("nowhere.invalid", 443)


def test_failed_lookups_are_not_cached():
    answers = [
        socket.gaierror(socket.EAI_AGAIN, "try again"),
        [(socket.AF_INET, 1, 6, "", ("93.184.215.14", 443))],
    ]

    def resolver(*_args):
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    guard = AddressGuard(AddressPolicy(), resolver=resolver)
    with pytest.raises(ResolutionFailed):
        guard.check("flaky.example.org", 443)
    assert guard.check("flaky.example.org", 443) == ("93.184.215.14",)


# --- connections go to the checked address -----------------------------------------------


class Rebinding:
    """A resolver whose answer changes between the check and the connection."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.calls = 0

    def __call__(self, host, port, *_args):
        address = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]


def _fetcher(guard: AddressGuard, server: str) -> FhirFetcher:
    return FhirFetcher(allowlist=[server], guard=guard, limits=FetchLimits(budget_ms=3000))


def test_the_connection_rechecks_the_address_it_connects_to(local_server, mock):
    # First answer (pre-flight) loopback, then a private address at connect time: refused
    # at connect, so nothing reaches 10.0.0.1 (and a bug would only reach loopback).
    server = f"http://rebind.example.org:{local_server.port}/fhir"
    mock.add_passthru("http://rebind.example.org")
    resolver = Rebinding("127.0.0.1", "10.0.0.1")
    fetcher = _fetcher(
        AddressGuard(AddressPolicy(allow_loopback=True), resolver=resolver, cache_seconds=0), server
    )
    try:
        outcome = fetcher.fetch(server, "tok", {"p": "Patient/1"}, {})["p"]
    finally:
        fetcher.close()
    assert outcome.error == "the FHIR server's host resolves to a private address"
    assert resolver.calls == 2
    assert local_server.requests == []


def test_the_connection_goes_to_the_checked_address_with_the_name_as_host(local_server, mock):
    local_server.json("/fhir/Patient/1", {"resourceType": "Patient", "id": "1"})
    server = f"http://fhir.example.org:{local_server.port}/fhir"
    mock.add_passthru("http://fhir.example.org")
    resolver = Rebinding("127.0.0.1")
    fetcher = _fetcher(AddressGuard(AddressPolicy(allow_loopback=True), resolver=resolver), server)
    try:
        outcome = fetcher.fetch(server, "tok", {"p": "Patient/1"}, {})["p"]
    finally:
        fetcher.close()
    assert outcome.resources == ({"resourceType": "Patient", "id": "1"},)
    path, headers = local_server.requests[0]
    assert path == "/fhir/Patient/1"
    assert headers["Host"] == f"fhir.example.org:{local_server.port}"
    assert headers["Authorization"] == "Bearer tok"
    assert resolver.calls == 1  # the checked answer is reused by the connection


def test_the_session_ignores_proxies_from_the_environment(local_server, mock, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://10.9.9.9:3128")
    monkeypatch.setenv("http_proxy", "http://10.9.9.9:3128")
    local_server.json("/fhir/Patient/1", {"resourceType": "Patient", "id": "1"})
    fetcher = FhirFetcher(
        allow_loopback_servers=True, address_policy=AddressPolicy(allow_loopback=True)
    )
    try:
        outcome = fetcher.fetch(f"{local_server.base}/fhir", None, {"p": "Patient/1"}, {})["p"]
    finally:
        fetcher.close()
    assert outcome.error is None


def test_a_direct_session_call_is_guarded_too(local_server, mock):
    # Whatever calls the pooled session, the address check happens at connect time.
    fetcher = FhirFetcher(address_policy=AddressPolicy(allow_loopback=False))
    try:
        _, session = fetcher._resources()
        with pytest.raises(Refused, match="loopback"):
            session.get(f"{local_server.base}/fhir/metadata", timeout=1)
    finally:
        fetcher.close()
    assert local_server.requests == []


def test_the_session_refuses_to_use_a_proxy_even_if_asked(mock):
    # A proxy would connect somewhere else than the checked address. (If this failed, the
    # call would go to a closed loopback port, not to the network.)
    mock.add_passthru("http://ehr.example.org")
    fetcher = FhirFetcher()
    try:
        _, session = fetcher._resources()
        with pytest.raises(Refused, match="proxies"):
            session.get(
                "http://ehr.example.org/fhir", proxies={"http": "http://127.0.0.1:9"}, timeout=1
            )
    finally:
        fetcher.close()


# --- TLS: the socket goes to the checked address, the certificate is checked for the name ---


def _self_signed(tmp_path, name: str) -> tuple[str, str]:
    from datetime import datetime, timedelta, timezone

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(certfile), str(keyfile)


@pytest.mark.parametrize(
    "certificate_name, ok", [("fhir.example.org", True), ("evil.example.org", False)]
)
def test_tls_checks_the_certificate_against_the_name_not_the_address(
    tmp_path, mock, local_server, certificate_name, ok
):
    certfile, keyfile = _self_signed(tmp_path, certificate_name)
    local_server.use_tls(certfile, keyfile)
    local_server.json("/fhir/Patient/1", {"resourceType": "Patient", "id": "1"})
    server = f"https://fhir.example.org:{local_server.port}/fhir"
    mock.add_passthru("https://fhir.example.org")
    guard = AddressGuard(AddressPolicy(allow_loopback=True), resolver=Rebinding("127.0.0.1"))
    fetcher = _fetcher(guard, server)
    try:
        _, session = fetcher._resources()
        session.verify = certfile  # trust the test certificate (and nothing else)
        outcome = fetcher.fetch(server, "tok", {"p": "Patient/1"}, {})["p"]
    finally:
        fetcher.close()
    if ok:
        assert outcome.resources == ({"resourceType": "Patient", "id": "1"},)
    else:
        assert outcome.error == "the TLS connection to the FHIR server failed"
        assert local_server.requests == []
