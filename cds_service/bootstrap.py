"""Composition root: settings + the services module + storage -> the WSGI app.

The services module (``hooks`` by default, ``CDS_SERVICES_MODULE``) is imported by name, so
``cds_service`` keeps no import of ``hooks`` (ARCHITECTURE.md, "Layers").
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping

from flask import Flask

from cds_service import logs
from cds_service.cdshooks.application import CdsApplication
from cds_service.cdshooks.service import Registry
from cds_service.config import ConfigError, Settings, load_settings
from cds_service.storage import StorageError, open_store
from cds_service.web import create_app

log = logging.getLogger("cds_service")


def load_registry(module_name: str) -> Registry:
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"CDS_SERVICES_MODULE: cannot import {module_name!r} ({exc})") from None
    factory = getattr(module, "registry", None)
    if factory is None:
        raise ConfigError(f"CDS_SERVICES_MODULE: {module_name!r} has no registry()")
    return factory()


def build_core(settings: Settings) -> CdsApplication:
    try:
        store = open_store(settings.database_url)
    except StorageError as exc:
        raise ConfigError(f"CDS_DATABASE_URL: {exc}") from None
    return CdsApplication(registry=load_registry(settings.services_module), store=store, policy=settings.policy)


def build_app(settings: Settings | None = None, environ: Mapping[str, str] | None = None) -> Flask:
    settings = settings or load_settings(environ)
    core = build_core(settings)
    return create_app(settings, core)


def announce(settings: Settings) -> None:
    """Say loudly at start-up what the profile allows."""
    log.info("starting", extra={"profile": settings.profile, "workers": settings.workers})
    if settings.development:
        log.warning(
            "DEVELOPMENT PROFILE: anonymous calls are accepted and CORS allows any origin. "
            "Never expose this profile to a network."
        )


def wsgi_app() -> Flask:
    """Gunicorn entry point: ``gunicorn 'cds_service.bootstrap:wsgi_app()'``."""
    settings = load_settings()
    logs.configure(settings.log_level)
    return build_app(settings)
