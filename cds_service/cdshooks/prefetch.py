"""Prefetch: classify what the client sent per key, and get what is missing.

docs/protocol.md, "Prefetch". Each declared key is one of:
- absent: the client did not run it -> fetch it from ``fhirServer`` (when a fetcher is set);
- ``null`` or a Bundle with no entries: the query ran and found nothing -> no data, no fetch;
- an OperationOutcome: the client's query failed -> unavailable, fetch it ourselves if we can;
  so is a Bundle holding only OperationOutcomes of which one has severity error or fatal (Epic's
  form); a Bundle of only warning / information outcomes is an empty result;
- a resource, or a searchset Bundle (possibly paginated: ``next`` links are followed by the
  fetcher within its limits).
A required key that cannot be obtained raises ``PrefetchUnavailable`` (412); an optional one
is recorded as missing so that cards can say which data were missing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol
from urllib.parse import quote

from cds_service.domain.frozen import stored_in_dict
from cds_service.domain.vocabulary import DataCategory

# FetchOutcome lives with the client (``fhir`` may not import ``cdshooks``); re-exported here.
from cds_service.fhir.client import FetchOutcome
from cds_service.fhir.jsonread import bundle_entries, bundle_links

from .errors import PrefetchUnavailable
from .service import ServiceDefinition

__all__ = [
    "FetchOutcome",
    "Fetcher",
    "KeyState",
    "KeyValue",
    "Resolution",
    "classify",
    "render",
    "resolve",
]

log = logging.getLogger(__name__)


class KeyState(Enum):
    RESOURCE = "resource"
    BUNDLE = "bundle"
    NULL = "null"
    EMPTY = "empty"
    FAILED = "operation-outcome"
    ABSENT = "absent"
    INVALID = "invalid"

    @property
    def needs_fetch(self) -> bool:
        return self in (KeyState.ABSENT, KeyState.FAILED, KeyState.INVALID)


@stored_in_dict  # built for every key of every request
@dataclass(frozen=True)
class KeyValue:
    state: KeyState
    resources: tuple[dict[str, Any], ...] = ()
    next_url: str | None = None
    #: The Bundle's own ``self`` link: the fetcher never fetches this page again.
    self_url: str | None = None


def classify(value: Any, present: bool = True) -> KeyValue:
    if not present:
        return KeyValue(KeyState.ABSENT)
    if value is None:
        return KeyValue(KeyState.NULL)
    if not isinstance(value, dict):
        return KeyValue(KeyState.INVALID)
    kind = value.get("resourceType")
    if kind == "OperationOutcome":
        return KeyValue(KeyState.FAILED)
    # Lenient: a Bundle without ``type`` (or without resourceType but with entries) is a Bundle.
    if kind == "Bundle" or (kind is None and "entry" in value):
        # Epic answers a failed (or empty) query with a searchset holding only an
        # OperationOutcome: error / fatal is a failed query, warning / information an empty one.
        found, outcomes = bundle_entries(value)
        resources = tuple(found)
        if outcomes and not resources:
            return KeyValue(KeyState.FAILED if _any_error(outcomes) else KeyState.EMPTY)
        urls = bundle_links(value)
        next_url, self_url = urls.get("next"), urls.get("self")
        if next_url is not None and next_url == self_url:
            next_url = None  # a page that names itself as the next one is the last one
        if not resources and next_url is None:
            return KeyValue(KeyState.EMPTY)
        return KeyValue(KeyState.BUNDLE, resources, next_url, self_url)
    if isinstance(kind, str):
        return KeyValue(KeyState.RESOURCE, (value,))
    return KeyValue(KeyState.INVALID)


_FAILING_SEVERITIES = frozenset({"error", "fatal"})


def _any_error(outcomes: list[dict[str, Any]]) -> bool:
    """Does any issue of these OperationOutcomes have severity error or fatal? An outcome
    without a readable severity counts as an error: the query's result is unknown."""
    for outcome in outcomes:
        issues = outcome.get("issue")
        if not isinstance(issues, list) or not issues:
            return True
        for issue in issues:
            severity = issue.get("severity") if isinstance(issue, dict) else None
            if not isinstance(severity, str) or severity in _FAILING_SEVERITIES:
                return True
    return False


_TOKEN = re.compile(r"\{\{\s*([A-Za-z.]+)\s*\}\}")


def render(template: str, context: Mapping[str, Any]) -> str | None:
    """A prefetch template with the request's context; ``None`` when a token has no value."""
    values: dict[str, str] = {}
    for key, value in context.items():
        if isinstance(value, str):
            values[f"context.{key}"] = value
    user = context.get("userId")
    if isinstance(user, str) and "/" in user:
        kind, _, ident = user.partition("/")
        values[f"user{kind}Id"] = ident
    missing = False

    def substitute(match: re.Match[str]) -> str:
        nonlocal missing
        token = match.group(1)
        if token not in values:
            missing = True
            return ""
        return quote(values[token], safe="")

    rendered = _TOKEN.sub(substitute, template)
    return None if missing else rendered


class Fetcher(Protocol):
    def fetch(
        self,
        fhir_server: str,
        access_token: str | None,
        queries: Mapping[str, str],
        continuations: Mapping[str, tuple[Any, ...]],
        *,
        client: Any = None,
    ) -> Mapping[str, FetchOutcome]:
        """Run ``queries`` (key -> relative URL) and follow ``continuations`` (key -> resources
        so far, the ``next`` URL and, when the Bundle names it, its own ``self`` URL, never to
        be fetched again), within the fetcher's time budget. For a continuation the outcome
        holds only the resources of the pages it fetched."""


@dataclass
class Resolution:
    resources: list[dict[str, Any]] = field(default_factory=list)
    missing: set[DataCategory] = field(default_factory=set)
    states: dict[str, KeyState] = field(default_factory=dict)
    fetched: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


_UNAVAILABLE = {
    KeyState.ABSENT: "not sent in prefetch",
    KeyState.FAILED: "the client's prefetch query failed (OperationOutcome)",
    KeyState.INVALID: "the prefetch value is not a FHIR resource",
}


def resolve(
    service: ServiceDefinition,
    prefetch: Mapping[str, Any] | None,
    context: Mapping[str, Any],
    *,
    fhir_server: str | None,
    access_token: str | None,
    fetcher: Fetcher | None,
    client: Any = None,
    degrade_required: bool = False,
) -> Resolution:
    """``degrade_required``: a required key that cannot be obtained is recorded as missing
    (the cards say so) instead of answering 412, unless no key at all gave data."""
    prefetch = prefetch or {}
    result = Resolution()
    queries: dict[str, str] = {}
    continuations: dict[str, tuple[Any, ...]] = {}
    for key, declared in service.prefetch.items():
        value = classify(prefetch.get(key), key in prefetch)
        result.states[key] = value.state
        result.resources.extend(value.resources)
        if value.state.needs_fetch:
            query = render(declared.template, context)
            if query is not None:
                queries[key] = query
            else:
                result.failed[key] = "the prefetch template needs context the request lacks"
        elif value.next_url:
            held = (value.self_url,) if value.self_url else ()
            continuations[key] = (value.resources, value.next_url, *held)

    if (queries or continuations) and fetcher is not None and fhir_server:
        try:
            outcomes = fetcher.fetch(
                fhir_server, access_token, queries, continuations, client=client
            )
        except Exception as exc:
            # A fetcher bug must not turn a degradable request into a 500: every key fails.
            log.error("prefetch fetcher failed", extra={"error": type(exc).__name__})
            outcomes = {key: FetchOutcome(error="the FHIR request failed") for key in queries}
        for key, outcome in outcomes.items():
            if key not in queries and key not in continuations:
                continue
            if outcome.error is not None:
                if key in queries:
                    result.failed[key] = outcome.error
                # A failed continuation keeps the pages we have.
                continue
            result.resources.extend(outcome.resources)
            result.fetched.append(key)
    else:
        reason = "no FHIR server to fetch from" if not fhir_server else "fetching is not enabled"
        for key in queries:
            result.failed.setdefault(key, f"{_UNAVAILABLE[result.states[key]]}, and {reason}")

    for key in queries:
        if key not in result.fetched:
            result.failed.setdefault(key, "could not be fetched")
    nothing = bool(service.prefetch) and set(result.failed) >= set(service.prefetch)
    for key, reason in sorted(result.failed.items()):
        declared = service.prefetch[key]
        if declared.required and (nothing or not degrade_required):
            raise PrefetchUnavailable(
                f"Required prefetch '{key}' could not be obtained: {reason}.",
                expression=[f"prefetch.{key}"],
            )
        result.missing.add(declared.provides)
    return result
