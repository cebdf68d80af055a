"""The jti replay store as authentication uses it: a refused replay, the two policies for a
shared store that does not answer (accept, or 503 with Retry-After: never a 401), this
process's bounded memory of seen tokens, and a jti kept until the token's exp + leeway. The
store's own contract (atomic across workers and replicas, purged now and then) is
tests/storage, on SQLite and PostgreSQL; real outages are tests/reliability."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from cds_service.cdshooks.auth import Authenticator
from cds_service.cdshooks.errors import ServiceUnavailable, Unauthorized
from cds_service.cdshooks.replay import SeenTokens
from cds_service.storage import SqlStore

from .conftest import BASE, EHR_ISSUER, NOW, PATHS, claims, ehr_client, sign


def authenticator_for(ec_key, store, **options) -> Authenticator:
    return Authenticator(
        [ehr_client(ec_key)], store=store, public_bases=(BASE,), clock=lambda: NOW, **options
    )


def bearer(ec_key) -> str:
    return f"Bearer {sign(ec_key, claims(PATHS['service']))}"


def broken_store(tmp_path) -> SqlStore:
    (tmp_path / "a-file").write_text("")
    return SqlStore(f"sqlite:///{tmp_path}/a-file/cds.sqlite3")  # cannot be opened


def test_replay_store_down_accepts_an_unseen_token_by_default(ec_key, tmp_path, caplog):
    authenticator = authenticator_for(ec_key, broken_store(tmp_path))
    decisions: list[str] = []
    authenticator.replay.on_unavailable = decisions.append
    token = bearer(ec_key)
    assert authenticator.authenticate(token, path=PATHS["service"]).issuer == EHR_ISSUER
    # The same token again, to the same process: its memory still refuses the replay.
    with pytest.raises(Unauthorized):
        authenticator.authenticate(token, path=PATHS["service"])
    assert caplog.records[-1].reason == "replayed-jti"
    assert decisions == ["accepted"]
    (warning,) = [r for r in caplog.records if r.msg == "replay store unavailable"]
    assert warning.decision == "accepted" and warning.count == 1


def test_the_outage_warning_is_logged_at_most_once_a_minute(ec_key, tmp_path, caplog):
    authenticator = authenticator_for(ec_key, broken_store(tmp_path))
    for _ in range(5):
        authenticator.authenticate(bearer(ec_key), path=PATHS["service"])
    warnings = [r for r in caplog.records if r.msg == "replay store unavailable"]
    assert len(warnings) == 1


def test_replay_store_down_with_refuse_is_503_never_401(ec_key, tmp_path):
    authenticator = authenticator_for(
        ec_key, broken_store(tmp_path), replay_store_unavailable="refuse"
    )
    reasons: list[str] = []
    authenticator.on_failure = reasons.append
    token = bearer(ec_key)
    for _ in range(2):  # refused, not spent: the same token is refused the same way
        with pytest.raises(ServiceUnavailable) as raised:
            authenticator.authenticate(token, path=PATHS["service"])
        assert raised.value.status == 503 and raised.value.retry_after_s
        assert raised.value.code == "replay-store-unavailable"
    assert reasons == []  # not an authentication failure


def test_an_unknown_policy_is_refused(ec_key, store):
    with pytest.raises(ValueError):
        authenticator_for(ec_key, store, replay_store_unavailable="maybe")


def test_the_local_memory_forgets_expired_tokens_and_stays_bounded():
    seen = SeenTokens(max_entries=3)
    assert seen.add("iss", "a", until=100, now=0)
    assert not seen.add("iss", "a", until=100, now=50)  # a replay within its lifetime
    assert seen.add("iss", "a", until=300, now=101)  # expired: no longer counts
    for jti in "bcd":
        assert seen.add("iss", jti, until=200, now=150)
    assert len(seen) == 3  # full: the entry expiring soonest made room
    assert seen.add("iss", "z", until=1000, now=250) and len(seen) <= 3


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
