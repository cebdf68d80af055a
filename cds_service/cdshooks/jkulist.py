"""Published jku lists: the key-set URLs a client's tokens may name, read from a URL.

Oracle Health does not give each customer a fixed JWKS URL: its CDS Hooks documentation asks a
service to read the list of accepted ``jku`` values from a published endpoint and to check that
a token's ``jku`` is on it (a static ``jku_allowlist`` breaks at its next key rotation). The
list URL is configured (``jku_list_url``); a token never makes the service fetch a URL that is
not on a list fetched from there.

Fetched with the limits of a JWKS (``jwks``: short timeouts, an overall deadline, a size cap,
no redirects) and cached the same way: refreshed when a token names a jku not on the cached
list, or when the list is older than ``max_age_s``, at most once per ``refresh_interval_s``
per client and URL; an unreachable list fails closed (401).

The list's exact JSON shape is not documented publicly. Read leniently: every ``https`` URL
string in the document (a bare array, or arrays and objects nested a few levels) is a jku.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .jwks import DEADLINE_S, JwksError, fetch_bounded_json

log = logging.getLogger("cds_service.auth")

MAX_DEPTH = 4
MAX_URLS = 256


def jku_urls(document: Any, depth: int = 0) -> frozenset[str]:
    """Every https URL string in a parsed jku list (bounded depth and count)."""
    found: set[str] = set()

    def walk(value: Any, level: int) -> None:
        if len(found) >= MAX_URLS or level > MAX_DEPTH:
            return
        if isinstance(value, str):
            try:
                parts = urlsplit(value)
            except ValueError:
                return
            if parts.scheme == "https" and parts.hostname and not parts.username:
                found.add(value)
        elif isinstance(value, list):
            for item in value:
                walk(item, level + 1)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item, level + 1)

    walk(document, depth)
    return frozenset(found)


def fetch_jku_list(url: str) -> frozenset[str]:
    """GET a configured jku list URL with the JWKS limits (one deadline for the whole
    transfer, checked after every read: a dripping server cannot hold a worker)."""
    return jku_urls(fetch_bounded_json(url, DEADLINE_S, "jku-list"))


@dataclass(frozen=True)
class _Entry:
    urls: frozenset[str]
    fetched_at: float


class JkuListCache:
    """Fetched jku lists per (client, URL), refreshed like ``jwks.JwksCache``."""

    def __init__(
        self,
        fetch: Callable[[str], frozenset[str]] = fetch_jku_list,
        *,
        clock: Callable[[], float] = time.monotonic,
        refresh_interval_s: float = 60.0,
        max_age_s: float = 3600.0,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self.refresh_interval_s = refresh_interval_s
        self.max_age_s = max_age_s
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._last_attempt: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def allows(self, owner: str, list_url: str, jku: str) -> bool:
        """Is ``jku`` on the list published at ``list_url`` for client ``owner``? Raises
        JwksError(jku-list-unavailable) when the list cannot be had (fail closed)."""
        with self._lock:
            now = self._clock()
            entry = self._entries.get((owner, list_url))
            fresh = entry is not None and now - entry.fetched_at < self.max_age_s
            if fresh and entry is not None and jku in entry.urls:
                return True
            last = self._last_attempt.get((owner, list_url))
            if last is not None and now - last < self.refresh_interval_s:
                if fresh:
                    return False  # rate-limited: an unknown jku cannot make us hammer the list
                raise JwksError("jku-list-unavailable", "refresh rate-limited")
            self._last_attempt[(owner, list_url)] = now
            host = urlsplit(list_url).hostname
            try:
                urls = self._fetch(list_url)
            except JwksError as exc:
                log.error(
                    "jku list fetch failed",
                    extra={"issuer": owner, "url_host": host, "reason": exc.reason},
                )
                raise JwksError("jku-list-unavailable", exc.message) from None
            self._entries[(owner, list_url)] = _Entry(urls, now)
            log.info(
                "jku list fetched", extra={"issuer": owner, "url_host": host, "count": len(urls)}
            )
            return jku in urls
