"""The protocol's use cases, free of Flask: discovery, invocation, feedback.

``web`` parses HTTP and calls these; they raise typed ``CdsError``s. Time and uuids are
parameters (a clock and a factory) so that tests and ``cds-service evaluate`` are repeatable.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from marshmallow import ValidationError

from cds_service.domain.policy import DEFAULT_POLICY, Policy
from cds_service.fhir.extract import extract_facts
from cds_service.storage import FeedbackRecord, IssuedCard, RuleReport, StorageError, Store

from .cards import cards as build_cards
from .errors import InvalidRequest, StorageUnavailable, UnknownService
from .prefetch import Fetcher, resolve
from .schemas import (
    CONTEXT_SCHEMAS,
    DiscoverySchema,
    FeedbackSchema,
    RequestSchema,
    ResponseSchema,
    first_error,
)
from .service import Registry, ServiceDefinition
from .tally import InvocationTally

log = logging.getLogger("cds_service.invocation")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def random_uuid() -> str:
    return str(uuid.uuid4())


_REQUEST = RequestSchema()
_CONTEXTS = {hook: schema() for hook, schema in CONTEXT_SCHEMAS.items()}
_FEEDBACK = FeedbackSchema()
_RESPONSE = ResponseSchema()
_DISCOVERY = DiscoverySchema()


def _invalid(error: ValidationError, prefix: str = "") -> InvalidRequest:
    path, message = first_error(error.messages, prefix)
    return InvalidRequest(
        f"{path}: {message}" if path else message, expression=[path] if path else None
    )


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
    #: Invocations per service and day for the firing rates (batched; see ``tally.py``).
    tally: InvocationTally | None = None

    def __post_init__(self) -> None:
        if self.tally is None:
            self.tally = InvocationTally(
                self.store, on_failure=lambda: self._count("storage_failures")
            )

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

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
        resolving = time.perf_counter()
        resolution = resolve(
            service,
            request.get("prefetch"),
            context,
            fhir_server=request.get("fhirServer"),
            access_token=fhir_auth.get("access_token"),
            fetcher=self.fetcher,
            client=client,
        )
        evaluating = time.perf_counter()
        draft_bundle = context.get("draftOrders") or {}
        drafts = [
            e["resource"]
            for e in draft_bundle.get("entry") or []
            if isinstance(e, dict) and isinstance(e.get("resource"), dict)
        ]
        extraction = extract_facts(
            resolution.resources,
            drafts,
            patient_id=context["patientId"],
            selections=context.get("selections") or (),
            missing=resolution.missing,
            strict=self.strict_fhir,
        )
        moment = now or self.clock()
        evaluation = service.handler(extraction.facts, moment, self.policy)
        cards = build_cards(evaluation.shown, context["patientId"], self.new_uuid)
        response = _RESPONSE.dump({"cards": cards})
        evaluated = time.perf_counter()
        self._record(
            service, request["hookInstance"], evaluation.shown, cards, moment, evaluation.silent
        )
        self.tally.add(service.id, moment.astimezone(timezone.utc).date())
        if self.on_card is not None:
            for finding, card in zip(evaluation.shown, cards):
                self.on_card(service.id, finding.rule_id, card["indicator"])
        log.info(
            "invocation",
            extra={
                "service": service.id,
                "hookInstance": request["hookInstance"],
                "status": 200,
                "rules": [f.rule_id for f in evaluation.shown],
                "rules_hidden": [
                    f.rule_id for f in evaluation.findings if f not in evaluation.shown
                ],
                "rules_silent": [f.rule_id for f in evaluation.silent],
                "cards": len(cards),
                "skipped_resources": list(extraction.skipped),
                "fetched_keys": resolution.fetched,
                "missing": sorted(c.name for c in resolution.missing),
                "failed_rules": list(evaluation.failed_rules),
                "prefetch_ms": round((evaluating - resolving) * 1000, 2),
                "evaluate_ms": round((evaluated - evaluating) * 1000, 2),
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )
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
        return request

    def _record(self, service, hook_instance, findings, cards, moment, silent=()) -> None:
        if self.store is None or not (cards or silent):
            return
        issued = [
            IssuedCard(c["uuid"], service.id, f.rule_id, c["indicator"], hook_instance, moment)
            for f, c in zip(findings, cards)
        ]
        # Silent rules' findings: in the same write, marked silent, under uuids no EHR saw.
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
        try:
            self.store.record_cards(issued)
        except StorageError as exc:
            # Cards are still returned: a ledger gap costs attribution, not patient safety.
            self._count("storage_failures")
            log.error("ledger write failed", extra={"service": service.id, "error": str(exc)})

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
            reason = (entry.get("overrideReason") or {}).get("reason") or {}
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
                    user_comment=(entry.get("overrideReason") or {}).get("userComment"),
                )
            )
        if self.store is None:
            raise StorageUnavailable("Feedback storage is not configured.")
        try:
            result = self.store.record_feedback(service.id, records, self.clock())
        except StorageError as exc:
            self._count("storage_failures")
            log.error("feedback write failed", extra={"service": service.id, "error": str(exc)})
            raise StorageUnavailable() from None
        if self.on_feedback is not None:
            for rule_id, outcome in result.outcomes:
                self.on_feedback(service.id, rule_id, outcome)
        log.info(
            "feedback",
            extra={
                "service": service.id,
                "entries": len(records),
                "stored": result.stored,
                "duplicates": result.duplicates,
                "unknown_cards": result.unknown_cards,
            },
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
        self.tally.flush()
        try:
            return self.store.feedback_report()
        except StorageError as exc:
            self._count("storage_failures")
            log.error("feedback report failed", extra={"error": str(exc)})
            raise StorageUnavailable("The feedback store cannot be read; retry later.") from None
