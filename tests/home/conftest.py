"""An app per profile and setting, on a temporary database."""

from __future__ import annotations

import pytest

from cds_service.cdshooks.application import CdsApplication
from cds_service.config import load_settings
from cds_service.storage import open_store
from cds_service.web import create_app
from hooks import registry
from tests.builders import NOW

from .page import Page


@pytest.fixture
def make_app(tmp_path):
    """``make_app(CDS_PROFILE="production", ...)`` -> (app, core)."""

    def make(**env: str):
        settings = load_settings(
            {"CDS_DATABASE_URL": f"sqlite:///{tmp_path}/home.sqlite3", "CDS_WORKERS": "1", **env}
        )
        core = CdsApplication(
            registry=registry(),
            store=open_store(settings.database_url),
            policy=settings.policy,
            clock=lambda: NOW,
        )
        return create_app(settings, core), core

    return make


@pytest.fixture
def get_page():
    def get(client, url: str = "/", **kwargs) -> Page:
        response = client.get(url, **kwargs)
        assert response.status_code == 200, response.get_data(as_text=True)[:500]
        assert response.mimetype == "text/html"
        return Page(response.get_data(as_text=True))

    return get
