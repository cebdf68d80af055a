"""The settings a container needs: the database password from a secret file (any password,
percent-encoded into the URL), the worker count from the container's CPU quota, the port the
health check asks, and start-up errors that say why the database was refused."""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit

import pytest

from cds_service import config
from cds_service.config import ConfigError, cgroup_cpu_quota, load_settings
from cds_service.storage import StorageError, open_store

AWKWARD = "p@ss%w0rd:/?#[]! é"


def with_password(tmp_path, password: str, url: str = "postgresql://cds@db.example:5432/cds"):
    secret = tmp_path / "password"
    secret.write_text(password + "\n", encoding="utf-8")
    return load_settings({"CDS_DATABASE_URL": url, "CDS_DATABASE_PASSWORD_FILE": str(secret)})


def test_any_password_from_the_file_reaches_the_url_intact(tmp_path):
    url = with_password(tmp_path, AWKWARD).database_url
    parts = urlsplit(url)
    assert (parts.hostname, parts.port, parts.path) == ("db.example", 5432, "/cds")
    assert parts.username == "cds" and unquote(parts.password) == AWKWARD


@pytest.mark.parametrize(
    "url, message",
    [
        ("postgresql://cds:inline@db/cds", "keep only the file"),
        ("postgresql://db/cds", "name the user"),
        ("sqlite:///var/cds.sqlite3", "postgresql://user@host"),
    ],
)
def test_a_password_file_with_an_unsuitable_url_is_refused(tmp_path, url, message):
    with pytest.raises(ConfigError, match=message):
        with_password(tmp_path, "secret", url)


def test_a_missing_or_empty_password_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="CDS_DATABASE_PASSWORD_FILE: cannot read"):
        load_settings({"CDS_DATABASE_PASSWORD_FILE": str(tmp_path / "none")})
    with pytest.raises(ConfigError, match="is empty"):
        with_password(tmp_path, "")


@pytest.mark.parametrize(
    "files, quota",
    [
        ({"cpu.max": "150000 100000\n"}, 1.5),
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 2.0),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({}, None),
    ],
)
def test_the_cgroup_cpu_quota_is_read_from_v2_or_v1(tmp_path, files, quota):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="ascii")
    assert cgroup_cpu_quota(tmp_path) == quota


def test_the_default_worker_count_follows_the_cpu_quota(monkeypatch):
    monkeypatch.setattr(config.os, "sched_getaffinity", lambda pid: set(range(16)))
    monkeypatch.setattr(config, "cgroup_cpu_quota", lambda: 1.5)
    # Two single-threaded workers per available CPU (docs/benchmarks.md, "Worker model").
    assert load_settings({}).workers == 4  # 1.5 CPUs rounded up to 2
    monkeypatch.setattr(config, "cgroup_cpu_quota", lambda: None)
    assert load_settings({}).workers == 32
    assert load_settings({"CDS_WORKERS": "3"}).workers == 3


def test_the_port_is_a_setting():
    assert load_settings({}).port == 8080
    assert load_settings({"CDS_PORT": "9090"}).port == 9090
    with pytest.raises(ConfigError, match="CDS_PORT"):
        load_settings({"CDS_PORT": "http"})


def test_a_read_only_sqlite_directory_says_what_to_do(tmp_path, monkeypatch):
    # As on a read-only root file system (a mode would not stop root, who runs CI).
    from cds_service.storage import sql

    directory = tmp_path / "ro"
    real_access = os.access
    monkeypatch.setattr(
        sql.os, "access", lambda path, mode: False if path == directory else real_access(path, mode)
    )
    with pytest.raises(StorageError, match="is not writable .*needs a volume there"):
        open_store(f"sqlite:///{directory}/cds.sqlite3")


def test_a_refused_connection_is_named_without_the_password(postgres):
    # The throwaway cluster trusts loopback (no password check): an unknown database is the
    # refusal it can give; the password in the URL must not be echoed either way.
    url = postgres.url("no_such_database").replace("@", ":Wr0ng-S3cret@", 1)
    with pytest.raises(StorageError) as refused:
        open_store(url)
    message = str(refused.value)
    assert "Wr0ng-S3cret" not in message
    assert 'database "no_such_database" does not exist' in message, message
