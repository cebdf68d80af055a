"""The jti replay store as authentication uses it: a refused replay, failing closed when the
store is down, and a jti kept until the token's exp + leeway. The store's own contract (atomic
across workers and replicas, purged now and then) is tests/storage, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from cds_service.cdshooks.auth import Authenticator
from cds_service.cdshooks.errors import Unauthorized
from cds_service.storage import SqlStore

from .conftest import BASE, EHR_ISSUER, NOW, PATHS, claims, ehr_client, sign


def authenticator_for(ec_key, store) -> Authenticator:
    return Authenticator([ehr_client(ec_key)], store=store, public_bases=(BASE,), clock=lambda: NOW)


def bearer(ec_key) -> str:
    return f"Bearer {sign(ec_key, claims(PATHS['service']))}"


def test_replay_store_down_fails_closed(ec_key, tmp_path, caplog):
    (tmp_path / "a-file").write_text("")
    broken = SqlStore(f"sqlite:///{tmp_path}/a-file/cds.sqlite3")  # cannot be opened
    reasons: list[str] = []
    authenticator = authenticator_for(ec_key, broken)
    authenticator.on_failure = reasons.append
    with pytest.raises(Unauthorized):
        authenticator.authenticate(bearer(ec_key), path=PATHS["service"])
    assert caplog.records[-1].reason == "replay-store-unavailable"
    assert reasons == ["replay-store-unavailable"]


def test_a_replayed_token_is_refused(ec_key, store, caplog):
    authenticator = authenticator_for(ec_key, store)
    token = bearer(ec_key)
    authenticator.authenticate(token, path=PATHS["service"])
    with pytest.raises(Unauthorized):
        authenticator.authenticate(token, path=PATHS["service"])
    assert caplog.records[-1].reason == "replayed-jti"


def test_replay_entry_is_kept_until_exp_plus_leeway(ec_key, store):
    payload = claims(PATHS["service"])
    authenticator_for(ec_key, store).authenticate(
        f"Bearer {sign(ec_key, payload)}", path=PATHS["service"]
    )
    kept_until = NOW + 300 + 60

    def seen_again_at(moment: int) -> bool:
        at = datetime.fromtimestamp(moment, timezone.utc)
        return not store.remember_jti(EHR_ISSUER, payload["jti"], at, at)

    assert seen_again_at(kept_until - 1)
    assert not seen_again_at(kept_until + 1)
