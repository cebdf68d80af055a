"""A JWKS endpoint on loopback that can misbehave: serve a set, drip its body a byte a second
(declared in full, so the client keeps waiting), or accept the connection and never answer."""

from __future__ import annotations

import json
import socket
import threading
import time


class KeyServer:
    def __init__(self, jwks: dict, mode: str = "serve") -> None:
        self.jwks = jwks
        self.mode = mode
        self.connections = 0
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._stop = threading.Event()
        self._open: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}/jwks"

    def _accept(self) -> None:
        self._sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            self.connections += 1
            self._open.append(conn)
            threading.Thread(target=self._answer, args=(conn, self.mode), daemon=True).start()

    def _answer(self, conn: socket.socket, mode: str) -> None:
        try:
            conn.settimeout(5)
            conn.recv(65536)  # the request (small, one read is enough on loopback)
            body = json.dumps(self.jwks).encode()
            if mode == "hang":
                self._stop.wait(120)
                return
            length = len(body) if mode == "serve" else max(len(body), 1800)
            head = (
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                f"Content-Length: {length}\r\nConnection: close\r\n\r\n"
            ).encode()
            if mode == "serve":
                conn.sendall(head + body)
                return
            conn.sendall(head)  # drip: a byte a second, for as long as the client listens
            for byte in body.ljust(1800):
                if self._stop.wait(1.0):
                    return
                conn.sendall(bytes([byte]))
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()
        for conn in self._open:
            try:
                conn.close()
            except OSError:
                pass
        time.sleep(0)
