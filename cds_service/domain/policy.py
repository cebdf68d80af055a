"""Site policy: every clinical number the rules use, with its default and source.

docs/rulebook.md: "Every number below is a default. Sites must be able to override thresholds and
windows in configuration without code changes; the card must then still cite the source of
the default." A site file (YAML or JSON, loaded outside this layer) is a mapping of sections::

    thresholds: {total_b12_deficient_below_ng_l: 200}
    windows: {lookback_months: 18}
    neurological_involvement: [paraesthesia, peripheral neuropathy, ...]
    formulary: cyanocobalamin            # or, with the site's orderables (domain.formulary):
    formulary: {cobalamin: hydroxocobalamin, orderables: {total_b12: {code: ..., display: ...}}}
    rules: {pregnancy-b12: {mode: silent}, b12-screening-due: {mode: "off"}}

``rules.<id>.mode`` is ``active`` (the default), ``silent`` (evaluated and recorded in the card
ledger, never returned) or ``off`` (not evaluated). Unknown sections or keys and wrong types
are errors that name the key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from .formulary import FormularyError, Orderables
from .vocabulary import DEFINITE_NEUROLOGICAL, POSSIBLE_NEUROLOGICAL, ConditionKind


class Formulary(Enum):
    """Which cobalamin the service suggests: BNF/NICE hydroxocobalamin, or the US product."""

    HYDROXOCOBALAMIN = "hydroxocobalamin"
    CYANOCOBALAMIN = "cyanocobalamin"


class RuleMode(Enum):
    """How a rule takes part (site policy ``rules.<id>.mode``)."""

    ACTIVE = "active"
    SILENT = "silent"
    OFF = "off"


class PolicyError(ValueError):
    """A site policy value is wrong; the message names the key."""


@dataclass(frozen=True)
class Thresholds:
    # NICE NG239 mass pair (ng/L = pg/mL); AAFP 2025 agrees.
    total_b12_deficient_below_ng_l: float = 180.0
    total_b12_unlikely_above_ng_l: float = 350.0
    # NICE NG239 molar pair, its own (not a conversion of the mass pair).
    total_b12_deficient_below_pmol_l: float = 133.0
    total_b12_unlikely_above_pmol_l: float = 258.0
    # NICE NG239 holotranscobalamin.
    active_b12_deficient_below_pmol_l: float = 25.0
    active_b12_unlikely_above_pmol_l: float = 70.0
    # MMA: lab upper limit first (NICE); 271 nmol/L default (seed 003 / AAFP).
    mma_upper_limit_nmol_l: float = 271.0
    # eGFR below this is impaired renal function (raises MMA; matters for cyanocobalamin).
    egfr_impaired_below: float = 60.0
    haemoglobin_low_male_g_dl: float = 13.0
    haemoglobin_low_female_g_dl: float = 12.0
    mcv_macrocytosis_above_fl: float = 100.0
    # Cyanocobalamin injection label: hypokalaemia after starting treatment.
    potassium_critical_below_mmol_l: float = 3.0
    # Folic acid above this dose counts for folate-before-b12.
    folic_acid_min_mg_per_day: float = 0.1
    # Pregnancy / pre-conception folic acid up to this dose is the exception.
    pregnancy_folic_acid_max_mg_per_day: float = 5.0
    # AAFP 2017: age over 75 is a risk factor for testing.
    age_risk_above_years: float = 75.0
    # Cyanocobalamin doses that count for cyanocobalamin-renal (DIVINe used 1 mg).
    cyanocobalamin_renal_min_ug: float = 1000.0
    # Oral dose below this with a malabsorption cause does not fit (NICE / AAFP).
    oral_min_ug_per_day_malabsorption: float = 1000.0
    # BSH 2014 (Devalia et al.): folate deficiency, judged in the reported unit.
    folate_deficient_below_ng_ml: float = 3.0
    folate_deficient_below_nmol_l: float = 7.0
    rbc_folate_deficient_below_ng_ml: float = 150.0
    rbc_folate_deficient_below_nmol_l: float = 340.0


@dataclass(frozen=True)
class Windows:
    lookback_months: int = 12
    metformin_months: int = 4
    acid_suppression_months: int = 12
    established_im_months: int = 3
    recent_b12_start_days: int = 7
    if_antibody_after_injection_days: int = 14
    im_max_interval_months: int = 3
    # After a finished course, serum B12 stays raised: results inside this window are not
    # diagnostic (NICE NG239: take samples before replacement).
    b12_washout_months: int = 3
    # The neurological loading order (alternate days "until no further improvement") is
    # bounded: boundsDuration of this many weeks, with a review then (an order with no end
    # could be scheduled forever by an EHR).
    neuro_loading_review_weeks: int = 3


@dataclass(frozen=True)
class Policy:
    thresholds: Thresholds = field(default_factory=Thresholds)
    windows: Windows = field(default_factory=Windows)
    neurological_involvement: frozenset[ConditionKind] = (
        DEFINITE_NEUROLOGICAL | POSSIBLE_NEUROLOGICAL
    )
    formulary: Formulary = Formulary.HYDROXOCOBALAMIN
    #: The site's codes for the products and tests the cards order (defaults otherwise).
    orderables: Orderables = field(default_factory=Orderables)
    #: (rule id, mode) for every rule whose mode is not the default (active).
    rule_modes: tuple[tuple[str, RuleMode], ...] = ()

    def mode_of(self, rule_id: str) -> RuleMode:
        for rid, mode in self.rule_modes:
            if rid == rule_id:
                return mode
        return RuleMode.ACTIVE

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> Policy:
        """Defaults overridden by a site mapping; raises PolicyError naming the bad key."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise PolicyError("site policy: expected a mapping of sections at the top level")
        known = {"thresholds", "windows", "neurological_involvement", "formulary", "rules"}
        for key in data:
            if key not in known:
                raise PolicyError(f"site policy: unknown section {key!r} (known: {sorted(known)})")
        thresholds = _override(Thresholds(), data.get("thresholds"), "thresholds")
        windows = _override(Windows(), data.get("windows"), "windows")
        neuro = cls.neurological_involvement
        if "neurological_involvement" in data:
            neuro = _condition_set(data["neurological_involvement"], "neurological_involvement")
        formulary, orderables = _formulary(data.get("formulary"))
        policy = cls(
            thresholds, windows, neuro, formulary, orderables, _rule_modes(data.get("rules"))
        )
        policy.check()
        return policy

    def check(self) -> None:
        t = self.thresholds
        pairs = (
            ("total_b12_deficient_below_ng_l", "total_b12_unlikely_above_ng_l"),
            ("total_b12_deficient_below_pmol_l", "total_b12_unlikely_above_pmol_l"),
            ("active_b12_deficient_below_pmol_l", "active_b12_unlikely_above_pmol_l"),
        )
        for low, high in pairs:
            if getattr(t, low) > getattr(t, high):
                raise PolicyError(f"site policy key 'thresholds.{low}' must not exceed {high}")
        if self.windows.neuro_loading_review_weeks < 1:
            raise PolicyError(
                "site policy key 'windows.neuro_loading_review_weeks' must be at least 1: the "
                "neurological loading order needs an end"
            )

    def as_dict(self) -> dict[str, Any]:
        """What is in effect, for governance listings (``cds-service rules``)."""
        return {
            "thresholds": dataclasses.asdict(self.thresholds),
            "windows": dataclasses.asdict(self.windows),
            "neurological_involvement": sorted(k.value for k in self.neurological_involvement),
            "formulary": {
                "cobalamin": self.formulary.value,
                "orderables": self.orderables.as_dict(),
            },
            "rules": {rid: {"mode": mode.value} for rid, mode in self.rule_modes},
        }


def _formulary(data: Any) -> tuple[Formulary, Orderables]:
    """``formulary: cyanocobalamin`` (the product choice alone), or a mapping with
    ``cobalamin`` and the site's ``orderables``."""
    if data is None:
        return Formulary.HYDROXOCOBALAMIN, Orderables()
    if isinstance(data, Mapping):
        unknown = set(data) - {"cobalamin", "orderables"}
        if unknown:
            raise PolicyError(
                f"site policy: unknown key 'formulary.{sorted(unknown)[0]}' "
                "(known: cobalamin, orderables)"
            )
        choice, key = data.get("cobalamin", Formulary.HYDROXOCOBALAMIN.value), "formulary.cobalamin"
        try:
            orderables = Orderables.from_mapping(data.get("orderables"))
        except FormularyError as exc:
            raise PolicyError(str(exc)) from None
    else:
        choice, key, orderables = data, "formulary", Orderables()
    try:
        return Formulary(choice), orderables
    except ValueError:
        allowed = [f.value for f in Formulary]
        raise PolicyError(f"site policy key {key!r}: {choice!r} is not one of {allowed}") from None


def _override(defaults: Any, data: Any, section: str) -> Any:
    if data is None:
        return defaults
    if not isinstance(data, Mapping):
        raise PolicyError(f"site policy key {section!r}: expected a mapping")
    types = {f.name: f.type for f in dataclasses.fields(defaults)}
    changes: dict[str, Any] = {}
    for key, value in data.items():
        if key not in types:
            raise PolicyError(f"site policy: unknown key '{section}.{key}'")
        wants_int = types[key] in (int, "int")
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if wants_int:
            ok = ok and float(value).is_integer()
        if not ok or value < 0 or value != value or value == float("inf"):
            kind = "a whole number" if wants_int else "a number"
            raise PolicyError(
                f"site policy key '{section}.{key}': expected {kind} >= 0, got {value!r}"
            )
        changes[key] = int(value) if wants_int else float(value)
    return dataclasses.replace(defaults, **changes)


def _condition_set(data: Any, key: str) -> frozenset[ConditionKind]:
    if not isinstance(data, list) or not all(isinstance(item, str) for item in data):
        raise PolicyError(f"site policy key {key!r}: expected a list of condition names")
    by_name = {kind.value.lower(): kind for kind in ConditionKind}
    by_name.update({kind.name.lower(): kind for kind in ConditionKind})
    allowed = DEFINITE_NEUROLOGICAL | POSSIBLE_NEUROLOGICAL
    kinds = set()
    for item in data:
        kind = by_name.get(item.strip().lower())
        if kind is None or kind not in allowed:
            names = sorted(k.value for k in allowed)
            raise PolicyError(f"site policy key {key!r}: {item!r} is not one of {names}")
        kinds.add(kind)
    return frozenset(kinds)


def _rule_modes(data: Any) -> tuple[tuple[str, RuleMode], ...]:
    """``rules: {<rule id>: {mode: active | silent | off}}``; unknown ids and keys are errors."""
    if data is None:
        return ()
    if not isinstance(data, Mapping):
        raise PolicyError("site policy key 'rules': expected a mapping of rule ids")
    from .rules import ALL_RULES  # here: the rules import this module

    known = {rule.id for rule in ALL_RULES}
    modes = []
    for rule_id, entry in data.items():
        if rule_id not in known:
            raise PolicyError(f"site policy: unknown rule 'rules.{rule_id}'")
        if not isinstance(entry, Mapping):
            raise PolicyError(f"site policy key 'rules.{rule_id}': expected a mapping")
        for key in entry:
            if key != "mode":
                raise PolicyError(f"site policy: unknown key 'rules.{rule_id}.{key}'")
        value = entry.get("mode", RuleMode.ACTIVE.value)
        if value is False:
            value = RuleMode.OFF.value  # YAML 1.1 reads an unquoted ``off`` as false
        try:
            mode = RuleMode(value)
        except ValueError:
            allowed = [m.value for m in RuleMode]
            raise PolicyError(
                f"site policy key 'rules.{rule_id}.mode': {value!r} " f"is not one of {allowed}"
            ) from None
        if mode is not RuleMode.ACTIVE:
            modes.append((rule_id, mode))
    return tuple(sorted(modes))


DEFAULT_POLICY = Policy()
