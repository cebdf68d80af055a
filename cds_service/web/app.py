"""Application factory (the Flask tutorial pattern): configuration and the service registry
come in; the app goes out. ``cds_service`` never imports ``hooks``: the registry is passed in.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, cast

from flask import Flask, Response, current_app, g, jsonify, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException

from cds_service.cdshooks.application import CdsApplication
from cds_service.cdshooks.auth import Authenticator
from cds_service.cdshooks.errors import (
    CdsError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    operation_outcome,
)
from cds_service.cdshooks.openapi import openapi_document
from cds_service.config import Settings

from . import cors, jsonbody, metrics, operations
from .home import home_blueprint

log = logging.getLogger("cds_service.web")

CORS_HEADERS = cors.CORS_HEADERS
#: The CDS Hooks endpoints (discovery, service, feedback): each call carries the EHR's JWT.
AUTHENTICATED_ENDPOINTS = frozenset({"discovery", "invoke", "feedback"})


class _JsonProvider(DefaultJSONProvider):
    # Cards keep the order they were built in, and text is sent as UTF-8, not \u escapes.
    sort_keys = False
    ensure_ascii = False

    def response(self, *args: Any, **kwargs: Any) -> Response:
        """Compact JSON through orjson (C), as the standard library would write it here
        (insertion order, UTF-8); what orjson refuses (an integer beyond 64 bits) goes the
        standard library's way."""
        obj = self._prepare_response_obj(args, kwargs)
        try:
            body = jsonbody.write(obj)
        except TypeError:  # orjson.JSONEncodeError
            return cast(Response, super().response(obj))
        return Response(body, mimetype=self.mimetype)


def create_app(
    settings: Settings, core: CdsApplication, *, authenticator: Authenticator | None = None
) -> Flask:
    """``authenticator`` comes from ``bootstrap.build_authenticator``. Without one, no client
    is trusted: only anonymous calls pass, and only where the profile allows them."""
    app = Flask("cds_service")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["JSON_SORT_KEYS"] = False
    app.json = _JsonProvider(app)
    app.extensions["cds"] = core
    app.extensions["cds_settings"] = settings
    app.extensions["cds_auth"] = authenticator or Authenticator(
        store=core.store, allow_anonymous=settings.development or settings.allow_anonymous
    )
    # CORS on preflight and on every response, errors included; a refused origin is logged
    # and counted (docs/security.md, "CORS").
    cors.setup(app, settings.cors_origins, on_refused=metrics.cors_refused)
    # First, so that its metrics time and count every request, refused ones included.
    operations.register(app, core, app.extensions["cds_auth"])
    _authentication(app)
    _routes(app)
    if settings.home_page:  # CDS_HOME_PAGE=0: no page, and / answers 404 like any other path
        app.register_blueprint(home_blueprint(settings, core))
    _errors(app)
    return app


def _authentication(app: Flask) -> None:
    @app.before_request
    def authenticate() -> None:
        # Preflight carries no token (browsers never send Authorization on OPTIONS).
        if request.method == "OPTIONS" or request.endpoint not in AUTHENTICATED_ENDPOINTS:
            return
        authorization = request.headers.get("Authorization")
        g.cds_client = current_app.extensions["cds_auth"].authenticate(
            authorization,
            path=request.path,
            # The audience a token may name; an anonymous call has none to check.
            request_base=None if authorization is None else request.url_root,
        )


def _core() -> CdsApplication:
    return current_app.extensions["cds"]


def _body() -> Any:
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"The request body exceeds {limit} bytes.")
    raw = request.get_data(cache=False)
    if len(raw) > limit:
        raise PayloadTooLarge(f"The request body exceeds {limit} bytes.")
    return jsonbody.parse(raw, request.mimetype)


EVALUATION_TIME_HEADER = "CDS-Evaluation-Time"


def _evaluation_time() -> datetime | None:
    """Development profile only: evaluate "as of" a fixed time, so that a scenario's
    request.json gives its expected.json on any day. Ignored in production."""
    value = request.headers.get(EVALUATION_TIME_HEADER)
    if not value or not current_app.extensions["cds_settings"].development:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(f"{EVALUATION_TIME_HEADER}: expected an ISO 8601 date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _routes(app: Flask) -> None:
    @app.get("/cds-services")
    def discovery() -> Response:
        return jsonify(_core().discovery())

    @app.get("/openapi.json")
    def openapi() -> Response:
        # Public, like any API description: it holds no data. Built once per process.
        if "cds_openapi" not in current_app.extensions:
            current_app.extensions["cds_openapi"] = openapi_document(_core().registry)
        return jsonify(current_app.extensions["cds_openapi"])

    @app.post("/cds-services/<service_id>")
    def invoke(service_id: str) -> Response:
        core = _core()
        core.service(service_id)  # 404 before reading the body
        now = _evaluation_time()
        body = _body()
        g.cds_hook_instance = operations.hook_instance(body)  # for the failure log event
        return jsonify(core.invoke(service_id, body, now=now, client=g.get("cds_client")))

    @app.post("/cds-services/<service_id>/feedback")
    def feedback(service_id: str) -> Response:
        core = _core()
        core.service(service_id)
        return jsonify(core.feedback(service_id, _body()))


def _outcome(error: CdsError) -> Response:
    response = jsonify(operation_outcome(error))
    response.status_code = error.status
    return response


def _errors(app: Flask) -> None:
    @app.errorhandler(CdsError)
    def cds_error(error: CdsError) -> Response:
        if error.status >= 500:
            log.error("request failed", extra={"code": error.code, "path": request.path})
        response = _outcome(error)
        if isinstance(error, Unauthorized):
            response.headers["WWW-Authenticate"] = "Bearer"  # RFC 6750, 3
        if error.retry_after_s is not None:
            response.headers["Retry-After"] = str(error.retry_after_s)  # RFC 9110, 10.2.3
        return response

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        if error.code == 404:
            return _outcome(NotFound(f"No endpoint at {request.path[:200]}."))
        if error.code == 405:
            allowed = ", ".join(sorted(getattr(error, "valid_methods", None) or []))
            response = _outcome(
                MethodNotAllowed(f"{request.method} is not allowed here; use {allowed}.")
            )
            if allowed:
                response.headers["Allow"] = allowed
            return response
        if error.code == 413:
            return _outcome(PayloadTooLarge())
        generic = CdsError(error.description or "Request failed.")
        generic.status = error.code or 500
        generic.code = "http-error"
        generic.issue_type = "processing"
        return _outcome(generic)

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        # A genuine bug: the type and stack go to the log, nothing internal to the caller.
        log.error("unhandled error", exc_info=error, extra={"path": request.path})
        return _outcome(CdsError())
