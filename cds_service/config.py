"""Settings: ``CDS_*`` environment variables over an optional config file, validated at start-up.

A bad value stops the service with a message that names the variable; nothing is guessed.
The optional file (``CDS_CONFIG_FILE``, YAML or JSON) holds the same names in lower case
without the prefix (``max_body_bytes: 1000000``); the environment wins.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import yaml

from cds_service.domain.policy import Policy, PolicyError


class ConfigError(ValueError):
    """A setting is wrong; the message names it."""


PROFILES = ("development", "production")


@dataclass(frozen=True)
class Settings:
    profile: str = "production"
    database_url: str = "sqlite:///var/cds.sqlite3"
    max_body_bytes: int = 5 * 1024 * 1024
    cors_origins: tuple[str, ...] = ()
    site_policy_file: str | None = None
    policy: Policy = field(default_factory=Policy)
    log_level: str = "INFO"
    workers: int = 2
    #: The port ``cds-service serve`` listens on unless --port says otherwise (the image's
    #: health check asks the same one).
    port: int = 8080
    allow_anonymous: bool = False
    # EHR authentication (cds_service/cdshooks/auth.py): who may call, and the audience URL.
    trusted_clients_file: str | None = None
    public_base_urls: tuple[str, ...] = ()
    jwt_algorithms: tuple[str, ...] = ("ES384", "RS384")
    #: The longest token lifetime (exp - iat) accepted, and the oldest iat (docs/security.md).
    jwt_max_lifetime_s: int = 3600
    # Prefetch fallback (cds_service/fhir/client.py): which servers, and how long and how much.
    fhir_allowlist: tuple[str, ...] = ()
    fhir_allow_private: bool = False
    #: Validate every selected prefetched resource in full with fhir.resources.R4B (slower).
    fhir_strict: bool = False
    fhir_budget_ms: int = 2000
    fhir_connect_timeout_ms: int = 1000
    fhir_read_timeout_ms: int = 2000
    fhir_max_pages: int = 5
    fhir_max_entries: int = 1000
    fhir_max_bytes: int = 5 * 1024 * 1024
    # Operations (README, Operations): the ledger's retention, and gunicorn under `serve`.
    ledger_retention_days: int = 365
    feedback_retention_days: int = 365
    threads: int = 1
    graceful_timeout_s: int = 30
    max_requests: int = 10000
    forwarded_allow_ips: str = "127.0.0.1,::1"
    #: When the shared replay store cannot answer: accept (a token this process has not seen)
    #: or refuse (503 + Retry-After). docs/operations-failures.md weighs the two.
    replay_store_unavailable: str = "accept"
    # The home page (cds_service/web/home.py): off entirely, and the sections beyond Connect
    # and Rules (development shows them; production only when enabled).
    home_page: bool = True
    home_try_it: bool = False
    home_feedback: bool = False
    #: Synthetic scenarios for Try it (default: the project's fixtures/scenarios).
    scenarios_dir: str | None = None

    @property
    def development(self) -> bool:
        return self.profile == "development"


def load_file(path: str | Path, what: str) -> Any:
    """A YAML or JSON document (JSON is YAML); ConfigError naming the file on failure."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path}: {exc.strerror}") from None
    try:
        if str(path).endswith(".json"):
            return json.loads(text)
        return yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{what}: {path} is not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(f"{what}: {path} is not valid YAML/JSON{where}: {problem}") from None
    except ValueError as exc:
        raise ConfigError(f"{what}: {path} is not valid YAML/JSON ({type(exc).__name__})") from None


def _int(name: str, value: Any, minimum: int = 1) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ConfigError(f"{name}: expected a whole number, got {value!r}") from None
    if number < minimum:
        raise ConfigError(f"{name}: must be at least {minimum}, got {number}")
    return number


def _bool(name: str, value: Any) -> bool:
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name}: expected 1/0, true/false, yes/no, got {value!r}")


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    env = dict(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    config_file = env.get("CDS_CONFIG_FILE")
    if config_file:
        data = load_file(config_file, "CDS_CONFIG_FILE")
        if not isinstance(data, Mapping):
            raise ConfigError("CDS_CONFIG_FILE: expected a mapping of settings")
        for key, value in data.items():
            values["CDS_" + str(key).upper()] = value
    values.update({k: v for k, v in env.items() if k.startswith("CDS_")})
    known = {
        "CDS_PROFILE",
        "CDS_DATABASE_URL",
        "CDS_DATABASE_PASSWORD_FILE",
        "CDS_PORT",
        "CDS_MAX_BODY_BYTES",
        "CDS_CORS_ORIGINS",
        "CDS_SITE_POLICY",
        "CDS_LOG_LEVEL",
        "CDS_WORKERS",
        "CDS_ALLOW_ANONYMOUS",
        "CDS_CONFIG_FILE",
        "CDS_TRUSTED_CLIENTS",
        "CDS_PUBLIC_BASE_URL",
        "CDS_JWT_ALGORITHMS",
        "CDS_FHIR_ALLOWLIST",
        "CDS_FHIR_ALLOW_PRIVATE",
        "CDS_FHIR_STRICT",
        "CDS_FHIR_BUDGET_MS",
        "CDS_FHIR_CONNECT_TIMEOUT_MS",
        "CDS_FHIR_READ_TIMEOUT_MS",
        "CDS_FHIR_MAX_PAGES",
        "CDS_FHIR_MAX_ENTRIES",
        "CDS_FHIR_MAX_BYTES",
        "CDS_LEDGER_RETENTION_DAYS",
        "CDS_FEEDBACK_RETENTION_DAYS",
        "CDS_JWT_MAX_LIFETIME_S",
        "CDS_THREADS",
        "CDS_GRACEFUL_TIMEOUT",
        "CDS_MAX_REQUESTS",
        "CDS_FORWARDED_ALLOW_IPS",
        "CDS_REPLAY_STORE_UNAVAILABLE",
        "CDS_HOME_PAGE",
        "CDS_HOME_TRY_IT",
        "CDS_HOME_FEEDBACK",
        "CDS_SCENARIOS_DIR",
    }
    unknown = sorted(
        k for k in values if k not in known and k.startswith("CDS_") and k not in EXTRA_KEYS
    )
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown setting (see README, Configuration)")

    profile = str(values.get("CDS_PROFILE", "production")).strip().lower()
    if profile not in PROFILES:
        raise ConfigError(f"CDS_PROFILE: expected one of {list(PROFILES)}, got {profile!r}")
    development = profile == "development"
    origins_raw = values.get("CDS_CORS_ORIGINS", "*" if development else "")
    if isinstance(origins_raw, (list, tuple)):
        origins = tuple(str(o).strip() for o in origins_raw if str(o).strip())
    else:
        origins = tuple(o.strip() for o in str(origins_raw).split(",") if o.strip())
    for origin in origins:
        if origin != "*" and not origin.startswith(("http://", "https://")):
            raise ConfigError(
                f"CDS_CORS_ORIGINS: {origin!r} is not an origin (scheme://host[:port])"
            )
    log_level = str(values.get("CDS_LOG_LEVEL", "INFO")).upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(
            f"CDS_LOG_LEVEL: expected DEBUG, INFO, WARNING or ERROR, got {log_level!r}"
        )

    policy_file = values.get("CDS_SITE_POLICY") or None
    policy = Policy()
    if policy_file:
        try:
            policy = Policy.from_mapping(load_file(policy_file, "CDS_SITE_POLICY"))
        except PolicyError as exc:
            raise ConfigError(f"CDS_SITE_POLICY ({policy_file}): {exc}") from None

    replay_unavailable = str(values.get("CDS_REPLAY_STORE_UNAVAILABLE", "accept")).strip().lower()
    if replay_unavailable not in ("accept", "refuse"):
        raise ConfigError(
            f"CDS_REPLAY_STORE_UNAVAILABLE: expected accept or refuse, got {replay_unavailable!r}"
        )

    return Settings(
        profile=profile,
        database_url=_database_url(values),
        port=_int("CDS_PORT", values.get("CDS_PORT", 8080)),
        max_body_bytes=_int(
            "CDS_MAX_BODY_BYTES", values.get("CDS_MAX_BODY_BYTES", 5 * 1024 * 1024)
        ),
        cors_origins=origins,
        site_policy_file=policy_file,
        policy=policy,
        log_level=log_level,
        # Two single-threaded workers per available core (the container's CPU limit included):
        # one waiting on the prefetch fallback (up to
        # CDS_FHIR_BUDGET_MS) leaves the core to the other (docs/benchmarks.md).
        workers=_int("CDS_WORKERS", values.get("CDS_WORKERS", 2 * available_cpus())),
        allow_anonymous=_bool("CDS_ALLOW_ANONYMOUS", values.get("CDS_ALLOW_ANONYMOUS", "0")),
        trusted_clients_file=str(values.get("CDS_TRUSTED_CLIENTS") or "").strip() or None,
        public_base_urls=_url_prefixes(
            "CDS_PUBLIC_BASE_URL", values.get("CDS_PUBLIC_BASE_URL", "")
        ),
        jwt_algorithms=_names(values.get("CDS_JWT_ALGORITHMS", "ES384,RS384")),
        jwt_max_lifetime_s=_int(
            "CDS_JWT_MAX_LIFETIME_S", values.get("CDS_JWT_MAX_LIFETIME_S", 3600), minimum=60
        ),
        fhir_allowlist=_url_prefixes("CDS_FHIR_ALLOWLIST", values.get("CDS_FHIR_ALLOWLIST", "")),
        fhir_strict=_bool("CDS_FHIR_STRICT", values.get("CDS_FHIR_STRICT", "0")),
        fhir_allow_private=_bool(
            "CDS_FHIR_ALLOW_PRIVATE", values.get("CDS_FHIR_ALLOW_PRIVATE", "0")
        ),
        fhir_budget_ms=_int("CDS_FHIR_BUDGET_MS", values.get("CDS_FHIR_BUDGET_MS", 2000)),
        fhir_connect_timeout_ms=_int(
            "CDS_FHIR_CONNECT_TIMEOUT_MS", values.get("CDS_FHIR_CONNECT_TIMEOUT_MS", 1000)
        ),
        fhir_read_timeout_ms=_int(
            "CDS_FHIR_READ_TIMEOUT_MS", values.get("CDS_FHIR_READ_TIMEOUT_MS", 2000)
        ),
        fhir_max_pages=_int("CDS_FHIR_MAX_PAGES", values.get("CDS_FHIR_MAX_PAGES", 5)),
        fhir_max_entries=_int("CDS_FHIR_MAX_ENTRIES", values.get("CDS_FHIR_MAX_ENTRIES", 1000)),
        fhir_max_bytes=_int("CDS_FHIR_MAX_BYTES", values.get("CDS_FHIR_MAX_BYTES", 5 << 20)),
        ledger_retention_days=_int(
            "CDS_LEDGER_RETENTION_DAYS", values.get("CDS_LEDGER_RETENTION_DAYS", 365), minimum=0
        ),
        feedback_retention_days=_int(
            "CDS_FEEDBACK_RETENTION_DAYS",
            values.get("CDS_FEEDBACK_RETENTION_DAYS", 365),
            minimum=0,
        ),
        threads=_int("CDS_THREADS", values.get("CDS_THREADS", 1)),
        graceful_timeout_s=_int("CDS_GRACEFUL_TIMEOUT", values.get("CDS_GRACEFUL_TIMEOUT", 30)),
        max_requests=_int("CDS_MAX_REQUESTS", values.get("CDS_MAX_REQUESTS", 10000), minimum=0),
        forwarded_allow_ips=str(values.get("CDS_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")).strip(),
        replay_store_unavailable=replay_unavailable,
        home_page=_bool("CDS_HOME_PAGE", values.get("CDS_HOME_PAGE", "1")),
        home_try_it=_bool("CDS_HOME_TRY_IT", values.get("CDS_HOME_TRY_IT", int(development))),
        home_feedback=_bool("CDS_HOME_FEEDBACK", values.get("CDS_HOME_FEEDBACK", int(development))),
        scenarios_dir=_directory("CDS_SCENARIOS_DIR", values.get("CDS_SCENARIOS_DIR")),
    )


def _database_url(values: Mapping[str, Any]) -> str:
    """``CDS_DATABASE_URL``, with the password of ``CDS_DATABASE_PASSWORD_FILE`` (a Compose or
    Kubernetes secret) put in percent-encoded: any password works, and none is in the
    environment for ``docker inspect`` to show."""
    url = str(values.get("CDS_DATABASE_URL", "sqlite:///var/cds.sqlite3")).strip()
    password_file = str(values.get("CDS_DATABASE_PASSWORD_FILE") or "").strip()
    if not password_file:
        return url
    try:
        password = Path(password_file).read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(
            f"CDS_DATABASE_PASSWORD_FILE: cannot read {password_file}: {exc.strerror}"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(f"CDS_DATABASE_PASSWORD_FILE: {password_file} is not UTF-8") from None
    if not password:
        raise ConfigError(f"CDS_DATABASE_PASSWORD_FILE: {password_file} is empty")
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres", "postgresql+psycopg") or not parts.hostname:
        raise ConfigError(
            "CDS_DATABASE_PASSWORD_FILE: needs a CDS_DATABASE_URL of the form"
            " postgresql://user@host:5432/database"
        )
    if parts.password is not None:
        raise ConfigError(
            "CDS_DATABASE_URL: holds a password and CDS_DATABASE_PASSWORD_FILE gives one;"
            " keep only the file"
        )
    if not parts.username:
        raise ConfigError("CDS_DATABASE_URL: name the user (postgresql://user@host/database)")
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{parts.username}:{quote(password, safe='')}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


def available_cpus() -> int:
    """CPUs this process may use: the affinity mask, capped by a cgroup CPU quota (a container's
    ``--cpus`` or a Kubernetes CPU limit, cgroup v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us``),
    rounded up; at least 1. ``os.cpu_count()`` sees the host's CPUs, not the container's."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, int(cpus))


CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroup_cpu_quota(root: Path = CGROUP_ROOT) -> float | None:
    """The CPU quota of this process's cgroup in CPUs (1.5 for ``--cpus 1.5``), or None when
    there is none or it cannot be read."""
    try:
        max_line = (root / "cpu.max").read_text(encoding="ascii").split()
    except (OSError, UnicodeDecodeError):
        max_line = []
    if len(max_line) == 2:  # cgroup v2: "<quota|max> <period>"
        quota, period = max_line
        return _quota(quota, period)
    for directory in (root / "cpu", root / "cpu,cpuacct", root):  # cgroup v1
        try:
            quota = (directory / "cpu.cfs_quota_us").read_text(encoding="ascii").strip()
            period = (directory / "cpu.cfs_period_us").read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            continue
        return _quota(quota, period)
    return None


def _quota(quota: str, period: str) -> float | None:
    try:
        quota_us, period_us = int(quota), int(period)
    except ValueError:  # "max": no quota
        return None
    if quota_us <= 0 or period_us <= 0:  # v1 says -1 for none
        return None
    return quota_us / period_us


def _directory(name: str, raw: Any) -> str | None:
    path = str(raw or "").strip()
    if path and not Path(path).is_dir():
        raise ConfigError(f"{name}: {path!r} is not a directory")
    return path or None


def _url_prefixes(name: str, raw: Any) -> tuple[str, ...]:
    """Comma-separated (or a YAML list of) http(s) URL prefixes, without credentials."""
    items = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
    prefixes = []
    for item in (str(i).strip() for i in items):
        if not item:
            continue
        try:
            parts = urlsplit(item)
            _ = parts.port  # raises on a bad port
        except ValueError:
            raise ConfigError(f"{name}: {item!r} is not a URL") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{name}: {item!r} is not an http(s) URL prefix")
        if parts.username is not None or parts.query or parts.fragment:
            raise ConfigError(f"{name}: {item!r} must not carry credentials, a query or a fragment")
        prefixes.append(item.rstrip("/"))
    return tuple(prefixes)


def _names(raw: Any) -> tuple[str, ...]:
    """Comma-separated (or a YAML list of) names, upper-cased; checked where they are used."""
    items = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
    return tuple(str(i).strip().upper() for i in items if str(i).strip())


#: Settings that later modules (authentication, the FHIR fallback) read themselves.
EXTRA_KEYS: set[str] = set()
