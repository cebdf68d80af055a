"""A real HTTP server on 127.0.0.1 for the fault tests that ``responses`` cannot fake:
a server that hangs past the budget, a body streamed lazily (50 MB never held in memory),
connections to the address the guard checked."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Route = Callable[["Handler"], None]


class Handler(BaseHTTPRequestHandler):
    server: "_Server"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        owner = self.server.owner
        owner.requests.append((self.path, dict(self.headers)))
        route = owner.routes.get(self.path.partition("?")[0], owner.default)
        if route is None:
            self.send_json({"resourceType": "OperationOutcome", "issue": []}, 404)
            return
        try:
            route(self)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading: what the size cap is for

    def send_json(self, body: Any, status: int = 200) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 64  # seven keys connect at once; a backlog of 5 drops SYNs (1 s retry)
    owner: "LocalServer"


class LocalServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.default: Route | None = None
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.release = threading.Event()
        self.bytes_sent = 0
        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.owner = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def use_tls(self, certfile: str, keyfile: str) -> "LocalServer":
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certfile, keyfile)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        return self

    def start(self) -> "LocalServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # --- behaviours -------------------------------------------------------------------
    def json(self, path: str, body: Any, status: int = 200) -> None:
        self.routes[path] = lambda h: h.send_json(body, status)

    def hang(self, path: str | None, seconds: float = 10.0) -> None:
        """Accept the request, then say nothing until released (or ``seconds``); every path
        when ``path`` is None."""

        def route(h: Handler) -> None:
            self.release.wait(seconds)
            h.send_json({"resourceType": "Bundle", "type": "searchset"})

        if path is None:
            self.default = route
        else:
            self.routes[path] = route

    def huge(self, path: str, total: int) -> None:
        """``total`` bytes of a JSON Bundle, generated chunk by chunk, no Content-Length."""
        entry = json.dumps({"resource": {"resourceType": "Observation", "id": "x" * 200}}).encode()

        def route(h: Handler) -> None:
            h.send_response(200)
            h.send_header("Content-Type", "application/fhir+json")
            h.end_headers()
            h.wfile.write(b'{"resourceType":"Bundle","type":"searchset","entry":[')
            chunk = b",".join([entry] * 256) + b","
            while self.bytes_sent < total and not self.release.is_set():
                h.wfile.write(chunk)
                self.bytes_sent += len(chunk)

        self.routes[path] = route
