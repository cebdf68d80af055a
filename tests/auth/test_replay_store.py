"""The jti replay store (storage migration 2): atomic across threads and processes sharing
the database, kept until the token's exp + leeway, purged now and then."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest

from cds_service.cdshooks.auth import Authenticator
from cds_service.cdshooks.errors import Unauthorized
from cds_service.storage import StorageError, open_store
from cds_service.storage.sqlite import JTI_PURGE_INTERVAL_S

from .conftest import BASE, NOW, PATHS, claims, ehr_client, sign

T0 = datetime(2027, 1, 15, 8, 0, tzinfo=timezone.utc)


def rows(store) -> int:
    with sqlite3.connect(store.path) as db:
        return db.execute("SELECT count(*) FROM seen_jti").fetchone()[0]


def test_a_jti_is_accepted_once(store):
    until = T0 + timedelta(seconds=360)
    assert store.remember_jti("https://ehr.example.org", "jti-1", until, T0) is True
    assert store.remember_jti("https://ehr.example.org", "jti-1", until, T0) is False
    assert store.remember_jti("https://ehr.example.org", "jti-2", until, T0) is True
    assert store.remember_jti("https://other.example.org", "jti-1", until, T0) is True


def test_a_jti_is_remembered_until_it_expires(store):
    until = T0 + timedelta(seconds=360)
    store.remember_jti("iss", "jti-1", until, T0)
    assert store.remember_jti("iss", "jti-1", until, until - timedelta(seconds=1)) is False
    after = until + timedelta(seconds=1)
    assert store.remember_jti("iss", "jti-1", after + timedelta(seconds=360), after)


def test_expired_rows_are_purged_now_and_then(store):
    for n in range(5):
        store.remember_jti("iss", f"old-{n}", T0 + timedelta(seconds=60), T0)
    assert rows(store) == 5
    later = T0 + timedelta(seconds=JTI_PURGE_INTERVAL_S + 1)
    store.remember_jti("iss", "new", later + timedelta(seconds=360), later)
    assert rows(store) == 1


def test_concurrent_replays_let_exactly_one_through(store):
    until = T0 + timedelta(seconds=360)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: store.remember_jti("iss", "same", until, T0), range(32)))
    assert results.count(True) == 1


def test_two_stores_on_one_database_share_the_replay_state(store):
    """Two workers (or replicas on a shared database) see each other's jti."""
    other = open_store(store.path)
    until = T0 + timedelta(seconds=360)
    assert store.remember_jti("iss", "shared", until, T0) is True
    assert other.remember_jti("iss", "shared", until, T0) is False


def authenticator_for(ec_key, store) -> Authenticator:
    return Authenticator([ehr_client(ec_key)], store=store, public_bases=(BASE,), clock=lambda: NOW)


def bearer(ec_key) -> str:
    return f"Bearer {sign(ec_key, claims(PATHS['service']))}"


def test_replay_store_down_fails_closed(ec_key, store, caplog, monkeypatch):
    def broken(*args, **kwargs):
        raise StorageError("database error: OperationalError")

    monkeypatch.setattr(store, "remember_jti", broken)
    authenticator = authenticator_for(ec_key, store)
    with pytest.raises(Unauthorized):
        authenticator.authenticate(bearer(ec_key), path=PATHS["service"])
    assert caplog.records[-1].reason == "replay-store-unavailable"


def test_replay_entry_is_kept_until_exp_plus_leeway(ec_key, store):
    authenticator_for(ec_key, store).authenticate(bearer(ec_key), path=PATHS["service"])
    with sqlite3.connect(store.path) as db:
        (expires_at,) = db.execute("SELECT expires_at FROM seen_jti").fetchone()
    assert expires_at == NOW + 300 + 60
