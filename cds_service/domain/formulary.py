"""The products and tests the cards order, as the site's orderables.

Rules speak of products and tests by their default codes (RxNorm clinical drugs, LOINC). A
site maps each one to its own orderable in the site policy's ``formulary`` section::

    formulary:
      cobalamin: hydroxocobalamin            # or cyanocobalamin (the US product)
      orderables:
        hydroxocobalamin_injection:
          system: http://snomed.info/sct     # optional: the default's system otherwise
          code: "..."
          display: Hydroxocobalamin 1mg/1ml solution for injection ampoules
        total_b12: {code: "...", display: "Serum vitamin B12"}

The engine swaps the codes on every suggested order (``localise``), so every card of every
rule orders the site's product; an unmapped key keeps its default. ``docs/formulary.md`` says
which defaults were checked against which source.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from .codes import (
    LOINC,
    LOINC_ACTIVE_B12,
    LOINC_CBC,
    LOINC_DISPLAY,
    LOINC_FOLATE,
    LOINC_H_PYLORI_STOOL_AG,
    LOINC_HOMOCYSTEINE,
    LOINC_IF_ANTIBODY,
    LOINC_MMA,
    LOINC_POTASSIUM,
    LOINC_RETICULOCYTES,
    LOINC_TOTAL_B12,
    LOINC_TTG_IGA,
    RXNORM,
    RXNORM_CYANOCOBALAMIN_INJECTION,
    RXNORM_CYANOCOBALAMIN_ORAL_1000,
    RXNORM_HYDROXOCOBALAMIN_INJECTION,
)
from .findings import Finding, OrderLab, OrderMedication


class FormularyError(ValueError):
    """A formulary entry is wrong; the message names the key."""


@dataclass(frozen=True)
class Orderable:
    system: str
    code: str
    display: str


def _rx(pair: tuple[str, str]) -> Orderable:
    return Orderable(RXNORM, pair[0], pair[1])


def _lab(code: str) -> Orderable:
    return Orderable(LOINC, code, LOINC_DISPLAY[code])


#: Every product a card can order, by key, with its default code.
DEFAULT_MEDICATIONS: dict[str, Orderable] = {
    "hydroxocobalamin_injection": _rx(RXNORM_HYDROXOCOBALAMIN_INJECTION),
    "cyanocobalamin_injection": _rx(RXNORM_CYANOCOBALAMIN_INJECTION),
    "cyanocobalamin_oral_1000": _rx(RXNORM_CYANOCOBALAMIN_ORAL_1000),
}
#: Every test a card can order, by key, with its default code.
DEFAULT_TESTS: dict[str, Orderable] = {
    "total_b12": _lab(LOINC_TOTAL_B12),
    "active_b12": _lab(LOINC_ACTIVE_B12),
    "mma": _lab(LOINC_MMA),
    "homocysteine": _lab(LOINC_HOMOCYSTEINE),
    "folate": _lab(LOINC_FOLATE),
    "if_antibody": _lab(LOINC_IF_ANTIBODY),
    "potassium": _lab(LOINC_POTASSIUM),
    "reticulocytes": _lab(LOINC_RETICULOCYTES),
    "cbc": _lab(LOINC_CBC),
    "h_pylori_stool_antigen": _lab(LOINC_H_PYLORI_STOOL_AG),
    "ttg_iga": _lab(LOINC_TTG_IGA),
}
DEFAULTS: dict[str, Orderable] = {**DEFAULT_MEDICATIONS, **DEFAULT_TESTS}
_KEY_BY_MEDICATION = {o.code: key for key, o in DEFAULT_MEDICATIONS.items()}
_KEY_BY_TEST = {o.code: key for key, o in DEFAULT_TESTS.items()}


@dataclass(frozen=True)
class Orderables:
    """The site's mapping, as (key, orderable) pairs that differ from the defaults."""

    overrides: tuple[tuple[str, Orderable], ...] = ()

    def get(self, key: str) -> Orderable:
        return dict(self.overrides).get(key, DEFAULTS[key])

    def mapped(self, key: str | None) -> Orderable | None:
        """The site's orderable for ``key`` when the site maps it, else ``None``."""
        return dict(self.overrides).get(key) if key else None

    def as_dict(self) -> dict[str, dict[str, str]]:
        return {
            key: {"system": o.system, "code": o.code, "display": o.display}
            for key, o in ((k, self.get(k)) for k in DEFAULTS)
        }

    @classmethod
    def from_mapping(cls, data: Any, path: str = "formulary.orderables") -> Orderables:
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise FormularyError(f"site policy key {path!r}: expected a mapping of orderables")
        overrides = []
        for key, entry in data.items():
            if key not in DEFAULTS:
                raise FormularyError(
                    f"site policy: unknown key '{path}.{key}' (known: {sorted(DEFAULTS)})"
                )
            if not isinstance(entry, Mapping):
                raise FormularyError(f"site policy key '{path}.{key}': expected a mapping")
            unknown = set(entry) - {"system", "code", "display"}
            if unknown:
                raise FormularyError(
                    f"site policy: unknown key '{path}.{key}.{sorted(unknown)[0]}' "
                    "(known: code, display, system)"
                )
            if "code" not in entry:
                raise FormularyError(f"site policy key '{path}.{key}.code' is required")
            default = DEFAULTS[key]
            values = {}
            for field_name in ("system", "code", "display"):
                value = entry.get(field_name, getattr(default, field_name))
                if not isinstance(value, str) or not value.strip():
                    raise FormularyError(
                        f"site policy key '{path}.{key}.{field_name}': expected a non-empty text"
                    )
                values[field_name] = value.strip()
            overrides.append((key, Orderable(**values)))
        return cls(tuple(sorted(overrides)))


def localise(finding: Finding, orderables: Orderables) -> Finding:
    """The finding with every suggested order coded as the site's orderable."""
    if not orderables.overrides or not finding.suggestions:
        return finding
    return replace(
        finding,
        suggestions=tuple(
            replace(s, actions=tuple(_action(a, orderables) for a in s.actions))
            for s in finding.suggestions
        ),
    )


def _action(action: Any, orderables: Orderables) -> Any:
    if isinstance(action, OrderMedication):
        o = orderables.mapped(_KEY_BY_MEDICATION.get(action.regimen.rxnorm[0]))
        if o is None:
            return action
        regimen = replace(action.regimen, rxnorm=(o.code, o.display), system=o.system)
        return replace(action, regimen=regimen)
    if isinstance(action, OrderLab):
        o = orderables.mapped(_KEY_BY_TEST.get(action.loinc))
        if o is None:
            return action
        return replace(action, loinc=o.code, display=o.display, system=o.system)
    return action


__all__ = [
    "DEFAULTS",
    "DEFAULT_MEDICATIONS",
    "DEFAULT_TESTS",
    "FormularyError",
    "Orderable",
    "Orderables",
    "localise",
]
