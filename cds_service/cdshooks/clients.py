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
        profile: epic                            # optional: standard (default) | epic | oracle
        capabilities: {rxnorm_oid: false}        # optional: one profile capability at a time
        audiences: [https://cds.example.org/cds-services]  # optional: extra accepted aud values
        jku_list_url: https://authorization.example.org/jwk  # optional: a published jku list
        link_hosts: [www.nice.org.uk]            # optional: the only hosts card links may name
        preference_codes:                        # optional: the site's orderable codes
          medications: {"317106": {system: "urn:oid:...", code: "12345", display: "..."}}
          labs: {"2132-9": {system: "urn:oid:...", code: "LAB100", display: "..."}}

A *profile* is a named set of capabilities (``PROFILES``): how cards are shaped for the
client (``cards.shape``), and how much the service bends for what it sends. ``capabilities``
sets them one by one on top of the profile. ``preference_codes`` maps an RxNorm code (the
product a medication suggestion orders) or a LOINC code (a lab suggestion) to the code the
client's order entry accepts (Epic: a preference-list record); it is separate from the site
policy's formulary, which decides *which* product the rules suggest.

Keys: inline ``jwks`` are pinned (nothing is ever fetched for that client; an allowlisted
``jku`` is accepted but the inline keys still decide). With ``jwks_url``, a token without
``jku`` (or with ``jku`` equal to ``jwks_url``) is checked against ``jwks_url``; a token whose
``jku`` is on ``jku_allowlist`` is checked against that URL's set. With ``jku_list_url`` (and
the ``oracle`` profile, whose default it is), neither key source is needed: a token's ``jku``
on the list published there is fetched as a key set (``jkulist``). Any other ``jku`` is
rejected without being fetched.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from .jwks import SUPPORTED_ALGORITHMS, JwksError, KeySet, parse_jwk_set
from .schemas import first_error

#: The public CDS Hooks sandbox (docs/protocol.md, "Known issuers"). Its private key is public:
#: trusted by the development profile only, or when a trusted clients file names it.
SANDBOX_ISSUER = "https://sandbox.cds-hooks.org"
SANDBOX_JKU = "https://sandbox.cds-hooks.org/.well-known/jwks.json"
SANDBOX_JWKS_RESOURCE = "data/sandbox-jwks.json"

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


#: Where Oracle Health publishes the jku values its CDS Hooks tokens may carry (its
#: ``cds_hooks`` page, "Service Authorization"): the ``oracle`` profile's default list.
ORACLE_JKU_LIST_URL = "https://authorization.cerner.com/jwk"


@dataclass(frozen=True)
class OrderCode:
    """A code the client's order entry accepts for one product or test."""

    system: str
    code: str
    display: str


@dataclass(frozen=True)
class Capabilities:
    """What a client can carry out, and how the service shapes its answer for it.

    ``standard`` is the CDS Hooks specification as written (every flag off)."""

    #: Every card with suggestions says ``selectionBehavior: any`` (``isRecommended`` marks
    #: the preferred option).
    selection_any: bool = False
    #: One action per suggestion: a suggestion with several actions (a replace) becomes one
    #: suggestion per action, each labelled to make sense alone.
    one_action_per_suggestion: bool = False
    #: RxNorm codings are repeated under the RxNorm OID system (urn:oid:2.16.840.1.113883.6.88).
    rxnorm_oid: bool = False
    #: ``source.topic.code`` uses letters and digits only (``topic_code``); the rule id stays
    #: in ``topic.display``.
    topic_code_alphanumeric: bool = False
    #: The client ignores dose details of a suggested order: the card says the dose must be
    #: set by hand.
    manual_doses: bool = False
    #: Lab orders are accepted only with a preference-list code: a lab suggestion without one
    #: is turned into a line asking to order the test by hand.
    lab_orders_need_preference_code: bool = False
    #: patient-view without the Patient resource answers the cards that need neither age nor
    #: sex, saying what could not be evaluated (412 only when no data at all were obtained).
    degrade_without_patient: bool = True


PROFILES: dict[str, Capabilities] = {
    "standard": Capabilities(),
    "epic": Capabilities(
        selection_any=True,
        one_action_per_suggestion=True,
        rxnorm_oid=True,
        topic_code_alphanumeric=True,
        manual_doses=True,
        lab_orders_need_preference_code=True,
    ),
    "oracle": Capabilities(),
}
STANDARD = PROFILES["standard"]
CAPABILITY_NAMES = tuple(f.name for f in dataclasses.fields(Capabilities))


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
    profile: str = "standard"
    capabilities: Capabilities = STANDARD
    #: ``aud`` values accepted besides the URL called (Epic configures one per client).
    audiences: tuple[str, ...] = ()
    #: A published list of the jku values tokens may carry (Oracle Health), fetched with the
    #: JWKS limits and cache; a jku on it is then fetched as a key set.
    jku_list_url: str | None = None
    #: None: links to any host. Otherwise the only hosts card links and source URLs may name
    #: (Oracle Health removes links it has not registered).
    link_hosts: tuple[str, ...] | None = None
    #: RxNorm code -> order code, and LOINC code -> order code (``OrderCode``).
    medication_codes: Mapping[str, OrderCode] = dataclasses.field(default_factory=dict, hash=False)
    lab_codes: Mapping[str, OrderCode] = dataclasses.field(default_factory=dict, hash=False)

    def allows_jku(self, jku: str) -> bool:
        """Statically allowed (a published jku list is checked by ``auth``)."""
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


def _audience(value: str) -> None:
    try:
        parts = urlsplit(value)
    except ValueError:
        raise ValidationError(f"{value!r} is not a URL") from None
    if not parts.hostname or parts.scheme not in ("http", "https") or parts.fragment:
        raise ValidationError(f"{value!r} is not an http(s) URL (the token's aud, exactly)")


_HOST = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*")


def _host(value: str) -> None:
    if not _HOST.fullmatch(value):
        raise ValidationError(f"{value!r} is not a host name (lower case, no scheme or path)")


class _OrderCodeSchema(Schema):
    class Meta:
        unknown = RAISE

    system = fields.String(required=True, validate=validate.Length(min=1))
    code = fields.String(required=True, validate=validate.Length(min=1))
    display = fields.String(required=True, validate=validate.Length(min=1))


class _PreferenceCodesSchema(Schema):
    class Meta:
        unknown = RAISE

    medications = fields.Dict(keys=fields.String(), values=fields.Nested(_OrderCodeSchema))
    labs = fields.Dict(keys=fields.String(), values=fields.Nested(_OrderCodeSchema))


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

    profile = fields.String(validate=validate.OneOf(sorted(PROFILES)))
    capabilities = fields.Dict(keys=fields.String(validate=validate.OneOf(CAPABILITY_NAMES)))
    audiences = fields.List(fields.String(validate=_audience))
    jku_list_url = fields.String(validate=_key_url)
    link_hosts = fields.List(fields.String(validate=_host))
    preference_codes = fields.Nested(_PreferenceCodesSchema)

    @validates_schema
    def _oracle_links(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("profile") == "oracle" and "link_hosts" not in data:
            raise ValidationError(
                "the oracle profile needs the hosts registered with Oracle Health as allowed"
                " links (link_hosts: [...], or [] for none): it removes any other link",
                "link_hosts",
            )

    @validates_schema
    def _capability_values(self, data: dict[str, Any], **kwargs: Any) -> None:
        for name, value in (data.get("capabilities") or {}).items():
            if not isinstance(value, bool):
                raise ValidationError(f"{name}: expected true or false", "capabilities")

    @validates_schema
    def _one_key_source(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "jku_list_url" in data and "jwks" in data:
            raise ValidationError(
                "a published jku list needs keys fetched from its URLs, not inline jwks",
                "jku_list_url",
            )
        listed = "jku_list_url" in data or data.get("profile") == "oracle"
        if listed and "jwks_url" not in data and "jwks" not in data:
            return  # every key set comes from the published jku list (Oracle Health)
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
                **_profile_fields(entry),
            )
        )
    return tuple(clients)


def _profile_fields(entry: Mapping[str, Any]) -> dict[str, Any]:
    profile = entry.get("profile", "standard")
    capabilities = dataclasses.replace(PROFILES[profile], **(entry.get("capabilities") or {}))
    jku_list_url = entry.get("jku_list_url")
    if jku_list_url is None and profile == "oracle" and "jwks" not in entry:
        jku_list_url = ORACLE_JKU_LIST_URL
    codes = entry.get("preference_codes") or {}
    return {
        "profile": profile,
        "capabilities": capabilities,
        "audiences": tuple(entry.get("audiences") or ()),
        "jku_list_url": jku_list_url,
        "link_hosts": tuple(entry["link_hosts"]) if "link_hosts" in entry else None,
        "medication_codes": {
            k: OrderCode(**v) for k, v in (codes.get("medications") or {}).items()
        },
        "lab_codes": {k: OrderCode(**v) for k, v in (codes.get("labs") or {}).items()},
    }


def sandbox_client() -> TrustedClient:
    """The public CDS Hooks sandbox with its key bundled in the package: no network needed."""
    text = resources.files("cds_service").joinpath(SANDBOX_JWKS_RESOURCE).read_text("utf-8")
    return TrustedClient(
        issuer=SANDBOX_ISSUER,
        keys=parse_jwk_set(json.loads(text), strict=True),
        jku_allowlist=(SANDBOX_JKU,),
        algorithms=("ES384",),
    )
