"""The audit's output: a CSV of counts, a JSON summary and an SVG bar chart. Counts only.

Rates are per 1,000 patients of the population and per 1,000 invocations of the hook
(patient-view: one per patient; order-sign: one per folic acid re-order).
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import cds_service.svgchart as svgchart
from cds_service.domain.policy import Policy

from .run import AuditResult
from .tally import ANY_RULE

COLUMNS = (
    "hook",
    "rule_id",
    "indicator",
    "mode",
    "patients",
    "per_1000_patients",
    "per_1000_invocations",
)
#: Indicator colours (WCAG AA against white, as the home page's card indicators).
COLOURS = {"critical": "#b3261e", "warning": "#9a6700", "info": "#0969da"}
_ORDER = {"critical": 0, "warning": 1, "info": 2}
_HOOKS = ("patient-view", "order-sign")


def _rate(count: int, base: int) -> float:
    return round(1000 * count / base, 2) if base else 0.0


def rows(result: AuditResult) -> list[dict[str, Any]]:
    tally = result.tally
    out: list[dict[str, Any]] = []
    for (hook, rule_id, indicator, mode), patients in tally.patients.items():
        out.append(
            {
                "hook": hook,
                "rule_id": rule_id,
                "indicator": indicator,
                "mode": mode,
                "patients": patients,
                "per_1000_patients": _rate(patients, tally.population),
                "per_1000_invocations": _rate(patients, tally.invocations[hook]),
            }
        )
    hook_order = {h: i for i, h in enumerate(_HOOKS)}
    out.sort(
        key=lambda r: (
            hook_order.get(r["hook"], 9),
            r["rule_id"] != ANY_RULE,
            r["mode"],
            -r["patients"],
            r["rule_id"],
            _ORDER.get(r["indicator"], 9),
        )
    )
    return out


def summary(result: AuditResult, policy: Policy) -> dict[str, Any]:
    tally = result.tally
    return {
        "as_of": result.as_of.isoformat(),
        "population": {
            "patients": tally.population,
            "invocations": dict(sorted(tally.invocations.items())),
            "input": dict(sorted((k, v) for k, v in tally.counts.items() if k != "patients")),
        },
        "rule_modes": {rid: mode.value for rid, mode in policy.rule_modes},
        "failed_rules": dict(sorted(tally.failed_rules.items())),
        "rows": rows(result),
        "run": {
            "backend": result.backend,
            "workers": result.workers,
            "partitions": result.partitions,
            "seconds": round(result.seconds, 2),
            "patients_per_s": round(result.patients_per_s, 1),
            "peak_rss_mb": result.peak_rss_mb,
        },
    }


def write_csv(result: AuditResult, path: Path) -> None:
    with open(path, "w", encoding="utf-8", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows(result))


def chart_svg(result: AuditResult) -> str:
    """One bar per hook, rule and mode: patients per 1,000, split by indicator."""
    tally = result.tally
    grouped: dict[tuple[str, str, str], dict[str, int]] = defaultdict(dict)
    for (hook, rule_id, indicator, mode), patients in tally.patients.items():
        if rule_id != ANY_RULE:
            grouped[(hook, rule_id, mode)][indicator] = patients
    if not grouped or not tally.population:
        return ""
    totals = {key: sum(v.values()) for key, v in grouped.items()}
    most = max(totals.values())
    keys = sorted(grouped, key=lambda k: (_HOOKS.index(k[0]) if k[0] in _HOOKS else 9, -totals[k]))
    chart_rows = []
    for key in keys:
        hook, rule_id, mode = key
        label = f"{rule_id} ({hook}{', silent' if mode == 'silent' else ''})"
        segments = [
            svgchart.Segment(indicator, COLOURS.get(indicator, "#57606a"), count / most)
            for indicator, count in sorted(
                grouped[key].items(), key=lambda item: _ORDER.get(item[0], 9)
            )
        ]
        per_1000 = _rate(totals[key], tally.population)
        chart_rows.append(
            svgchart.Row(
                label=label,
                segments=segments,
                note=f"{totals[key]} patient{'s' if totals[key] != 1 else ''}, "
                f"{per_1000:g} per 1,000",
                data=(("rule", rule_id), ("hook", hook), ("mode", mode)),
            )
        )
    description = "; ".join(row.label + ": " + row.note for row in chart_rows)
    return svgchart.bar_chart(
        css_class="audit-chart",
        ident="audit-chart",
        title=f"Patients with a card per rule, as of {result.as_of.date().isoformat()} "
        f"({tally.population} patients)",
        description=description,
        legend=tuple((name, colour) for name, colour in COLOURS.items()),
        rows=chart_rows,
        row_class="audit-row",
        label_width=420,
    )


def write_outputs(result: AuditResult, policy: Policy, out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "audit.csv", "json": out / "audit.json", "svg": out / "audit.svg"}
    write_csv(result, paths["csv"])
    paths["json"].write_text(json.dumps(summary(result, policy), indent=2) + "\n", "utf-8")
    svg = chart_svg(result) or (
        '<svg xmlns="http://www.w3.org/2000/svg" width="420" height="40" role="img">'
        '<title>No cards</title><text x="8" y="24" font-size="13">No rule fired.</text></svg>'
    )
    paths["svg"].write_text('<?xml version="1.0" encoding="UTF-8"?>\n' + svg + "\n", "utf-8")
    return paths
