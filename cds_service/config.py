"""Settings: ``CDS_*`` environment variables over an optional config file, validated at start-up.

Each setting is declared once, as a field of ``Settings``: its environment name, how its text
is read and checked, its default and its help. The loader, the refusal of unknown ``CDS_``
names, the table of docs/configuration.md and ``.env.example`` all come from those fields
(``make docs`` rewrites the two files; a test fails when they are stale).

A bad value stops the service with a message that names the variable; nothing is guessed.
The optional file (``CDS_CONFIG_FILE``, YAML or JSON) holds the same names in lower case
without the prefix (``max_body_bytes: 1000000``); the environment wins.
"""

from __future__ import annotations

import json
import math
import os
import re
import textwrap
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlsplit, urlunsplit

import yaml

from cds_service.domain.policy import Policy, PolicyError


class ConfigError(ValueError):
    """A setting is wrong; the message names it."""


PROFILES = ("development", "production")
#: Where the database lives unless told otherwise: ``make run`` creates ``var/``, and so does
#: the store for this one path on a fresh clone. A directory named anywhere else must exist.
DEFAULT_DATABASE_URL = "sqlite:///var/cds.sqlite3"
POSTGRESQL_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")


# -- kinds of value: how a setting's text is read and checked, and written back -------------
class Kind(Protocol):
    @property
    def accepts(self) -> str:
        """What the setting accepts, in words (the documentation's "Accepts" column)."""

    def __call__(self, name: str, raw: Any) -> Any:
        """The value of ``raw`` (text, or a YAML value from the config file); ConfigError
        naming ``name`` when it is wrong."""

    def text(self, value: Any) -> str:
        """``value`` as an environment variable would spell it."""


@dataclass(frozen=True)
class Whole:
    minimum: int = 1

    @property
    def accepts(self) -> str:
        return f"a whole number, at least {self.minimum}"

    def __call__(self, name: str, raw: Any) -> int:
        if isinstance(raw, bool):  # YAML's true is not a number
            raise ConfigError(f"{name}: expected a whole number, got {raw!r}")
        try:
            number = int(str(raw).strip())
        except ValueError:
            raise ConfigError(f"{name}: expected a whole number, got {raw!r}") from None
        if number < self.minimum:
            raise ConfigError(f"{name}: must be at least {self.minimum}, got {number}")
        return number

    def text(self, value: Any) -> str:
        return str(value)


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


@dataclass(frozen=True)
class Flag:
    accepts: str = "`1` or `0` (also true/false, yes/no, on/off)"

    def __call__(self, name: str, raw: Any) -> bool:
        text = str(raw).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ConfigError(f"{name}: expected 1/0, true/false, yes/no, got {raw!r}")

    def text(self, value: Any) -> str:
        return "1" if value else "0"


@dataclass(frozen=True)
class Choice:
    options: tuple[str, ...]
    upper: bool = False

    @property
    def accepts(self) -> str:
        return _either([f"`{o}`" for o in self.options])

    def __call__(self, name: str, raw: Any) -> str:
        text = str(raw).strip()
        text = text.upper() if self.upper else text.lower()
        if text not in self.options:
            raise ConfigError(f"{name}: expected {_either(self.options)}, got {text!r}")
        return text

    def text(self, value: Any) -> str:
        return str(value)


@dataclass(frozen=True)
class Text:
    """Free text, stripped; ``optional``: empty means not set (None)."""

    accepts: str
    optional: bool = True

    def __call__(self, name: str, raw: Any) -> str | None:
        text = str(raw if raw is not None else "").strip()
        return (text or None) if self.optional else text

    def text(self, value: Any) -> str:
        return "" if value is None else str(value)


@dataclass(frozen=True)
class Directory:
    accepts: str = "the path of an existing directory"

    def __call__(self, name: str, raw: Any) -> str | None:
        path = str(raw or "").strip()
        if path and not Path(path).is_dir():
            raise ConfigError(f"{name}: {path!r} is not a directory")
        return path or None

    def text(self, value: Any) -> str:
        return value or ""


def _items(raw: Any) -> list[str]:
    """Comma-separated text, or a YAML list; blanks dropped."""
    items = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
    return [str(i).strip() for i in items if str(i).strip()]


class _List:
    def text(self, value: Any) -> str:
        return ",".join(value)


@dataclass(frozen=True)
class UrlPrefixes(_List):
    """http(s) URL prefixes, without credentials, a query or a fragment."""

    accepts: str = "http(s) URLs, comma-separated"

    def __call__(self, name: str, raw: Any) -> tuple[str, ...]:
        prefixes = []
        for item in _items(raw):
            try:
                parts = urlsplit(item)
                _ = parts.port  # raises on a bad port
            except ValueError:
                raise ConfigError(f"{name}: {item!r} is not a URL") from None
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(f"{name}: {item!r} is not an http(s) URL prefix")
            if parts.username is not None or parts.query or parts.fragment:
                raise ConfigError(
                    f"{name}: {item!r} must not carry credentials, a query or a fragment"
                )
            prefixes.append(item.rstrip("/"))
        return tuple(prefixes)


@dataclass(frozen=True)
class Names(_List):
    """Names, upper-cased; checked where they are used (JWT algorithms: the authenticator)."""

    accepts: str = "names, comma-separated"

    def __call__(self, name: str, raw: Any) -> tuple[str, ...]:
        return tuple(item.upper() for item in _items(raw))


@dataclass(frozen=True)
class Origins(_List):
    accepts: str = "origins (`scheme://host[:port]`) or `*`, comma-separated"

    def __call__(self, name: str, raw: Any) -> tuple[str, ...]:
        origins = tuple(_items(raw))
        for origin in origins:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ConfigError(f"{name}: {origin!r} is not an origin (scheme://host[:port])")
        return origins


@dataclass(frozen=True)
class DatabaseUrl:
    """``sqlite:///path`` (relative to the working directory) or ``sqlite:////absolute/path``,
    whose directory must exist (the default's ``var/`` excepted), or ``postgresql://...``.

    The value is never quoted back in a message: it may hold a password."""

    accepts: str = "`sqlite:///path` or `postgresql://user@host:port/database`"

    def __call__(self, name: str, raw: Any) -> str:
        url = str(raw).strip()
        scheme, separator, rest = url.partition("://")
        scheme = scheme.lower()
        if not separator or not scheme:
            raise ConfigError(
                f"{name}: not a database URL; use sqlite:///path/to/file.sqlite3 (a file"
                " relative to the working directory, sqlite:////... for an absolute path) or"
                " postgresql://user@host:5432/database"
            )
        if scheme == "sqlite":
            self._sqlite(name, url, rest)
        elif scheme in POSTGRESQL_SCHEMES:
            try:
                _ = urlsplit(url).port  # raises on a port that is not a number
            except ValueError:
                raise ConfigError(f"{name}: the PostgreSQL URL's port is not a number") from None
        else:
            shown = scheme if re.fullmatch(r"[a-z0-9+.-]{1,30}", scheme) else "?"
            raise ConfigError(
                f"{name}: unsupported database {shown!r}; use sqlite:///path or"
                " postgresql://user@host:5432/database"
            )
        return url

    @staticmethod
    def _sqlite(name: str, url: str, rest: str) -> None:
        if not rest.startswith("/"):
            raise ConfigError(
                f"{name}: a SQLite URL has three slashes and a file: sqlite:///relative/path"
                " or sqlite:////absolute/path"
            )
        file = rest[1:].partition("?")[0]
        if not file or file == ":memory:":
            raise ConfigError(
                f"{name}: name a SQLite file (an in-memory database would lose the ledger and"
                " feedback at every restart)"
            )
        if url == DEFAULT_DATABASE_URL:
            return  # var/ is created on first use (a fresh clone)
        path = Path(file)
        if path.is_dir():
            raise ConfigError(f"{name}: {path} is a directory, not a SQLite file")
        if not path.parent.is_dir():
            raise ConfigError(
                f"{name}: the SQLite database's directory {path.parent.resolve()} does not exist;"
                " create it first (a read-only container needs a volume there), or use PostgreSQL."
                " It is not created for you: a mistyped path would start an empty database"
            )

    def text(self, value: Any) -> str:
        return str(value)


def _either(options: Iterable[str]) -> str:
    """``a, b or c``."""
    words = list(options)
    return ", ".join(words[:-1]) + " or " + words[-1] if len(words) > 1 else words[0]


# -- the settings ---------------------------------------------------------------------------
SERVICE = "The service: who calls it, and where it is"
STORAGE = "Storage"
SERVING = "Serving (gunicorn, per replica)"
CONTENT = "Content"
FALLBACK = "The prefetch fallback (FHIR calls to the EHR)"

_SPEC = "cds_setting"


def setting(
    env: str,
    default: Any,
    kind: Kind,
    section: str,
    help: str,
    *,
    profile_default: Callable[[str], Any] | None = None,
    shown_default: str | None = None,
    example: str | None = None,
    active: bool = False,
) -> Any:
    """A field of ``Settings`` read from ``env`` (see ``Setting`` for the arguments)."""
    spec = {
        "env": env,
        "kind": kind,
        "section": section,
        "help": " ".join(help.split()),
        "profile_default": profile_default,
        "shown_default": shown_default,
        "example": example,
        "active": active,
    }
    return field(default=default, metadata={_SPEC: spec})


def _in_development(value: Any, otherwise: Any) -> Callable[[str], Any]:
    return lambda profile: value if profile == "development" else otherwise


@dataclass(frozen=True)
class Settings:
    # fmt: off
    profile: str = setting(
        "CDS_PROFILE", "production", Choice(PROFILES), SERVICE,
        """`development` (what `make run` uses): CORS `*`, calls without a token accepted (each
        logged), the public CDS Hooks sandbox trusted with its bundled key; says so at start-up.
        Never on a network. `production`: CORS only from `CDS_CORS_ORIGINS`; refuses to start
        without `CDS_TRUSTED_CLIENTS` unless `CDS_ALLOW_ANONYMOUS=1`.""",
    )
    public_base_urls: tuple[str, ...] = setting(
        "CDS_PUBLIC_BASE_URL", (), UrlPrefixes(), SERVICE,
        """The service's external base URL(s) as the EHR sees them (e.g.
        `https://cds.example.org/b12`); a token's `aud` must be one of them + the path called.
        Required in production with trusted clients (behind a proxy the `Host` header cannot be
        trusted).""",
        shown_default="the request's own host (development only)",
        example="http://localhost:8080", active=True,
    )
    trusted_clients_file: str | None = setting(
        "CDS_TRUSTED_CLIENTS", None, Text("the path of a YAML/JSON file"), SERVICE,
        """Trusted EHR clients (issuer, keys, `jku` allowlist, tenants, FHIR servers). Required
        in production. A syntax error is reported with its line and column.""",
        example="/etc/cds/trusted-clients.yaml",
    )
    allow_anonymous: bool = setting(
        "CDS_ALLOW_ANONYMOUS", False, Flag(), SERVICE,
        """`1`: the production profile starts without trusted clients and accepts calls without
        a token (loud warning at start-up). A token that is sent is still verified.""",
    )
    jwt_algorithms: tuple[str, ...] = setting(
        "CDS_JWT_ALGORITHMS", ("ES384", "RS384"), Names(), SERVICE,
        """Accepted JWT algorithms; `ES256`, `RS256`, `PS384` may be added. `none` and HMAC are
        refused at start-up.""",
    )
    jwt_max_lifetime_s: int = setting(
        "CDS_JWT_MAX_LIFETIME_S", 3600, Whole(60), SERVICE,
        """Longest token lifetime (`exp - iat`) and oldest `iat` accepted, in seconds
        (see [security](security.md)).""",
    )
    cors_origins: tuple[str, ...] = setting(
        "CDS_CORS_ORIGINS", (), Origins(), SERVICE,
        """Browser origins allowed by CORS (the EHR's CDS client origin).""",
        profile_default=_in_development(("*",), ()),
        shown_default="`*` in development, none in production",
    )

    database_url: str = setting(
        "CDS_DATABASE_URL", DEFAULT_DATABASE_URL, DatabaseUrl(), STORAGE,
        """SQLite (one machine; a path relative to the working directory, `sqlite:////abs/path`
        for an absolute one) or PostgreSQL (several replicas; percent-encode special characters
        of a password). The SQLite file's directory must exist, except the default's `var/`.
        The password never reaches a log.""",
    )
    database_password_file: str | None = setting(
        "CDS_DATABASE_PASSWORD_FILE", None, Text("the path of a file"), STORAGE,
        """A file holding the PostgreSQL password (a Compose or Kubernetes secret), added to
        `CDS_DATABASE_URL` percent-encoded: any password works, and none is in the
        environment.""",
        example="/run/secrets/postgres_password",
    )
    ledger_retention_days: int = setting(
        "CDS_LEDGER_RETENTION_DAYS", 365, Whole(0), STORAGE,
        """Days an issued card stays in the ledger; `0` keeps cards for ever.""",
    )
    feedback_retention_days: int = setting(
        "CDS_FEEDBACK_RETENTION_DAYS", 365, Whole(0), STORAGE,
        """Days feedback is kept after it is received; `0` keeps it for ever.""",
    )

    port: int = setting(
        "CDS_PORT", 8080, Whole(), SERVING,
        """The port `cds-service serve` listens on (`--port` overrides); the image's health
        check asks the same one.""",
    )
    workers: int = setting(
        "CDS_WORKERS", 2, Whole(), SERVING,
        """gunicorn worker processes per replica (`serve --workers` overrides): two per
        available core, so that one waiting on the prefetch fallback leaves the core to the
        other; see [benchmarks](benchmarks.md), "Worker model", and
        [deployment](deployment.md), "Sizing", for memory and database connections.""",
        profile_default=lambda _profile: 2 * available_cpus(),
        shown_default="2 x the CPUs available (the container's CPU limit included)",
    )
    threads: int = setting(
        "CDS_THREADS", 1, Whole(), SERVING,
        """Threads per worker (gthread); see [benchmarks](benchmarks.md), "Worker model".""",
    )
    graceful_timeout_s: int = setting(
        "CDS_GRACEFUL_TIMEOUT", 30, Whole(), SERVING,
        """Seconds workers may finish calls in flight after SIGTERM (a rolling update);
        Compose's `stop_grace_period` is 40 s.""",
    )
    max_requests: int = setting(
        "CDS_MAX_REQUESTS", 10000, Whole(0), SERVING,
        """Requests after which a worker is replaced (with 10 % jitter so that workers do not
        restart together); `0` never.""",
    )
    forwarded_allow_ips: str = setting(
        "CDS_FORWARDED_ALLOW_IPS", "127.0.0.1,::1",
        Text("addresses, comma-separated, or `*`", optional=False), SERVING,
        """Proxies whose `X-Forwarded-*` headers are believed (`*` when only the proxy can reach
        the service, as in Compose).""",
    )
    replay_store_unavailable: str = setting(
        "CDS_REPLAY_STORE_UNAVAILABLE", "accept", Choice(("accept", "refuse")), SERVING,
        """When the replay store does not answer within 250 ms: `accept` a token this process
        has not seen, or `refuse` with 503 + `Retry-After`
        ([the trade-off](operations-failures.md)).""",
    )
    max_body_bytes: int = setting(
        "CDS_MAX_BODY_BYTES", 5 * 1024 * 1024, Whole(), SERVING,
        """Largest accepted request body, in bytes (413 above).""",
    )
    log_level: str = setting(
        "CDS_LOG_LEVEL", "INFO", Choice(("DEBUG", "INFO", "WARNING", "ERROR"), upper=True),
        SERVING,
        """The least severe log events written; logs are JSON lines on stderr, without patient
        data or tokens.""",
    )

    site_policy_file: str | None = setting(
        "CDS_SITE_POLICY", None, Text("the path of a YAML/JSON file"), CONTENT,
        """Site policy: thresholds, windows, neurological set, formulary, rule modes
        ([rule book](rulebook.md)). Read at start-up; an error names the key, or the line and
        column of a syntax error.""",
    )
    config_file: str | None = setting(
        "CDS_CONFIG_FILE", None, Text("the path of a YAML/JSON file"), CONTENT,
        """Optional file with any of these settings in lower case without `CDS_`
        (`max_body_bytes: 1000000`); the environment wins.""",
    )
    home_page: bool = setting(
        "CDS_HOME_PAGE", True, Flag(), CONTENT,
        """`0`: no home page; `/` answers 404 (an OperationOutcome).""",
    )
    home_try_it: bool = setting(
        "CDS_HOME_TRY_IT", False, Flag(), CONTENT,
        """Try it on the home page. In production the scenario is evaluated on the server at
        its own date (the profile ignores `CDS-Evaluation-Time`), without writing the card
        ledger.""",
        profile_default=_in_development(True, False),
        shown_default="`1` in development, `0` in production",
    )
    home_feedback: bool = setting(
        "CDS_HOME_FEEDBACK", False, Flag(), CONTENT,
        """The Feedback chart (accepted / overridden per rule) on the home page.""",
        profile_default=_in_development(True, False),
        shown_default="`1` in development, `0` in production",
    )
    scenarios_dir: str | None = setting(
        "CDS_SCENARIOS_DIR", None, Directory(), CONTENT,
        """Folder of synthetic scenarios for Try it (`<slug>/scenario.json` + `request.json`).
        Synthetic data only: the page shows it to anyone.""",
        shown_default="the project's `fixtures/scenarios`",
    )

    fhir_allowlist: tuple[str, ...] = setting(
        "CDS_FHIR_ALLOWLIST", (), UrlPrefixes(), FALLBACK,
        """URL prefixes of FHIR servers the fallback may call, for example
        `https://ehr.example.org/fhir`. A trusted client's `fhir_servers` replaces it for that
        client. In development, loopback servers are allowed too.""",
    )
    fhir_allow_private: bool = setting(
        "CDS_FHIR_ALLOW_PRIVATE", False, Flag(), FALLBACK,
        """`1` allows servers on private, shared and loopback addresses (an EHR on the hospital
        network). Link-local and metadata addresses are never allowed.""",
    )
    fhir_strict: bool = setting(
        "CDS_FHIR_STRICT", False, Flag(), FALLBACK,
        """`1`: validate every prefetched resource the rules use in full with `fhir.resources`
        (R4B) and skip any that is not valid R4; slower. Off, the service reads and type-checks
        only the elements the rules use ([how FHIR input is
        read](protocol.md#how-fhir-input-is-read)).""",
    )
    fhir_budget_ms: int = setting(
        "CDS_FHIR_BUDGET_MS", 2000, Whole(), FALLBACK,
        """Total time for the fallback in one call, in milliseconds. All keys are fetched in
        parallel; the answer comes when the budget runs out.""",
    )
    fhir_connect_timeout_ms: int = setting(
        "CDS_FHIR_CONNECT_TIMEOUT_MS", 1000, Whole(), FALLBACK,
        """Connect timeout per request, in milliseconds, cut to what is left of the budget.""",
    )
    fhir_read_timeout_ms: int = setting(
        "CDS_FHIR_READ_TIMEOUT_MS", 2000, Whole(), FALLBACK,
        """Read timeout per request, in milliseconds, cut to what is left of the budget.""",
    )
    fhir_max_pages: int = setting(
        "CDS_FHIR_MAX_PAGES", 5, Whole(), FALLBACK,
        """Pages per prefetch key, the prefetched page included.""",
    )
    fhir_max_entries: int = setting(
        "CDS_FHIR_MAX_ENTRIES", 1000, Whole(), FALLBACK,
        """Resources per prefetch key.""",
    )
    fhir_max_bytes: int = setting(
        "CDS_FHIR_MAX_BYTES", 5 * 1024 * 1024, Whole(), FALLBACK,
        """Largest answer per request, in bytes. Anything longer fails its key; reading stops at
        the limit.""",
    )
    # fmt: on

    #: The site policy read from ``site_policy_file`` (the defaults without one).
    policy: Policy = field(default_factory=Policy)

    @property
    def development(self) -> bool:
        return self.profile == "development"


@dataclass(frozen=True)
class Setting:
    """One ``CDS_`` setting, as declared on its ``Settings`` field."""

    #: The ``Settings`` attribute, and the environment variable.
    attribute: str
    env: str
    #: Reads and checks the text; names what it accepts for the documentation.
    kind: Kind
    #: The value when the variable is not set (``profile_default`` decides instead, if given).
    default: Any
    #: Groups the documentation table and ``.env.example``.
    section: str
    #: One paragraph of Markdown for the documentation (plain text in ``.env.example``).
    help: str
    #: The default when it depends on the profile or the machine, from the profile.
    profile_default: Callable[[str], Any] | None
    #: How the documentation shows such a default.
    shown_default: str | None
    #: The value ``.env.example`` shows instead of the default; ``active``: not commented out.
    example: str | None
    active: bool

    def read(self, raw: Any) -> Any:
        return self.kind(self.env, raw)

    def default_for(self, profile: str) -> Any:
        return self.default if self.profile_default is None else self.profile_default(profile)

    @property
    def file_key(self) -> str:
        """Its name in ``CDS_CONFIG_FILE``."""
        return self.env.removeprefix("CDS_").lower()


def _declared() -> tuple[Setting, ...]:
    declared = tuple(
        Setting(attribute=f.name, default=f.default, **f.metadata[_SPEC])
        for f in fields(Settings)
        if _SPEC in f.metadata
    )
    envs = [s.env for s in declared]
    twice = sorted({e for e in envs if envs.count(e) > 1})
    if twice or not all(re.fullmatch(r"CDS_[A-Z][A-Z0-9_]*", e) for e in envs):
        raise RuntimeError(f"settings: environment names must be unique CDS_ names: {twice}")
    return declared


#: Every setting, in the order of the documentation.
SETTINGS: tuple[Setting, ...] = _declared()
BY_ENV: dict[str, Setting] = {s.env: s for s in SETTINGS}


# -- loading --------------------------------------------------------------------------------
def load_file(path: str | Path, what: str) -> Any:
    """A YAML or JSON document (JSON is YAML); ConfigError naming the file, and the line and
    column of a syntax error."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what}: {path} is not UTF-8 text") from None
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
    unknown = sorted(k for k in values if k not in BY_ENV)
    if unknown:
        raise ConfigError(
            f"{unknown[0]}: unknown setting (docs/configuration.md lists every setting)"
        )

    profile_setting = BY_ENV["CDS_PROFILE"]
    profile = (
        profile_setting.read(values["CDS_PROFILE"])
        if "CDS_PROFILE" in values
        else profile_setting.default
    )
    chosen: dict[str, Any] = {}
    for item in SETTINGS:
        if item.env in values:
            chosen[item.attribute] = item.read(values[item.env])
        else:
            chosen[item.attribute] = item.default_for(profile)
    chosen["database_url"] = _with_password(
        chosen["database_url"], chosen["database_password_file"]
    )
    chosen["policy"] = _policy(chosen["site_policy_file"])
    return Settings(**chosen)


def _policy(path: str | None) -> Policy:
    if not path:
        return Policy()
    try:
        return Policy.from_mapping(load_file(path, "CDS_SITE_POLICY"))
    except PolicyError as exc:
        raise ConfigError(f"CDS_SITE_POLICY ({path}): {exc}") from None


def _with_password(url: str, password_file: str | None) -> str:
    """``CDS_DATABASE_URL``, with the password of ``CDS_DATABASE_PASSWORD_FILE`` (a Compose or
    Kubernetes secret) put in percent-encoded: any password works, and none is in the
    environment for ``docker inspect`` to show."""
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
    if parts.scheme not in POSTGRESQL_SCHEMES or not parts.hostname:
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


def database_location(url: str) -> str:
    """Where ``url`` points, for a message: host, port, database and user of PostgreSQL, or the
    SQLite file; never the password."""
    scheme = url.partition("://")[0].lower()
    if scheme == "sqlite":
        file = url.partition("://")[2][1:].partition("?")[0]
        return f"SQLite database {Path(file).resolve()}" if file else "SQLite database"
    if scheme in POSTGRESQL_SCHEMES:
        try:
            parts = urlsplit(url)
            port = parts.port or 5432
        except ValueError:
            return "PostgreSQL database"
        host = parts.hostname or "the local socket"
        database = parts.path.lstrip("/") or parts.username or "(the user's)"
        user = f" as user {parts.username!r}" if parts.username else ""
        return f"PostgreSQL database {database!r} on {host}:{port}{user}"
    return "database"


def unusable_database(url: str, reason: str) -> ConfigError:
    """The start-up error when the database cannot be opened or migrated: where it is (never
    the password) and why (the storage layer's reason, already without the password)."""
    return ConfigError(f"CDS_DATABASE_URL: cannot use the {database_location(url)}: {reason}")


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


# -- the documentation written from the settings (``make docs``) --------------------------
def _sections() -> list[tuple[str, list[Setting]]]:
    grouped: dict[str, list[Setting]] = {}
    for item in SETTINGS:
        grouped.setdefault(item.section, []).append(item)
    return list(grouped.items())


def _shown_default(item: Setting) -> str:
    if item.shown_default is not None:
        return item.shown_default
    text = item.kind.text(item.default)
    return f"`{text}`" if text else "none"


def markdown() -> str:
    """The tables of docs/configuration.md: one per section."""
    out: list[str] = []
    for section, items in _sections():
        out += [
            f"### {section}",
            "",
            "| Variable | Default | Accepts | Meaning |",
            "|---|---|---|---|",
        ]
        for item in items:
            cells = [f"`{item.env}`", _shown_default(item), item.kind.accepts, item.help]
            out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        out.append("")
    return "\n".join(out)


_LINK = re.compile(r"\[([^\]]+)\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _plain(text: str) -> str:
    """Markdown help as a comment line: links to docs/ spelled out, no code marks."""
    text = _LINK.sub(lambda m: f"docs/{m[2]}" if "://" not in m[2] else m[1], text)
    return text.replace("`", "")


def env_example() -> str:
    """The settings part of ``.env.example``: every setting, its help, its default (or an
    example) on a commented line, or on a live one for the few a deployment must set."""
    out: list[str] = []
    for section, items in _sections():
        out += [f"# --- {section} ".ljust(95, "-")]
        for item in items:
            help_text = _plain(item.help)
            if item.shown_default is not None:
                help_text += f" Default: {_plain(item.shown_default)}."
            out += textwrap.wrap(help_text, width=95, initial_indent="# ", subsequent_indent="# ")
            value = item.example if item.example is not None else item.kind.text(item.default)
            out.append(f"{'' if item.active else '# '}{item.env}={value}")
        out.append("")
    return "\n".join(out)
