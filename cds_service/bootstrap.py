"""Composition root: settings + the services of ``hooks`` + storage -> the WSGI app.

The one module of ``cds_service`` that imports ``hooks``: every other layer receives the
registry, so the protocol and the rules never depend on which services exist.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from flask import Flask

from cds_service import logs
from cds_service.cdshooks.application import CdsApplication
from cds_service.cdshooks.auth import AuthConfigError, Authenticator
from cds_service.cdshooks.clients import (
    SANDBOX_ISSUER,
    TrustedClientsError,
    parse_trusted_clients,
    sandbox_client,
)
from cds_service.cdshooks.service import Registry
from cds_service.config import (
    ConfigError,
    Settings,
    load_file,
    load_settings,
    unusable_database,
)
from cds_service.fhir.client import FetchLimits, FhirFetcher
from cds_service.fhir.ssrf import AddressPolicy
from cds_service.storage import StorageError, Store, open_store
from cds_service.web import create_app
from hooks import registry

log = logging.getLogger("cds_service")


def load_registry() -> Registry:
    return registry()


def build_core(settings: Settings) -> CdsApplication:
    try:
        store = open_store(
            settings.database_url,
            retention_days=settings.ledger_retention_days,
            feedback_retention_days=settings.feedback_retention_days,
        )
    except StorageError as exc:  # where (never the password) and why
        raise unusable_database(settings.database_url, str(exc)) from None
    log.info("storage ready", extra={"database": store.describe()})  # password hidden
    return CdsApplication(
        registry=load_registry(),
        store=store,
        policy=settings.policy,
        fetcher=build_fetcher(settings),
        strict_fhir=settings.fhir_strict,
    )


def build_fetcher(settings: Settings) -> FhirFetcher:
    """The prefetch fallback: loopback servers are allowed only in the development profile."""
    return FhirFetcher(
        allowlist=settings.fhir_allowlist,
        address_policy=AddressPolicy(
            allow_loopback=settings.development, allow_private=settings.fhir_allow_private
        ),
        allow_loopback_servers=settings.development,
        limits=FetchLimits(
            budget_ms=settings.fhir_budget_ms,
            connect_timeout_ms=settings.fhir_connect_timeout_ms,
            read_timeout_ms=settings.fhir_read_timeout_ms,
            max_pages=settings.fhir_max_pages,
            max_entries=settings.fhir_max_entries,
            max_bytes=settings.fhir_max_bytes,
        ),
    )


def build_app(settings: Settings | None = None, environ: Mapping[str, str] | None = None) -> Flask:
    settings = settings or load_settings(environ)
    core = build_core(settings)
    return create_app(settings, core, authenticator=build_authenticator(settings, core.store))


def build_authenticator(settings: Settings, store: Store | None) -> Authenticator:
    """EHR authentication per profile (docs/authentication.md): production needs
    trusted clients (or an explicit CDS_ALLOW_ANONYMOUS=1) and CDS_PUBLIC_BASE_URL; development
    also trusts the public sandbox with its bundled key and accepts anonymous calls."""
    clients: tuple = ()
    path = settings.trusted_clients_file
    if path:
        try:
            clients = parse_trusted_clients(load_file(path, "CDS_TRUSTED_CLIENTS"))
        except TrustedClientsError as exc:
            raise ConfigError(f"CDS_TRUSTED_CLIENTS ({path}): {exc}") from None
    sandbox_configured = any(c.issuer == SANDBOX_ISSUER for c in clients)
    if settings.development and not sandbox_configured:
        clients += (sandbox_client(),)
    anonymous = settings.development or settings.allow_anonymous
    if not settings.development:
        if not clients and not anonymous:
            raise ConfigError(
                "CDS_TRUSTED_CLIENTS: the production profile refuses to start without trusted"
                " EHR clients (a YAML/JSON file, see docs/authentication.md); set"
                " CDS_ALLOW_ANONYMOUS=1 to accept unauthenticated calls instead"
            )
        if clients and not settings.public_base_urls:
            raise ConfigError(
                "CDS_PUBLIC_BASE_URL: required in production with trusted clients (the token's aud"
                " is checked against it; the Host header cannot be trusted)"
            )
        if sandbox_configured:
            log.warning(
                "TRUSTING THE PUBLIC CDS HOOKS SANDBOX: its private key is public; anyone"
                " can sign tokens it would accept",
                extra={"issuer": SANDBOX_ISSUER},
            )
    try:
        authenticator = Authenticator(
            clients,
            store=store,
            allow_anonymous=anonymous,
            public_bases=settings.public_base_urls,
            algorithms=settings.jwt_algorithms,
            replay_store_unavailable=settings.replay_store_unavailable,
            max_lifetime_s=settings.jwt_max_lifetime_s,
        )
    except AuthConfigError as exc:
        raise ConfigError(str(exc)) from None
    if settings.development:
        log.warning(
            "DEVELOPMENT PROFILE: calls without a token are accepted, and tokens signed by the"
            " public CDS Hooks sandbox (whose private key is public) are trusted",
            extra={"issuer": SANDBOX_ISSUER, "count": len(clients)},
        )
    elif settings.allow_anonymous:
        log.warning(
            "CDS_ALLOW_ANONYMOUS=1: AUTHENTICATION IS OFF for calls without a token; anyone who"
            " can reach this service can call it",
            extra={"count": len(clients)},
        )
    else:
        log.info("authentication", extra={"count": len(clients), "profile": settings.profile})
    return authenticator


def announce(settings: Settings) -> None:
    """Say loudly at start-up what the profile allows."""
    log.info("starting", extra={"profile": settings.profile, "workers": settings.workers})
    if settings.development:
        log.warning(
            "DEVELOPMENT PROFILE: CORS allows any origin and scenario requests may set "
            "CDS-Evaluation-Time. Never expose this profile to a network."
        )


def wsgi_app() -> Flask:
    """Gunicorn entry point: ``gunicorn 'cds_service.bootstrap:wsgi_app()'``."""
    settings = load_settings()
    logs.configure(settings.log_level)
    return build_app(settings)
