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
            "id": rule.id,
            "title": rule.title,
            "summary": rule.summary,
            "indicators": [i.code for i in sorted(rule.indicators, reverse=True)],
            "sources": [{"label": s.label, "url": s.url} for s in rule.sources],
            "settings": {key: _setting(policy, key) for key in rule.settings},
            # Site policy rules.<id>.mode: active, silent (recorded, never shown) or off.
            "mode": policy.mode_of(rule.id).value,
        }
        for rule in ALL_RULES
    ]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _value(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def markdown(policy: Policy) -> str:
    """The generated tables of the rule book (docs/rulebook.md, section 3): one row per rule,
    then one row per site-policy key with its value in effect and the rules that read it."""
    entries = catalogue(policy)
    rows = [
        "| Rule id | Title | Indicators | Site-policy keys read | Sources |",
        "|---|---|---|---|---|",
    ]
    readers: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    for entry in entries:
        for key, value in entry["settings"].items():
            readers.setdefault(key, []).append(entry["id"])
            values[key] = value
        keys = ", ".join(f"`{key}`" for key in entry["settings"]) or "none"
        sources = "<br>".join(f"[{_cell(s['label'])}]({s['url']})" for s in entry["sources"])
        rows.append(
            f"| `{entry['id']}` | {_cell(entry['title'])} | {', '.join(entry['indicators'])} "
            f"| {keys} | {sources} |"
        )
    rows += ["", "| Site-policy key | Value in effect | Read by |", "|---|---|---|"]
    for key in sorted(readers):
        rules = ", ".join(f"`{rule}`" for rule in readers[key])
        rows.append(f"| `{key}` | {_cell(_value(values[key]))} | {rules} |")
    return "\n".join(rows) + "\n"
