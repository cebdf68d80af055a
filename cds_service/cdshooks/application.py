"""The protocol's use cases, free of Flask: discovery, invocation, feedback.

``web`` parses HTTP and calls these; they raise typed ``CdsError``s. Time and uuids are
parameters (a clock and a factory) so that tests and ``cds-service evaluate`` are repeatable.

The clinical answer comes first: once the cards are built, the card ledger, the metrics hooks
and the invocation log are best-effort (``_best_effort``). Each failure is counted
(``counters`` and ``on_observability_failure``) and logged by its type only, and the cards go
out. The ledger is written by a background writer (``storage/ledger.py``), never waited for.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from marshmallow import ValidationError

from cds_service.domain.engine import evaluate
from cds_service.domain.picture import latest_current_found
from cds_service.domain.policy import DEFAULT_POLICY, Policy
from cds_service.domain.vocabulary import DataCategory
from cds_service.fhir.extract import extract_facts
from cds_service.fhir.jsonread import bundle_entries
from cds_service.storage import (
    FeedbackRecord,
    IssuedCard,
    LedgerWriter,
    RuleReport,
    StorageError,
    Store,
)

from .cards import cards as build_cards
from .cards import shape
from .clients import STANDARD
from .errors import InvalidRequest, StorageUnavailable, UnknownService
from .prefetch import Fetcher, resolve
from .schemas import (
    CONTEXT_SCHEMAS,
    DiscoverySchema,
    FeedbackSchema,
    RequestSchema,
    first_error,
    override_reason,
    response_document,
)
from .service import Registry, ServiceDefinition
from .tally import InvocationTally

log = logging.getLogger("cds_service.invocation")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


#: The version (4, random) and variant (RFC 9562) bits of a UUID, and the bits they replace.
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def random_uuid() -> str:
    """A random UUID, as ``str(uuid.uuid4())`` writes it (the same 122 random bits from
    ``os.urandom``), without building a ``uuid.UUID`` on the way: a card and each of its
    suggestions need one, and the object's validation cost 5 of uuid4's 7 microseconds."""
    value = (int.from_bytes(os.urandom(16), "big") & _UUID4_CLEAR) | _UUID4_SET
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


#: Before storing feedback, the longest this process waits for its own queued ledger entries
#: (feedback about a card it has just issued then finds the card's rule).
LEDGER_FLUSH_BEFORE_FEEDBACK_S = 0.1


_REQUEST = RequestSchema()
_CONTEXTS = {hook: schema() for hook, schema in CONTEXT_SCHEMAS.items()}
_FEEDBACK = FeedbackSchema()
_DISCOVERY = DiscoverySchema()


def _invalid(error: ValidationError, prefix: str = "") -> InvalidRequest:
    path, message = first_error(error.messages, prefix)
    return InvalidRequest(
        f"{path}: {message}" if path else message, expression=[path] if path else None
    )


#: The line every card ends with when patient-view had to go on without the Patient resource.
PATIENT_UNAVAILABLE = (
    "_Not evaluated: the patient's record (age and sex) could not be obtained, so age-based"
    " screening (over 75) and the male haemoglobin limit were not checked._"
)

#: fhirAuthorization fields the specification names; only ``access_token`` is required.
FHIR_AUTHORIZATION_FIELDS = ("token_type", "expires_in", "scope", "subject")


@dataclass
class CdsApplication:
    registry: Registry
    store: Store | None = None
    policy: Policy = DEFAULT_POLICY
    fetcher: Fetcher | None = None
    #: Validate each selected prefetched resource in full with R4B before reading it.
    strict_fhir: bool = False
    clock: Clock = utc_now
    new_uuid: Callable[[], str] = random_uuid
    #: Counters a metrics exporter can read (storage failures never break an invocation).
    counters: dict[str, int] = field(default_factory=dict)
    #: Plain hooks for the metrics (``web/metrics.py``): (service, rule, indicator) per card
    #: returned; (service, rule or None for an unknown card, outcome) per feedback stored.
    on_card: Callable[[str, str, str], None] | None = None
    on_feedback: Callable[[str, str | None, str], None] | None = None
    #: (count, reason) of card ledger entries dropped (queue full, database down).
    on_ledger_drop: Callable[[int, str], None] | None = None
    #: The part (``ledger``, ``metrics``, ``log``) whose failure an invocation survived.
    on_observability_failure: Callable[[str], None] | None = None
    _ledger_writer: LedgerWriter | None = field(default=None, init=False, repr=False)
    _ledger_store: Any = field(default=None, init=False, repr=False)
    _counting: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    #: Invocations per service and day for the firing rates (batched; see ``tally.py``).
    tally: InvocationTally | None = None

    def __post_init__(self) -> None:
        if self.tally is None:
            self.tally = InvocationTally(
                self.store, on_failure=lambda: self._count("storage_failures")
            )

    def _count(self, name: str, amount: int = 1) -> None:
        with self._counting:
            self.counters[name] = self.counters.get(name, 0) + amount

    # --- the card ledger's writer (one per process and store) -------------------------------
    @property
    def ledger(self) -> LedgerWriter | None:
        store = self.store
        if store is None:
            return None
        if self._ledger_writer is None or self._ledger_store is not store:
            previous = self._ledger_writer
            self._ledger_writer = LedgerWriter(
                lambda cards: self._write_ledger(store, cards), on_drop=self._ledger_dropped
            )
            self._ledger_store = store
            if previous is not None:
                previous.close(timeout_s=0)
        return self._ledger_writer

    def _write_ledger(self, store: Store, cards: Any) -> None:
        try:
            store.record_cards(cards)
        except StorageError:
            self._count("storage_failures")
            raise

    def _ledger_dropped(self, count: int, reason: str) -> None:
        self._count("ledger_dropped", count)
        if self.on_ledger_drop is not None:
            self.on_ledger_drop(count, reason)

    def flush_ledger(self, timeout_s: float = 5.0) -> bool:
        """Wait (bounded) until this process's queued ledger entries are written."""
        ledger = self._ledger_writer
        return True if ledger is None else ledger.flush(timeout_s)

    def close(self) -> None:
        """Graceful shutdown of a process: write what the ledger still holds (bounded)."""
        if self._ledger_writer is not None:
            self._ledger_writer.close()

    def _best_effort(self, part: str, action: Callable[[], Any]) -> None:
        """Run ``action``; an exception is counted and logged (its type, nothing of the
        request), and the invocation goes on."""
        try:
            action()
        except Exception as exc:
            self._count("observability_failures")
            try:
                log.error("observability failed", extra={"part": part, "error": type(exc).__name__})
            except Exception:
                pass
            if self.on_observability_failure is not None:
                try:
                    self.on_observability_failure(part)
                except Exception:
                    pass

    # --- discovery ------------------------------------------------------------------------
    def discovery(self) -> dict[str, Any]:
        return _DISCOVERY.dump({"services": [s.discovery() for s in self.registry]})

    def service(self, service_id: str) -> ServiceDefinition:
        service = self.registry.get(service_id)
        if service is None:
            raise UnknownService(f"No CDS service with id '{service_id}'.")
        return service

    # --- readiness (GET /readyz) ------------------------------------------------------------
    def readiness(self) -> dict[str, Any]:
        """Ready when the configuration is loaded (this object exists only after settings,
        policy and the service registry were validated) and the database answers with its
        schema migrated. StorageUnavailable (503) otherwise: a load balancer stops sending
        feedback, and new calls, to this replica until it recovers."""
        if self.store is None:
            raise StorageUnavailable("No database is configured; the service is not ready.")
        try:
            self.store.check()
        except StorageError as exc:
            self._count("storage_failures")
            log.warning("not ready", extra={"error": str(exc)})
            raise StorageUnavailable(
                "The database is not reachable; the service is not ready."
            ) from None
        return {"status": "ready", "services": len(list(self.registry))}

    # --- invocation -----------------------------------------------------------------------
    def invoke(
        self, service_id: str, body: Any, *, now: datetime | None = None, client: Any = None
    ) -> dict[str, Any]:
        started = time.perf_counter()
        service = self.service(service_id)
        request = self.parse_request(service, body)
        context = request["context"]
        fhir_auth = request.get("fhirAuthorization") or {}
        trusted = getattr(client, "trusted", None)
        capabilities = trusted.capabilities if trusted is not None else STANDARD
        resolving = time.perf_counter()
        resolution = resolve(
            service,
            request.get("prefetch"),
            context,
            fhir_server=request.get("fhirServer"),
            access_token=fhir_auth.get("access_token"),
            fetcher=self.fetcher,
            client=client,
            degrade_required=capabilities.degrade_without_patient,
        )
        evaluating = time.perf_counter()
        # An OperationOutcome among the entries is no order (extraction passes it over).
        drafts, _ = bundle_entries(context.get("draftOrders") or {})
        moment = now or self.clock()
        extraction = extract_facts(
            resolution.resources,
            drafts,
            patient_id=context["patientId"],
            selections=context.get("selections") or (),
            missing=resolution.missing,
            strict=self.strict_fhir,
            enough=latest_current_found(moment, self.policy),
        )
        evaluation = evaluate(extraction.facts, moment, service.hook, self.policy)
        notes = [PATIENT_UNAVAILABLE] if DataCategory.PATIENT in resolution.missing else []
        cards = build_cards(evaluation.shown, context["patientId"], self.new_uuid, notes)
        # Feedback and analytics stay keyed on the rule id (the findings): ``shape`` only
        # changes what this client is sent.
        cards = shape(cards, trusted, self.new_uuid)
        response = response_document(cards)
        evaluated = time.perf_counter()
        hook_instance = request["hookInstance"]
        self._best_effort(
            "ledger",
            lambda: self._record(
                service, hook_instance, evaluation.shown, cards, moment, evaluation.silent
            ),
        )
        tally = self.tally
        if tally is not None:
            self._best_effort(
                "metrics", lambda: tally.add(service.id, moment.astimezone(timezone.utc).date())
            )
        if self.on_card is not None:
            on_card = self.on_card

            def count_cards() -> None:
                for finding, card in zip(evaluation.shown, cards):
                    on_card(service.id, finding.rule_id, card["indicator"])

            self._best_effort("metrics", count_cards)

        def log_invocation() -> None:
            trusted = getattr(client, "trusted", None)
            shown = {f.rule_id for f in evaluation.shown}  # one finding per rule
            log.info(
                "invocation",
                extra={
                    "service": service.id,
                    "hookInstance": request["hookInstance"],
                    "status": 200,
                    "issuer": getattr(client, "issuer", None),  # None: an anonymous call
                    "rules": [f.rule_id for f in evaluation.shown],
                    "rules_hidden": [
                        f.rule_id for f in evaluation.findings if f.rule_id not in shown
                    ],
                    "rules_silent": [f.rule_id for f in evaluation.silent],
                    "cards": len(cards),
                    "skipped_resources": list(extraction.skipped),
                    "fetched_keys": resolution.fetched,
                    "failed_keys": sorted(resolution.failed),
                    "profile": trusted.profile if trusted is not None else "standard",
                    "missing": sorted(c.name for c in resolution.missing),
                    "failed_rules": list(evaluation.failed_rules),
                    "prefetch_ms": round((evaluating - resolving) * 1000, 2),
                    "evaluate_ms": round((evaluated - evaluating) * 1000, 2),
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )

        self._best_effort("log", log_invocation)
        return response

    def parse_request(self, service: ServiceDefinition, body: Any) -> dict[str, Any]:
        if not isinstance(body, Mapping):
            raise InvalidRequest("The request body must be a JSON object.")
        try:
            request = _REQUEST.load(body)
        except ValidationError as error:
            raise _invalid(error) from None
        if request["hook"] != service.hook.value:
            raise InvalidRequest(
                f"hook: service '{service.id}' answers '{service.hook.value}', "
                f"not '{request['hook']}'.",
                expression=["hook"],
            )
        try:
            request["context"] = _CONTEXTS[service.hook.value].load(request["context"])
        except ValidationError as error:
            raise _invalid(error, "context") from None
        authorization = request.get("fhirAuthorization")
        if authorization:
            absent = [f for f in FHIR_AUTHORIZATION_FIELDS if f not in authorization]
            if absent:
                # Field names only: never a value of this object (it holds the access token).
                log.info(
                    "fhirAuthorization incomplete",
                    extra={"service": service.id, "absent_fields": absent},
                )
        return request

    def _record(self, service, hook_instance, findings, cards, moment, silent=()) -> None:
        """Hand the issued cards to the background ledger writer (never waits: a full queue
        drops and counts; a ledger gap costs attribution, not patient safety). Silent rules'
        findings go in the same hand-off, marked silent, under uuids no EHR saw."""
        ledger = self.ledger
        if ledger is None or not (cards or silent):
            return
        issued = [
            IssuedCard(c["uuid"], service.id, f.rule_id, c["indicator"], hook_instance, moment)
            for f, c in zip(findings, cards)
        ]
        issued += [
            IssuedCard(
                self.new_uuid(),
                service.id,
                f.rule_id,
                f.indicator.code,
                hook_instance,
                moment,
                True,
            )
            for f in silent
        ]
        ledger.submit(issued)

    # --- feedback -------------------------------------------------------------------------
    def feedback(self, service_id: str, body: Any) -> dict[str, int]:
        service = self.service(service_id)
        if not isinstance(body, Mapping):
            raise InvalidRequest("The feedback body must be a JSON object.")
        try:
            data = _FEEDBACK.load(body)
        except ValidationError as error:
            raise _invalid(error) from None
        records = []
        for entry in data["feedback"]:
            # The specification's overrideReason or Epic's overrideReasons / extension fields.
            reason, comment = override_reason(entry)
            records.append(
                FeedbackRecord(
                    card_uuid=entry["card"],
                    outcome=entry["outcome"],
                    outcome_timestamp=entry["outcomeTimestamp"].astimezone(timezone.utc),
                    accepted_suggestions=tuple(
                        s["id"] for s in entry.get("acceptedSuggestions") or []
                    ),
                    override_system=reason.get("system"),
                    override_code=reason.get("code"),
                    override_display=reason.get("display"),
                    user_comment=comment,
                )
            )
        if self.store is None:
            raise StorageUnavailable("Feedback storage is not configured.")
        # Feedback about a card this process has just issued finds its rule: a short wait,
        # and none while the ledger cannot write (the feedback's own deadline comes first).
        ledger = self._ledger_writer
        if ledger is not None and ledger.healthy:
            ledger.flush(LEDGER_FLUSH_BEFORE_FEEDBACK_S)
        try:
            # Bounded by the store's deadline: stored, or 503 (never acknowledged and lost).
            result = self.store.record_feedback(service.id, records, self.clock())
        except StorageError as exc:
            self._count("storage_failures")
            log.error("feedback write failed", extra={"service": service.id, "error": str(exc)})
            raise StorageUnavailable() from None
        if self.on_feedback is not None:
            on_feedback = self.on_feedback

            def count_feedback() -> None:
                for rule_id, outcome in result.outcomes:
                    on_feedback(service.id, rule_id, outcome)

            self._best_effort("metrics", count_feedback)
        self._best_effort(
            "log",
            lambda: log.info(
                "feedback",
                extra={
                    "service": service.id,
                    "entries": len(records),
                    "stored": result.stored,
                    "duplicates": result.duplicates,
                    "unknown_cards": result.unknown_cards,
                },
            ),
        )
        return {
            "stored": result.stored,
            "duplicates": result.duplicates,
            "unknownCards": result.unknown_cards,
        }

    def feedback_report(self) -> list[RuleReport]:
        """Issued / accepted / overridden counts per rule (the home page's Feedback chart);
        StorageUnavailable when there is no store or it cannot be read."""
        if self.store is None:
            raise StorageUnavailable("Feedback storage is not configured.")
        # What this process still holds in memory belongs in the report (bounded waits).
        self.flush_ledger(timeout_s=1.0)
        if self.tally is not None:
            self.tally.flush()
        try:
            return self.store.feedback_report()
        except StorageError as exc:
            self._count("storage_failures")
            log.error("feedback report failed", extra={"error": str(exc)})
            raise StorageUnavailable("The feedback store cannot be read; retry later.") from None
