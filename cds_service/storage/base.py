"""What the service stores, and the interface every backend implements.

No patient data: the ledger holds card uuid, service, rule id, indicator and time; feedback
holds the outcome, the override reason coding and the accepted suggestion ids. The clinician's
free-text ``userComment`` is kept (it is the CDS team's best signal) but never logged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol


class StorageError(Exception):
    """The store could not be reached or written: callers degrade, they do not crash."""


@dataclass(frozen=True)
class IssuedCard:
    card_uuid: str
    service_id: str
    rule_id: str
    indicator: str
    hook_instance: str
    issued_at: datetime
    #: A silent rule's finding (site policy ``rules.<id>.mode: silent``): recorded, never shown.
    silent: bool = False


@dataclass(frozen=True)
class FeedbackRecord:
    card_uuid: str
    outcome: str  # accepted | overridden
    outcome_timestamp: datetime
    accepted_suggestions: tuple[str, ...] = ()
    override_system: str | None = None
    override_code: str | None = None
    override_display: str | None = None
    user_comment: str | None = None


@dataclass(frozen=True)
class FeedbackResult:
    stored: int
    duplicates: int
    unknown_cards: int
    #: (rule id, or None for a card the ledger does not know; outcome) of each stored entry.
    outcomes: tuple[tuple[str | None, str], ...] = ()


@dataclass
class RuleReport:
    rule_id: str
    #: Cards shown (returned to the EHR).
    issued: int = 0
    accepted: int = 0
    overridden: int = 0
    override_reasons: dict[str, int] = field(default_factory=dict)
    #: Findings of the rule while it was silent: recorded, never shown.
    silent: int = 0
    #: Service invocations over the same period as the ledger (every rule runs in each).
    invocations: int = 0

    @property
    def shown_per_1000(self) -> float | None:
        return 1000 * self.issued / self.invocations if self.invocations else None

    @property
    def silent_per_1000(self) -> float | None:
        return 1000 * self.silent / self.invocations if self.invocations else None

    def as_dict(self) -> dict[str, object]:
        return {
            "rule_id": self.rule_id,
            "shown": self.issued,
            "silent": self.silent,
            "accepted": self.accepted,
            "overridden": self.overridden,
            "invocations": self.invocations,
            "shown_per_1000": _rounded(self.shown_per_1000),
            "silent_per_1000": _rounded(self.silent_per_1000),
            "override_reasons": self.override_reasons,
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


class Store(Protocol):
    def record_cards(self, cards: Sequence[IssuedCard]) -> None: ...

    def record_feedback(
        self, service_id: str, entries: Sequence[FeedbackRecord], received_at: datetime
    ) -> FeedbackResult: ...

    def feedback_report(self) -> list[RuleReport]: ...

    def count_invocations(self, counts: Mapping[tuple[str, date], int]) -> None:
        """Add invocation counts per (service id, UTC day): the firing rates' denominator."""
        ...

    def remember_jti(self, issuer: str, jti: str, expires_at: datetime, now: datetime) -> bool:
        """Record a JWT id until ``expires_at``; False if it was already recorded (a replay).
        Atomic across processes sharing the store."""
        ...

    def check(self) -> None:
        """StorageError unless the database answers and its schema is migrated."""
        ...
