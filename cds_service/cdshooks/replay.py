"""The JWT replay check: a token's ``jti`` is accepted once, until ``exp`` + leeway.

Two layers. Each process keeps the ``jti`` values it has accepted in memory (``SeenTokens``:
bounded, each kept until its token's ``exp`` + leeway), checked first and at no cost; the
shared store (SQLite or PostgreSQL, ``storage``) then decides across workers and replicas,
within its hard deadline (``REPLAY_DEADLINE_S``, connection time included). After the shared
store has failed, it is left alone for a second (the calls meanwhile are decided as below
without waiting), then tried again: an outage costs one call in a second its deadline, not
every call.

When the shared store cannot answer in time, ``CDS_REPLAY_STORE_UNAVAILABLE`` decides:

- ``accept`` (the default): a token this process has not seen is accepted; a warning is
  logged at most once a minute and every such token is counted. A token replayed to another
  worker or replica during the outage would pass there (see docs/operations-failures.md).
- ``refuse``: 503 with an OperationOutcome and ``Retry-After``; never a 401, which an EHR
  reads as a configuration fault rather than "retry".
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone

from cds_service.storage import StorageError, Store

from .errors import ServiceUnavailable

log = logging.getLogger("cds_service.auth")

POLICIES = ("accept", "refuse")
#: How many jti values one process keeps in memory; the soonest to expire go first when full.
MAX_LOCAL_ENTRIES = 100_000
WARNING_INTERVAL_S = 60.0
#: After a failure of the shared store, how long calls skip it.
STORE_RETRY_INTERVAL_S = 1.0
RETRY_AFTER_S = 5


class Replayed(Exception):
    """The token's jti was seen before."""


class SeenTokens:
    """The (issuer, jti) pairs this process has accepted, each until its expiry (epoch s)."""

    def __init__(self, max_entries: int = MAX_LOCAL_ENTRIES) -> None:
        self.max_entries = max_entries
        self._expiry: dict[tuple[str, str], float] = {}
        self._heap: list[tuple[float, tuple[str, str]]] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._expiry)

    def add(self, issuer: str, jti: str, until: float, now: float) -> bool:
        """Record the pair; False if it is already recorded and not expired (a replay)."""
        key = (issuer, jti)
        with self._lock:
            self._expire(now)
            known = self._expiry.get(key)
            if known is not None and known >= now:
                return False
            while len(self._expiry) >= self.max_entries and self._heap:
                _, oldest = heapq.heappop(self._heap)
                self._expiry.pop(oldest, None)
            self._expiry[key] = until
            heapq.heappush(self._heap, (until, key))
            return True

    def discard(self, issuer: str, jti: str) -> None:
        with self._lock:
            self._expiry.pop((issuer, jti), None)  # its heap entry goes when it expires

    def _expire(self, now: float) -> None:
        while self._heap and self._heap[0][0] < now:
            until, key = heapq.heappop(self._heap)
            if self._expiry.get(key) == until:
                del self._expiry[key]


class ReplayGuard:
    def __init__(
        self,
        store: Store | None,
        *,
        unavailable: str = "accept",
        local: SeenTokens | None = None,
        on_unavailable: Callable[[str], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if unavailable not in POLICIES:
            raise ValueError(f"expected one of {POLICIES}, got {unavailable!r}")
        self.store = store
        self.unavailable = unavailable
        self.local = local or SeenTokens()
        #: Called with "accepted" or "refused" per token decided without the shared store.
        self.on_unavailable = on_unavailable
        self._monotonic = monotonic
        self._next_warning = 0.0
        self._skip_store_until = 0.0
        self._unlogged = 0
        self._warn_lock = threading.Lock()

    def check(self, issuer: str, jti: str, until: float, now: float) -> None:
        """Returns when the token is fresh; Replayed, or ServiceUnavailable (``refuse``)."""
        if not self.local.add(issuer, jti, until, now):
            raise Replayed()
        if self.store is None:
            self._outage(issuer, jti, "no database is configured")
            return
        if self._monotonic() < self._skip_store_until:
            self._outage(issuer, jti, "failed less than a second ago")
            return
        try:
            fresh = self.store.remember_jti(
                issuer,
                jti,
                datetime.fromtimestamp(until, timezone.utc),
                datetime.fromtimestamp(now, timezone.utc),
            )
        except StorageError as exc:
            self._skip_store_until = self._monotonic() + STORE_RETRY_INTERVAL_S
            self._outage(issuer, jti, str(exc))
            return
        if not fresh:
            raise Replayed()

    def _outage(self, issuer: str, jti: str, error: str) -> None:
        decision = "accepted" if self.unavailable == "accept" else "refused"
        if decision == "refused":
            # Not used: the same token may come back once the store answers.
            self.local.discard(issuer, jti)
        self._warn(decision, error)
        if self.on_unavailable is not None:
            try:
                self.on_unavailable(decision)
            except Exception:  # a metrics hook must not decide an authentication
                pass
        if decision == "refused":
            raise ServiceUnavailable(
                "The replay store is unavailable; retry shortly.",
                code="replay-store-unavailable",
                retry_after_s=RETRY_AFTER_S,
            )

    def _warn(self, decision: str, error: str) -> None:
        with self._warn_lock:
            self._unlogged += 1
            now = self._monotonic()
            if now < self._next_warning:
                return
            count, self._unlogged = self._unlogged, 0
            self._next_warning = now + WARNING_INTERVAL_S
        log.warning(
            "replay store unavailable",
            extra={"decision": decision, "count": count, "error": error},
        )
