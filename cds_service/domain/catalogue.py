"""The knowledge base for governance review: every rule, its sources and the settings in
effect after site policy (``cds-service rules``, the home page)."""

from __future__ import annotations

from typing import Any

from .policy import Policy
from .rules import ALL_RULES


def _setting(policy: Policy, key: str) -> Any:
    section, _, name = key.partition(".")
    value = getattr(policy, section)
    if name:
        value = getattr(value, name)
    if isinstance(value, frozenset):
        return sorted(v.value for v in value)
    return getattr(value, "value", value)


def catalogue(policy: Policy) -> list[dict[str, Any]]:
    return [
        {
            "id": rule.ID,
            "title": rule.TITLE,
            "summary": (rule.__doc__ or "").strip().splitlines()[0],
            "indicators": [i.code for i in sorted(rule.INDICATORS, reverse=True)],
            "sources": [{"label": s.label, "url": s.url} for s in rule.SOURCES],
            "settings": {key: _setting(policy, key) for key in rule.SETTINGS},
            # Site policy rules.<id>.mode: active, silent (recorded, never shown) or off.
            "mode": policy.mode_of(rule.ID).value,
        }
        for rule in ALL_RULES
    ]
