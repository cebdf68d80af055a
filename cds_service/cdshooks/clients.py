"""Trusted EHR clients (``CDS_TRUSTED_CLIENTS``): who may call, with which keys.

The file (YAML or JSON, read by ``config.load_file``) is validated at start-up; an error names
the entry (``clients[2] (issuer 'https://ehr.example.org'): jwks_url: ...``)::

    clients:
      - issuer: https://ehr.example.org          # the token's iss, exactly
        jwks_url: https://ehr.example.org/jwks   # or jwks: {keys: [...]} inline (pinned)
        jku_allowlist: [https://ehr.example.org/jwks-2]  # jku values a token may carry
        tenants: [hospital-a]                    # optional: the token's tenant must be one
        fhir_servers: [https://ehr.example.org/fhir]  # optional: where the fallback may fetch
        algorithms: [RS384]                      # optional: overrides CDS_JWT_ALGORITHMS

Keys: inline ``jwks`` are pinned (nothing is ever fetched for that client; an allowlisted
``jku`` is accepted but the inline keys still decide). With ``jwks_url``, a token without
``jku`` (or with ``jku`` equal to ``jwks_url``) is checked against ``jwks_url``; a token whose
``jku`` is on ``jku_allowlist`` is checked against that URL's set. Any other ``jku`` is
rejected without being fetched (PROTOCOL.md, "Authentication", 2).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from .jwks import SUPPORTED_ALGORITHMS, JwksError, KeySet, parse_jwk_set
from .schemas import first_error

#: The public CDS Hooks sandbox (PROTOCOL.md, "Known issuers"). Its private key is public:
#: trusted by the development profile only, or when a trusted clients file names it.
SANDBOX_ISSUER = "https://sandbox.cds-hooks.org"
SANDBOX_JKU = "https://sandbox.cds-hooks.org/.well-known/jwks.json"
SANDBOX_JWKS_RESOURCE = "data/sandbox-jwks.json"

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


class TrustedClientsError(ValueError):
    """The trusted clients file is wrong; the message names the entry and the field."""


@dataclass(frozen=True)
class TrustedClient:
    issuer: str
    jwks_url: str | None = None
    #: Inline (pinned) keys, parsed at start-up; None when keys come from ``jwks_url``.
    keys: KeySet | None = None
    jku_allowlist: tuple[str, ...] = ()
    #: None: any tenant (or none). Otherwise the token's ``tenant`` must be one of these.
    tenants: tuple[str, ...] | None = None
    #: None: the global CDS_FHIR_ALLOWLIST applies. Otherwise the only fhirServer prefixes the
    #: prefetch fallback may call for this client (``()``: none).
    fhir_servers: tuple[str, ...] | None = None
    #: None: CDS_JWT_ALGORITHMS applies.
    algorithms: tuple[str, ...] | None = None

    def allows_jku(self, jku: str) -> bool:
        return jku in self.jku_allowlist or (self.jwks_url is not None and jku == self.jwks_url)


def _key_url(value: str) -> None:
    """Key sets travel over https; plain http only to this machine (a local test EHR)."""
    try:
        parts = urlsplit(value)
    except ValueError:
        raise ValidationError(f"{value!r} is not a URL") from None
    if not parts.hostname or parts.scheme not in ("http", "https"):
        raise ValidationError(f"{value!r} is not an https URL")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise ValidationError(f"{value!r}: key sets must be fetched over https")
    if parts.username is not None or parts.fragment:
        raise ValidationError(f"{value!r} must not carry credentials or a fragment")


def _fhir_prefix(value: str) -> None:
    try:
        parts = urlsplit(value)
        _ = parts.port
    except ValueError:
        raise ValidationError(f"{value!r} is not a URL") from None
    if not parts.hostname or parts.scheme not in ("http", "https"):
        raise ValidationError(f"{value!r} is not an http(s) URL prefix")
    if parts.username is not None or parts.query or parts.fragment:
        raise ValidationError(f"{value!r} must not carry credentials, a query or a fragment")


def _algorithm(value: str) -> None:
    if value not in SUPPORTED_ALGORITHMS:
        raise ValidationError(
            f"{value!r} is not accepted; choose from {', '.join(SUPPORTED_ALGORITHMS)}"
            " (never 'none' or an HMAC algorithm)"
        )


class _ClientSchema(Schema):
    class Meta:
        unknown = RAISE

    issuer = fields.String(required=True, validate=validate.Length(min=1))
    jwks_url = fields.String(validate=_key_url)
    jwks = fields.Dict()
    jku_allowlist = fields.List(fields.String(validate=_key_url), load_default=list)
    tenants = fields.List(
        fields.String(validate=validate.Length(min=1)),
        validate=validate.Length(min=1, error="list at least one tenant, or leave tenants out"),
    )
    fhir_servers = fields.List(fields.String(validate=_fhir_prefix))
    algorithms = fields.List(
        fields.String(validate=_algorithm),
        validate=validate.Length(min=1, error="list at least one algorithm, or leave it out"),
    )

    @validates_schema
    def _one_key_source(self, data: dict[str, Any], **kwargs: Any) -> None:
        if ("jwks_url" in data) == ("jwks" in data):
            raise ValidationError(
                "give exactly one of jwks_url (fetched) or jwks (an inline JWK Set)", "jwks_url"
            )


class _FileSchema(Schema):
    class Meta:
        unknown = RAISE

    clients = fields.List(fields.Raw(), required=True)


_CLIENT = _ClientSchema()
_FILE = _FileSchema()


def _where(index: int, raw: Any) -> str:
    issuer = raw.get("issuer") if isinstance(raw, Mapping) else None
    return f"clients[{index}]" + (f" (issuer {issuer!r})" if isinstance(issuer, str) else "")


def parse_trusted_clients(data: Any) -> tuple[TrustedClient, ...]:
    """``{"clients": [...]}`` -> clients, or TrustedClientsError naming the bad entry."""
    if not isinstance(data, Mapping):
        raise TrustedClientsError('expected a mapping: {"clients": [...]}')
    try:
        entries = _FILE.load(data)["clients"]
    except ValidationError as error:
        path, message = first_error(error.messages)
        raise TrustedClientsError(f"{path}: {message}") from None
    clients: list[TrustedClient] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(entries):
        where = _where(index, raw)
        if not isinstance(raw, Mapping):
            raise TrustedClientsError(f"{where}: expected a mapping")
        try:
            entry = _CLIENT.load(raw)
        except ValidationError as error:
            path, message = first_error(error.messages)
            raise TrustedClientsError(f"{where}: {path}: {message}") from None
        issuer = entry["issuer"]
        if issuer in seen:
            raise TrustedClientsError(f"{where}: issuer: already given by clients[{seen[issuer]}]")
        seen[issuer] = index
        keys = None
        if "jwks" in entry:
            try:
                keys = parse_jwk_set(entry["jwks"], strict=True)
            except JwksError as exc:
                raise TrustedClientsError(f"{where}: jwks: {exc.message}") from None
        clients.append(
            TrustedClient(
                issuer=issuer,
                jwks_url=entry.get("jwks_url"),
                keys=keys,
                jku_allowlist=tuple(entry["jku_allowlist"]),
                tenants=tuple(entry["tenants"]) if "tenants" in entry else None,
                fhir_servers=(
                    tuple(s.rstrip("/") for s in entry["fhir_servers"])
                    if "fhir_servers" in entry
                    else None
                ),
                algorithms=tuple(entry["algorithms"]) if "algorithms" in entry else None,
            )
        )
    return tuple(clients)


def sandbox_client() -> TrustedClient:
    """The public CDS Hooks sandbox with its key bundled in the package: no network needed."""
    text = resources.files("cds_service").joinpath(SANDBOX_JWKS_RESOURCE).read_text("utf-8")
    return TrustedClient(
        issuer=SANDBOX_ISSUER,
        keys=parse_jwk_set(json.loads(text), strict=True),
        jku_allowlist=(SANDBOX_JKU,),
        algorithms=("ES384",),
    )
