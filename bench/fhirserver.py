"""A tiny local FHIR server for the fallback benchmark: it answers the services' prefetch
queries (Patient read; Observation, MedicationStatement, MedicationRequest and Condition
searches) from a fixed set of resources, with answers serialised once and served from memory,
so what is measured is the service's fallback and not this server."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the service's pooled session reuses sockets
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK add 40 ms to every answer, which is this server's cost, not ours.
    disable_nagle_algorithm = True
    server: "_Server"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        owner = self.server.owner
        owner.count += 1
        body = owner.answer(self.path)
        status = 200 if body is not None else 404
        data = body if body is not None else b'{"resourceType": "OperationOutcome", "issue": []}'
        self.send_response(status)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    owner: "LocalFhirServer"


class LocalFhirServer:
    def __init__(self, resources: list[dict[str, Any]]) -> None:
        self.resources = resources
        self.count = 0
        self._cache: dict[str, bytes | None] = {}
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/fhir"

    def __enter__(self) -> "LocalFhirServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, path: str) -> bytes | None:
        if path not in self._cache:
            found = self._search(path)
            self._cache[path] = None if found is None else json.dumps(found).encode()
        return self._cache[path]

    def _search(self, path: str) -> dict[str, Any] | None:
        parts = urlsplit(path)
        segments = parts.path.removeprefix("/fhir/").split("/")
        query = parse_qs(parts.query)
        kind = segments[0]
        if len(segments) == 2:
            return next(
                (r for r in self.resources if r["resourceType"] == kind and r["id"] == segments[1]),
                None,
            )
        codes = {c.partition("|")[2] for c in ",".join(query.get("code", [])).split(",") if c}
        matches = [
            r
            for r in self.resources
            if r["resourceType"] == kind
            and (not codes or r.get("code", {}).get("coding", [{}])[0].get("code") in codes)
        ]
        return {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(matches),
            "entry": [{"resource": r} for r in matches],
        }
