"""The home page (``GET /``): what the service does, for integrators and clinicians, without
an EHR.

Four sections: **Connect** (discovery URL, services and prefetch, the public sandbox, curl),
**Rules** (the knowledge base with the thresholds in effect), **Try it** (a synthetic scenario
sent to the service, its cards shown the way an EHR shows them) and **Feedback** (accepted /
overridden rates per rule). ``CDS_HOME_PAGE=0`` leaves ``/`` a 404; Try it and Feedback are on
in development and off in production unless enabled (``CDS_HOME_TRY_IT``, ``CDS_HOME_FEEDBACK``).

Try it in development posts the scenario's request.json to the real service endpoint from the
browser, with ``CDS-Evaluation-Time`` set to the scenario's date. Production ignores that
header and asks for a JWT, so there (and without JavaScript) the page evaluates the scenario
server-side at its own date, on a copy of the application that writes no ledger and fetches
nothing. Either way the cards are rendered by the server (``POST /home/render``): card
Markdown goes through markdown-it-py with raw HTML off, never through the browser.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, abort, render_template, request
from markupsafe import Markup

from cds_service.cdshooks.application import CdsApplication
from cds_service.cdshooks.errors import (
    CdsError,
    InvalidRequest,
    StorageUnavailable,
    operation_outcome,
)
from cds_service.config import Settings
from cds_service.domain.catalogue import catalogue
from cds_service.domain.policy import Policy

from . import jsonbody
from .cardview import card_views
from .chart import feedback_svg, rates
from .scenarios import DEFAULT_DIR, FEATURED, Scenario, load_scenarios

SANDBOX_URL = "https://sandbox.cds-hooks.org/"
EVALUATION_TIME_HEADER = "CDS-Evaluation-Time"

#: Defence in depth behind the escaping: no inline script, nothing loaded from elsewhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def sandbox_link(discovery_url: str) -> str:
    """Opens the public CDS Hooks sandbox with this service's discovery URL filled in."""
    return f"{SANDBOX_URL}?serviceDiscoveryURL={quote(discovery_url, safe='')}"


def curl_command(base_url: str, scenario: Scenario | None, development: bool) -> str:
    """The shell command that sends a fixture to the service, as the README's Try it does."""
    slug = scenario.slug if scenario else FEATURED
    service = scenario.service if scenario else "b12-order-sign"
    lines = ["curl -s -X POST -H 'Content-Type: application/json' \\"]
    if development and scenario is not None:
        lines.append(f"     -H '{EVALUATION_TIME_HEADER}: {scenario.evaluation_time}' \\")
    if not development:
        lines.append('     -H "Authorization: Bearer $JWT" \\')
    lines.append(f"     --data @fixtures/scenarios/{slug}/request.json \\")
    lines.append(f"     {base_url}/cds-services/{service}")
    return "\n".join(lines)


def setting_text(value: Any) -> str:
    """A policy value as a reader expects it: 180, not 180.0; lists comma-separated."""
    if isinstance(value, (list, tuple)):
        return ", ".join(setting_text(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def rule_views(policy: Policy) -> list[dict[str, Any]]:
    """The catalogue for the page: values in effect, each marked when site policy changed it,
    and the words the search box matches (id, title, summary, sources, setting names)."""
    defaults = {entry["id"]: entry["settings"] for entry in catalogue(Policy())}
    views = []
    for entry in catalogue(policy):
        summary = entry["summary"]
        prefix = f"``{entry['id']}``:"
        if summary.startswith(prefix):
            summary = summary.removeprefix(prefix).strip()
            summary = summary[:1].upper() + summary[1:]
        settings = [
            {
                "key": key,
                "value": setting_text(value),
                "default": setting_text(defaults[entry["id"]].get(key)),
                "changed": value != defaults[entry["id"]].get(key),
            }
            for key, value in entry["settings"].items()
        ]
        words = [entry["id"], entry["title"], summary, *entry["indicators"]]
        words += [s["label"] for s in entry["sources"]] + [s["key"] for s in settings]
        views.append(
            {
                **entry,
                "summary": summary,
                "settings": settings,
                "changed": sum(1 for s in settings if s["changed"]),
                "search": " ".join(words).lower(),
            }
        )
    return views


@dataclasses.dataclass(frozen=True)
class Sections:
    try_it: bool
    feedback: bool


def home_blueprint(settings: Settings, core: CdsApplication) -> Blueprint:
    sections = Sections(try_it=settings.home_try_it, feedback=settings.home_feedback)
    directory = Path(settings.scenarios_dir) if settings.scenarios_dir else DEFAULT_DIR
    scenarios = load_scenarios(directory, (s.id for s in core.registry)) if sections.try_it else {}
    # Server-side Try it: no ledger entry (demo cards would skew Feedback), no outbound call,
    # no metrics hook: only the registry and the policy are shared with the real service.
    offline = CdsApplication(
        registry=core.registry, policy=core.policy, strict_fhir=core.strict_fhir
    )
    rules = rule_views(settings.policy)
    policy_changes = sum(r["changed"] for r in rules)

    bp = Blueprint(
        "home",
        __name__,
        template_folder="templates",
        static_folder="static",
        static_url_path="/home/static",
    )

    @bp.after_request
    def security_headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    def base_url() -> str:
        if settings.public_base_urls:
            return settings.public_base_urls[0]
        return request.url_root.rstrip("/")

    def feedback() -> dict[str, Any]:
        if not sections.feedback:
            return {}
        try:
            reports = core.feedback_report()
        except StorageUnavailable as error:
            return {"error": error.message}
        # feedback_svg escapes every text it writes: the SVG goes into the page as markup.
        return {
            "rows": rates(reports),
            "svg": Markup(feedback_svg(reports)),
            "invocations": max((getattr(r, "invocations", 0) for r in reports), default=0),
        }

    def run_offline(scenario: Scenario) -> dict[str, Any]:
        try:
            try:
                body = scenario.request()
            except (OSError, ValueError):
                raise InvalidRequest("The scenario's request.json cannot be read.") from None
            response = offline.invoke(scenario.service, body, now=scenario.now)
        except CdsError as error:
            response = operation_outcome(error)
            return {"response": response, "cards": [], "outcome": error.message}
        return {"response": response, "cards": card_views(response), "outcome": None}

    @bp.get("/")
    def index() -> str:
        base = base_url()
        discovery_url = f"{base}/cds-services"
        chosen = None
        result = None
        if sections.try_it and "scenario" in request.args:
            chosen = scenarios.get(request.args.get("scenario", ""))
            if chosen is None:
                abort(404)
            result = run_offline(chosen)
        selected = chosen or scenarios.get(FEATURED) or next(iter(scenarios.values()), None)
        return render_template(
            "home/index.html",
            settings=settings,
            sections=sections,
            base_url=base,
            discovery_url=discovery_url,
            sandbox_url=sandbox_link(discovery_url),
            services=list(core.registry),
            curl=curl_command(base, selected, settings.development),
            curls={
                slug: curl_command(base, s, settings.development) for slug, s in scenarios.items()
            },
            rules=rules,
            policy_changes=policy_changes,
            scenarios=list(scenarios.values()),
            selected=selected,
            chosen=chosen,
            result=result,
            request_json=chosen.request_bytes().decode("utf-8") if chosen else "",
            response_json=(
                json.dumps(result["response"], indent=2, ensure_ascii=False) if result else ""
            ),
            mode="service" if settings.development else "server",
            feedback=feedback(),
        )

    @bp.get("/home/scenarios/<slug>/request.json")
    def scenario_request(slug: str) -> Response:
        scenario = scenarios.get(slug) if sections.try_it else None
        if scenario is None:
            abort(404)
        return Response(scenario.request_bytes(), mimetype="application/json")

    @bp.post("/home/render")
    def render_cards() -> str:
        """A CDS Hooks response body -> its cards as HTML, the way an EHR shows them."""
        if not sections.try_it:
            abort(404)
        body = jsonbody.parse(request.get_data(cache=False), request.mimetype)
        return render_template("home/_cards.html", cards=card_views(body))

    return bp
