"""The FHIR client behind the prefetch fallback (docs/protocol.md, "Prefetch" and "The FHIR server
the service calls").

``FhirFetcher.fetch`` runs the rendered prefetch queries against ``fhirServer`` in parallel
and follows the ``next`` links of searchset Bundles, and gives one ``FetchOutcome`` per key:
the resources, or a short reason that is safe to return to the caller and to log (never the
token, never a response body, never a URL: URLs carry patient ids).

Bounds, all from configuration (``FetchLimits``):
- one time budget per invocation: the caller gets its answer within the budget even when the
  server hangs, because ``fetch`` stops waiting at the deadline (a worker still blocked on a
  socket finishes on its own, its timeouts cut to the time that was left);
- connect and read timeouts per request, a cap on pages and entries per key, a cap on the
  bytes of each response (streamed: reading stops past the cap);
- redirects are never followed to another origin, and next links only on the same origin.

Paths: every URL is checked in the form requests will put on the wire (``wire_url``: its
own normalisation applied first, so nothing it changes afterwards escapes the check), and
any ``.``/``..`` segment, raw or encoded, in ``fhirServer``, a query, a ``next`` link or a
redirect is refused before it is joined or fetched (``ssrf.path_segments``).

Safety: only servers allowed by configuration are called, and only at checked addresses
(``ssrf.py``). The Bearer token goes in the ``Authorization`` header of requests to the
``fhirServer`` origin, nowhere else. The session keeps no cookies (one invocation's cookies
must not reach another's) and ignores the environment (no proxies, no ``.netrc`` credentials).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from http.cookiejar import DefaultCookiePolicy
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError
from urllib3.exceptions import HTTPError as TransportError
from urllib3.exceptions import NewConnectionError, ReadTimeoutError

from .jsonread import bundle_entries, bundle_links
from .ssrf import (
    AddressGuard,
    AddressPolicy,
    Origin,
    Refused,
    check_reference,
    check_url,
    origin_of,
)

log = logging.getLogger("cds_service.fhir.client")

FHIR_JSON = "application/fhir+json"
USER_AGENT = "b12-cds-service (CDS Hooks prefetch fallback)"

TIMED_OUT = "the FHIR server did not answer within the time budget"
TOO_LARGE = "the FHIR server's answer exceeds the size limit"
NOT_JSON = "the FHIR server's answer is not valid JSON"
NOT_FHIR = "the FHIR server's answer is not a FHIR resource"


@dataclass(frozen=True)
class FetchOutcome:
    """What the fetcher got for one key: resources, or why not (a reason safe to show)."""

    resources: tuple[dict[str, Any], ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class FetchLimits:
    budget_ms: int = 2000
    connect_timeout_ms: int = 1000
    read_timeout_ms: int = 2000
    max_pages: int = 5
    max_entries: int = 1000
    max_bytes: int = 5 * 1024 * 1024
    max_redirects: int = 3


#: The metrics hook: called once per fetch with each key's result ("ok", "timeout",
#: "refused" or "error") and the seconds the fetch took. This layer knows nothing of the
#: metrics library; ``web/metrics.py`` plugs in here.
FetchObserver = Callable[[Mapping[str, str], float], None]


def key_result(outcome: FetchOutcome) -> str:
    if outcome.error is None:
        return "ok"
    return "timeout" if outcome.error == TIMED_OUT else "error"


class _Failure(Exception):
    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


# --- connections only to checked addresses ----------------------------------------------


class _GuardedConnection(HTTPConnection):
    """Mixin for urllib3 connections: resolve and check the host, connect to a checked
    address. ``host`` stays the name, so TLS SNI, certificate checks and ``Host`` use it.
    Placed before ``HTTPConnection`` or ``HTTPSConnection``, whose ``_new_conn`` it wraps."""

    guard: AddressGuard

    def _new_conn(self) -> socket.socket:
        name = self._dns_host
        error: Exception | None = None
        try:
            for address in self.guard.check(name, self.port):
                self._dns_host = address
                try:
                    return super()._new_conn()
                except (NewConnectionError, ConnectTimeoutError) as exc:
                    error = exc
        finally:
            self._dns_host = name
        if error is None:  # check() answers at least one address or raises
            raise Refused("the FHIR server's host has no address")
        raise error


class _GuardedAdapter(HTTPAdapter):
    def __init__(self, guard: AddressGuard, **kwargs: Any) -> None:
        http = type("GuardedHTTPConnection", (_GuardedConnection, HTTPConnection), {"guard": guard})
        https = type(
            "GuardedHTTPSConnection", (_GuardedConnection, HTTPSConnection), {"guard": guard}
        )
        self._pool_classes = {
            "http": type(
                "GuardedHTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": http}
            ),
            "https": type(
                "GuardedHTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": https}
            ),
        }
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pool_classes

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        # A proxy would make the checked address meaningless.
        raise Refused("proxies are not used for FHIR calls")


def _session(guard: AddressGuard, pool_size: int) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    session.headers.clear()
    session.headers.update({"User-Agent": USER_AGENT, "Accept": FHIR_JSON})
    adapter = _GuardedAdapter(guard, pool_connections=16, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


# --- the fetcher --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    key: str
    url: str
    origin: Origin
    prefixes: tuple[str, ...]
    token: str | None
    deadline: float
    #: Pages and entries the caller already holds (a continuation of a prefetched Bundle).
    pages: int = 0
    entries: int = 0
    #: URLs of pages the caller already holds (the prefetched Bundle's self link): a next
    #: link back to one of them ends the search instead of fetching the page again.
    seen: tuple[str, ...] = ()


def _valid_token(token: str) -> bool:
    # RFC 6750 b64token; anything else could split a header line.
    return bool(token) and all(33 <= ord(c) <= 126 for c in token)


def join_query(base: str, query: str) -> str:
    """``base/query`` for a rendered prefetch template; Refused unless ``query`` is relative
    and stays below ``base`` (no scheme, no ``..``, no leading slash)."""
    path = query.partition("?")[0]
    segments = path.split("/")
    if (
        not path
        or "#" in query
        or ":" in path
        or "\\" in path
        or any(unquote(s) in ("", ".", "..") for s in segments)
    ):
        raise Refused("the prefetch query is not a relative FHIR URL")
    return f"{base}/{query}"


def _prepared_url(url: str) -> str | None:
    # The URL step of what Session.get does (Request.prepare would also build headers,
    # cookies and hooks: ten times the cost for the same URL).
    prepared = requests.PreparedRequest()
    prepared.prepare_url(url, None)
    return prepared.url


def wire_url(url: str) -> str:
    """``url`` as requests sends it (it normalises paths and encodings while preparing a
    request); Refused when preparing it twice does not give the same URL, i.e. when what is
    checked could still differ from what is sent."""
    try:
        prepared = _prepared_url(url)
        again = _prepared_url(prepared) if prepared else None
    except (requests.RequestException, ValueError):
        raise Refused("the URL is not valid") from None
    if not prepared or prepared != again:
        raise Refused("the URL is not valid")
    return prepared


def follow(base: str, reference: str, what: str) -> str:
    """``reference`` (a next link or a redirect) resolved against ``base``, refused first if
    its own path has a dot segment (urljoin would resolve it silently)."""
    try:
        check_reference(reference)
    except Refused as exc:
        raise Refused(f"{what}: {exc.reason}") from None
    return urljoin(base, reference)


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or "?"
    except ValueError:
        return "?"


class FhirFetcher:
    """Implements ``cds_service.cdshooks.prefetch.Fetcher``. One per process: it owns the
    pooled session and the worker threads (created lazily, again after a fork)."""

    def __init__(
        self,
        *,
        allowlist: Iterable[str] = (),
        address_policy: AddressPolicy = AddressPolicy(),
        allow_loopback_servers: bool = False,
        limits: FetchLimits = FetchLimits(),
        max_workers: int = 32,
        guard: AddressGuard | None = None,
        observer: FetchObserver | None = None,
    ) -> None:
        self.allowlist = tuple(allowlist)
        self.observer = observer
        self.allow_loopback_servers = allow_loopback_servers
        self.limits = limits
        self.guard = guard or AddressGuard(address_policy)
        self._max_workers = max_workers
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._session: requests.Session | None = None

    # -- lifecycle --
    def _resources(self) -> tuple[ThreadPoolExecutor, requests.Session]:
        with self._lock:
            if self._executor is None or self._session is None or self._pid != os.getpid():
                self._executor = ThreadPoolExecutor(
                    self._max_workers, thread_name_prefix="fhir-fetch"
                )
                self._session = _session(self.guard, self._max_workers)
                self._pid = os.getpid()
            return self._executor, self._session

    def close(self) -> None:
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
            if self._session is not None:
                self._session.close()
            self._executor = self._session = None

    # -- the Fetcher protocol --
    def fetch(
        self,
        fhir_server: str,
        access_token: str | None,
        queries: Mapping[str, str],
        continuations: Mapping[str, tuple[Any, ...]],
        *,
        client: Any = None,
    ) -> dict[str, FetchOutcome]:
        started = time.monotonic()
        deadline = started + self.limits.budget_ms / 1000
        keys = sorted(set(queries) | set(continuations))
        if not keys:
            return {}
        prefixes = self._prefixes(client)
        access_token = access_token or None  # "" is no token
        try:
            origin = check_url(fhir_server, prefixes, allow_loopback=self.allow_loopback_servers)
            if urlsplit(fhir_server).query:
                raise Refused("fhirServer must be a base URL without a query")
            if access_token is not None and not _valid_token(access_token):
                raise Refused("the access token is not a valid Bearer token")
        except Refused as exc:
            log.warning(
                "fhir server refused",
                extra={"url_host": _host(fhir_server), "reason": exc.reason, "keys": keys},
            )
            refused = {key: FetchOutcome(error=exc.reason) for key in keys}
            self._observe({key: "refused" for key in keys}, started)
            return refused
        base = fhir_server.rstrip("/")

        outcomes: dict[str, FetchOutcome] = {}
        jobs: dict[str, _Job] = {}
        for key, query in queries.items():
            try:
                jobs[key] = _Job(
                    key, join_query(base, query), origin, prefixes, access_token, deadline
                )
            except Refused as exc:
                outcomes[key] = FetchOutcome(error=exc.reason)
        for key, (held, next_url, *held_urls) in continuations.items():
            if key in jobs:
                continue
            try:
                url = follow(base + "/", next_url, "a next link")
            except Refused as exc:
                outcomes[key] = FetchOutcome(error=exc.reason)
                continue
            jobs[key] = _Job(
                key,
                url,
                origin,
                prefixes,
                access_token,
                deadline,
                pages=1,
                entries=len(held),
                seen=tuple(urljoin(base + "/", u) for u in held_urls if isinstance(u, str)),
            )

        executor, session = self._resources()
        futures = {executor.submit(self._run, session, job): key for key, job in jobs.items()}
        done, pending = wait(futures, timeout=max(0.0, deadline - time.monotonic()))
        for future in done:
            outcomes[futures[future]] = future.result()
        for future in pending:
            # Not waited for: the worker's own timeouts end it, and the answer keeps to the budget.
            future.cancel()
            outcomes[futures[future]] = FetchOutcome(error=TIMED_OUT)
        failed = sorted(k for k, o in outcomes.items() if o.error is not None)
        log.info(
            "fhir fetch",
            extra={
                "url_host": origin.host,
                "keys": keys,
                "failed_keys": failed,
                "count": sum(len(o.resources) for o in outcomes.values()),
                "elapsed_ms": round((time.monotonic() - started) * 1000, 1),
                "budget_ms": self.limits.budget_ms,
            },
        )
        self._observe({key: key_result(o) for key, o in outcomes.items()}, started)
        return outcomes

    def _observe(self, results: Mapping[str, str], started: float) -> None:
        if self.observer is not None:
            self.observer(results, time.monotonic() - started)

    def _prefixes(self, client: Any) -> tuple[str, ...]:
        # An authenticated client's own FHIR servers replace the global allowlist.
        own = getattr(client, "fhir_servers", None)
        if own is None:
            return self.allowlist
        return (own,) if isinstance(own, str) else tuple(own)

    # -- one key, in a worker thread --
    def _run(self, session: requests.Session, job: _Job) -> FetchOutcome:
        started = time.monotonic()
        resources: list[dict[str, Any]] = []
        pages = 0
        truncated = False
        status: int | None = None
        try:
            url: str | None = job.url
            what = "the request"
            seen: set[str] = set(job.seen)
            while url is not None:
                seen.add(url)
                body = self._get_json(session, url, job, what)
                pages += 1
                page, next_url = _page(body)
                room = self.limits.max_entries - job.entries - len(resources)
                if len(page) > room:
                    resources.extend(page[: max(room, 0)])
                    truncated = True
                    break
                resources.extend(page)
                if next_url is not None and (
                    job.pages + pages >= self.limits.max_pages
                    or job.entries + len(resources) >= self.limits.max_entries
                ):
                    truncated = True
                    break
                url = follow(url, next_url, "a next link") if next_url is not None else None
                if url in seen:  # a server that links a page to itself: the search is over
                    break
                what = "a next link"
            outcome = FetchOutcome(tuple(resources))
        except _Failure as exc:
            outcome, status = FetchOutcome(error=exc.reason), exc.status
        except Refused as exc:
            outcome = FetchOutcome(error=exc.reason)
        except requests.Timeout:
            outcome = FetchOutcome(error=TIMED_OUT)
        except requests.exceptions.SSLError:
            outcome = FetchOutcome(error="the TLS connection to the FHIR server failed")
        except (requests.ConnectionError, TransportError, OSError):
            outcome = FetchOutcome(error="could not connect to the FHIR server")
        except Exception as exc:  # a bug: the type goes to the log, never the message
            log.error("fhir fetch failed", extra={"key": job.key, "error": type(exc).__name__})
            outcome = FetchOutcome(error="the FHIR request failed")
        extra = {
            "key": job.key,
            "url_host": job.origin.host,
            "pages": pages,
            "count": len(outcome.resources),
            "elapsed_ms": round((time.monotonic() - started) * 1000, 1),
        }
        if outcome.error is not None:
            log.warning(
                "fhir key failed", extra={**extra, "reason": outcome.error, "status": status}
            )
        elif truncated:
            log.info("fhir key truncated", extra={**extra, "truncated": True})
        return outcome

    def _admit(self, url: str, job: _Job, what: str) -> Origin:
        try:
            origin = origin_of(url)
        except Refused:
            raise Refused(f"{what} is not a valid URL") from None
        if origin != job.origin:
            raise Refused(f"{what} points to another origin and was not followed")
        check_url(url, job.prefixes, allow_loopback=self.allow_loopback_servers)
        return origin

    def _get_json(
        self, session: requests.Session, url: str, job: _Job, what: str
    ) -> dict[str, Any]:
        limits = self.limits
        for _ in range(limits.max_redirects + 1):
            if time.monotonic() >= job.deadline:  # no work once the budget is spent
                raise _Failure(TIMED_OUT)
            url = wire_url(url)  # checked exactly as it will be sent
            origin = self._admit(url, job, what)
            self.guard.check(origin.host, origin.port)
            remaining = job.deadline - time.monotonic()
            if remaining <= 0:
                raise _Failure(TIMED_OUT)
            headers = {"Accept": FHIR_JSON}
            if job.token and origin == job.origin:
                headers["Authorization"] = f"Bearer {job.token}"
            timeout = (
                min(limits.connect_timeout_ms / 1000, remaining),
                min(limits.read_timeout_ms / 1000, remaining),
            )
            response = session.get(
                url, headers=headers, timeout=timeout, allow_redirects=False, stream=True
            )
            try:
                if response.is_redirect:
                    url = follow(url, response.headers["location"], "a redirect")
                    what = "a redirect"
                    continue
                if not 200 <= response.status_code < 300:
                    raise _Failure(
                        _status_reason(response.status_code, bool(job.token)), response.status_code
                    )
                raw = _read_capped(response, limits.max_bytes, job.deadline)
            finally:
                response.close()
            return _parse(raw)
        raise _Failure("the FHIR server redirected too many times")


def _status_reason(status: int, had_token: bool) -> str:
    if status == 401:
        if had_token:
            return "the FHIR server did not accept the access token (HTTP 401)"
        return "the FHIR server requires an access token (HTTP 401)"
    if status == 403:
        return "the FHIR server denied access (HTTP 403)"
    if status in (404, 410):
        return f"not found on the FHIR server (HTTP {status})"
    if status == 429:
        return "the FHIR server is limiting requests (HTTP 429)"
    if status >= 500:
        return f"the FHIR server failed (HTTP {status})"
    return f"the FHIR server answered HTTP {status}"


def _read_capped(response: requests.Response, max_bytes: int, deadline: float) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _Failure(TOO_LARGE)
    body = bytearray()
    raw = response.raw
    # read1 returns as soon as some bytes arrive, so a server that drips bytes cannot keep
    # the worker past the deadline (read() would wait for a whole chunk).
    read1 = getattr(raw, "read1", None)
    try:
        while True:
            chunk = read1(64 * 1024) if read1 is not None else raw.read(64 * 1024)
            if not chunk:
                break
            body += chunk
            if len(body) > max_bytes:
                raise _Failure(TOO_LARGE)
            if time.monotonic() > deadline:
                raise _Failure(TIMED_OUT)
    except ReadTimeoutError:
        raise _Failure(TIMED_OUT) from None
    except (TransportError, OSError):
        raise _Failure("the connection to the FHIR server failed while reading") from None
    return bytes(body)


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
        if b"\\ud" in raw.lower():
            # A lone surrogate escape decodes to text no UTF-8 encoder accepts: a card quoting
            # it could not be sent. Checked only when the answer escapes one.
            json.dumps(data, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError):
        raise _Failure(NOT_JSON) from None
    if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
        raise _Failure(NOT_FHIR)
    return data


def _page(body: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    """The resources of one answer and its ``next`` link."""
    kind = body["resourceType"]
    if kind == "OperationOutcome":
        raise _Failure("the FHIR server answered with an OperationOutcome")
    if kind != "Bundle":
        return [body], None
    found, outcomes = bundle_entries(body)
    resources = found + outcomes if outcomes else found
    next_url = bundle_links(body).get("next")
    return resources, next_url
