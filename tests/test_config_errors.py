"""A configuration mistake stops the service with a message that names the setting, says what
is wrong and where, and never repeats a password."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from cds_service import cli
from cds_service.bootstrap import build_app, build_authenticator
from cds_service.config import ConfigError, load_settings
from cds_service.storage import open_store

SECRET = "hunter2-not-for-logs"


def closed_loopback_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- CDS_DATABASE_URL ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    ["notaurl", "var/cds.sqlite3", f"cds:{SECRET}@db.example.org/cds", "postgresql//cds@db/cds"],
)
def test_a_value_that_is_not_a_database_url_is_refused(url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as raised:
        load_settings({"CDS_DATABASE_URL": url})
    message = str(raised.value)
    assert message.startswith("CDS_DATABASE_URL: not a database URL; use sqlite:///")
    assert SECRET not in message
    assert list(tmp_path.iterdir()) == []  # no SQLite file of that name appeared


@pytest.mark.parametrize(
    "url, message",
    [
        (f"mysql://cds:{SECRET}@db/cds", "unsupported database 'mysql'"),
        ("sqlite://", "a SQLite URL has three slashes and a file"),
        ("sqlite:///:memory:", "an in-memory database would lose the ledger"),
        (f"postgresql://cds:{SECRET}@db:five/cds", "the PostgreSQL URL's port is not a number"),
    ],
)
def test_an_unusable_database_url_is_refused_without_its_password(url, message):
    with pytest.raises(ConfigError) as raised:
        load_settings({"CDS_DATABASE_URL": url})
    assert str(raised.value).startswith("CDS_DATABASE_URL: ")
    assert message in str(raised.value) and SECRET not in str(raised.value)


def test_a_sqlite_directory_that_does_not_exist_is_refused_not_created(tmp_path):
    missing = tmp_path / "typo" / "var"
    with pytest.raises(ConfigError) as raised:
        load_settings({"CDS_DATABASE_URL": f"sqlite:///{missing}/cds.sqlite3"})
    assert str(raised.value).startswith(
        f"CDS_DATABASE_URL: the SQLite database's directory {missing} does not exist; create it"
    )
    assert not (tmp_path / "typo").exists()


def test_a_relative_sqlite_directory_is_named_in_full(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=f"directory {tmp_path}/data does not exist"):
        load_settings({"CDS_DATABASE_URL": "sqlite:///data/cds.sqlite3"})


def test_a_sqlite_url_naming_a_directory_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=f"CDS_DATABASE_URL: {tmp_path} is a directory"):
        load_settings({"CDS_DATABASE_URL": f"sqlite:///{tmp_path}"})


def test_a_sqlite_file_in_an_existing_directory_is_accepted(tmp_path):
    url = f"sqlite:///{tmp_path}/cds.sqlite3"
    assert load_settings({"CDS_DATABASE_URL": url}).database_url == url


@pytest.mark.parametrize("environ", [{}, {"CDS_DATABASE_URL": "sqlite:///var/cds.sqlite3"}])
def test_the_default_database_works_on_a_fresh_clone(environ, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no var/ yet, as after git clone
    settings = load_settings(environ)
    assert settings.database_url == "sqlite:///var/cds.sqlite3"
    open_store(settings.database_url).close()
    assert (tmp_path / "var" / "cds.sqlite3").is_file()


def test_an_unreachable_postgresql_names_host_port_database_and_reason(tmp_path):
    port = closed_loopback_port()
    settings = load_settings(
        {"CDS_DATABASE_URL": f"postgresql://cds:{SECRET}@127.0.0.1:{port}/ledger"}
    )
    with pytest.raises(ConfigError) as raised:
        build_app(settings)
    message = str(raised.value)
    assert message.startswith(
        f"CDS_DATABASE_URL: cannot use the PostgreSQL database 'ledger' on 127.0.0.1:{port}"
        " as user 'cds': database error: OperationalError ("
    )
    assert "refused" in message.lower()
    assert SECRET not in message and "OperationalError)" not in message  # a reason is given


def test_the_password_from_its_file_is_never_in_the_message(tmp_path):
    secret = tmp_path / "password"
    secret.write_text(SECRET + "\n")
    port = closed_loopback_port()
    settings = load_settings(
        {
            "CDS_DATABASE_URL": f"postgresql://cds@127.0.0.1:{port}/cds",
            "CDS_DATABASE_PASSWORD_FILE": str(secret),
        }
    )
    with pytest.raises(ConfigError) as raised:
        build_app(settings)
    assert f"127.0.0.1:{port}" in str(raised.value) and SECRET not in str(raised.value)


def test_serve_stops_at_once_and_says_why(tmp_path):
    # A process of its own: serve sets up the metrics directory for its workers.
    port = closed_loopback_port()
    environ = {
        "PATH": os.environ.get("PATH", ""),
        "CDS_PROFILE": "development",
        "CDS_DATABASE_URL": f"postgresql://cds:{SECRET}@127.0.0.1:{port}/cds",
    }
    result = subprocess.run(
        [sys.executable, "-m", "cds_service.cli", "serve", "--port", str(closed_loopback_port())],
        env=environ,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].startswith(  # after the start-up log lines
        f"configuration error: CDS_DATABASE_URL: cannot use the PostgreSQL database 'cds' on"
        f" 127.0.0.1:{port} as user 'cds'"
    )
    assert SECRET not in result.stderr + result.stdout and "Traceback" not in result.stderr


def test_the_cli_refuses_notaurl_before_doing_anything(monkeypatch, capsys):
    monkeypatch.setenv("CDS_DATABASE_URL", "notaurl")
    assert cli.main(["rules"]) == 2
    assert capsys.readouterr().err.startswith(
        "configuration error: CDS_DATABASE_URL: not a database URL"
    )


# -- files: line and column of a syntax error ---------------------------------------------
CLIENTS_JSON = '{\n  "clients": [\n    {"issuer" "https://ehr.example.org"}\n  ]\n}\n'
CLIENTS_YAML = "clients:\n  - issuer: https://ehr.example.org\n    jwks: {keys: [\n"


@pytest.mark.parametrize(
    "name, content, where",
    [
        ("clients.json", CLIENTS_JSON, "is not valid JSON at line 3, column 15"),
        ("clients.yaml", CLIENTS_YAML, "is not valid YAML/JSON at line 4, column 1"),
        # Not named .json: read as YAML, which reads JSON too and still says where.
        ("clients", CLIENTS_JSON, "is not valid YAML/JSON at line 3, column 15"),
    ],
)
def test_a_trusted_clients_syntax_error_names_file_line_and_column(name, content, where, tmp_path):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    settings = load_settings(
        {
            "CDS_DATABASE_URL": f"sqlite:///{tmp_path}/cds.sqlite3",
            "CDS_TRUSTED_CLIENTS": str(path),
            "CDS_PUBLIC_BASE_URL": "https://cds.example.org",
        }
    )
    with pytest.raises(ConfigError) as raised:
        build_authenticator(settings, store=None)
    assert str(raised.value).startswith(f"CDS_TRUSTED_CLIENTS: {path} {where}")


@pytest.mark.parametrize(
    "name, content, where",
    [
        (
            "policy.json",
            json.dumps({"thresholds": {"total_b12_deficient_below_ng_l": 200}}, indent=2)[:-1]
            + ",\n}",
            "is not valid JSON at line 6, column 1",
        ),
        ("policy.yaml", "thresholds:\n  total_b12: [200\n", "is not valid YAML/JSON at line 3"),
    ],
)
def test_a_site_policy_syntax_error_names_file_line_and_column(
    name, content, where, tmp_path, monkeypatch, capsys
):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    monkeypatch.setenv("CDS_SITE_POLICY", str(path))
    assert cli.main(["rules"]) == 2
    assert capsys.readouterr().err.startswith(
        f"configuration error: CDS_SITE_POLICY: {path} {where}"
    )


def test_a_config_file_syntax_error_names_file_line_and_column(tmp_path):
    path = tmp_path / "cds.yaml"
    path.write_text("threads: 2\nworkers: [4\nport: 80\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"CDS_CONFIG_FILE: {path} .* at line \d+, column \d+"):
        load_settings({"CDS_CONFIG_FILE": str(path)})


def test_a_file_that_is_not_text_is_named(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_bytes(b"\xff\xfe\x00thresholds")
    with pytest.raises(ConfigError, match=f"CDS_SITE_POLICY: {path} is not UTF-8 text"):
        load_settings({"CDS_SITE_POLICY": str(path)})
