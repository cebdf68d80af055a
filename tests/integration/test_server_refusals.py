"""What gunicorn refuses before the application sees a request is an OperationOutcome too
(docs/security.md, "What is refused"): through the real server, a 16 KiB token reaches the
application (a 401 from the token check, not a 431), beyond the header limit the answer is a
JSON 431, an oversized request line a JSON 414, malformed HTTP a JSON 400."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest
import requests

from cds_service.cdshooks.auth import MAX_TOKEN_CHARS
from cds_service.serving import LIMIT_REQUEST_FIELD_SIZE, LIMIT_REQUEST_LINE
from tests.integration.server import running_service

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_service(tmp_path_factory.mktemp("refusals"), workers=1) as (base, log_path):
        yield base, log_path


def outcome(response: requests.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text[:300]
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    issue = body["issue"][0]
    assert issue["details"]["coding"][0]["code"] == code
    assert issue["diagnostics"]
    return issue


def raw_exchange(base: str, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are; the status, headers and body of the answer."""
    parts = urlsplit(base)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(data)
        received = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return status, {k.lower(): v for k, v in headers.items()}, body


def a_token(chars: int) -> str:
    segment = (chars - 2) // 3
    token = "e" * segment + "." + "f" * segment + "." + "g" * (chars - 2 - 2 * segment)
    assert len(token) == chars
    return token


def test_a_16_kib_token_reaches_the_application(server):
    base, _ = server
    response = requests.get(
        f"{base}/cds-services",
        headers={"Authorization": f"Bearer {a_token(MAX_TOKEN_CHARS)}"},
        timeout=10,
    )
    # Checked by the application (and refused: it is not a real token), not by gunicorn.
    outcome(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_a_header_beyond_the_servers_limit_is_a_json_431(server):
    base, log_path = server
    token = a_token(LIMIT_REQUEST_FIELD_SIZE + 10)
    response = requests.get(
        f"{base}/cds-services", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    issue = outcome(response, 431, "headers-too-large")
    assert str(LIMIT_REQUEST_FIELD_SIZE) in issue["diagnostics"]
    assert token[:40] not in log_path.read_text()


def test_too_many_headers_is_a_json_431(server):
    base, _ = server
    headers = {f"X-Filler-{i}": "x" for i in range(120)}
    response = requests.get(f"{base}/cds-services", headers=headers, timeout=10)
    outcome(response, 431, "headers-too-large")


def test_a_request_line_beyond_the_servers_limit_is_a_json_414(server):
    base, _ = server
    response = requests.get(f"{base}/cds-services?x={'a' * LIMIT_REQUEST_LINE}", timeout=10)
    outcome(response, 414, "uri-too-long")


@pytest.mark.parametrize(
    "data",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /cds-services HTTP/9.9\r\nHost: x\r\n\r\n",
        b"GET /cds-services HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n",
        b"GET /cds-services HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
        b"POST /cds-services/b12-order-sign HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
        b"Content-Length: 2\r\n\r\n{}",
    ],
    ids=["request-line", "http-version", "header-name", "nul-in-header", "two-lengths"],
)
def test_malformed_http_is_a_json_400(server, data):
    base, _ = server
    status, headers, body = raw_exchange(base, data)
    assert status == 400
    assert headers["content-type"].startswith("application/json")
    document = json.loads(body)
    assert document["resourceType"] == "OperationOutcome"
    assert document["issue"][0]["details"]["coding"][0]["code"] == "invalid-request"
    assert int(headers["content-length"]) == len(body)


def test_the_server_still_answers_after_the_refusals(server):
    base, _ = server
    assert requests.get(f"{base}/healthz", timeout=10).json() == {"status": "ok"}
