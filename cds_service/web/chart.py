"""Accepted / overridden rates per rule as a server-rendered SVG bar chart.

The signal a CDS team retires noisy rules on: a rule whose cards are mostly overridden is
noise. One row per rule, noisiest first; each bar is the rule's issued cards, split into
accepted, overridden and no feedback. Numbers are printed beside each bar so that colour is
never the only carrier of meaning (WCAG 1.4.1), and the page repeats them in a table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import cds_service.svgchart as svgchart


class RuleCounts(Protocol):
    rule_id: str
    issued: int
    accepted: int
    overridden: int


@dataclass(frozen=True)
class Rate:
    rule_id: str
    issued: int
    accepted: int
    overridden: int
    #: Silent findings (recorded, never shown) and the invocations the rates are out of.
    silent: int = 0
    invocations: int = 0

    @property
    def shown_per_1000_text(self) -> str:
        return _per_1000(self.issued, self.invocations)

    @property
    def silent_per_1000_text(self) -> str:
        return _per_1000(self.silent, self.invocations)

    @property
    def base(self) -> int:
        """What the rates are out of: the cards issued (feedback can also arrive for cards
        this ledger never issued, "(unknown card)")."""
        return max(self.issued, self.accepted + self.overridden)

    @property
    def accepted_rate(self) -> float:
        return self.accepted / self.base if self.base else 0.0

    @property
    def overridden_rate(self) -> float:
        return self.overridden / self.base if self.base else 0.0


def rates(reports: Sequence[RuleCounts]) -> list[Rate]:
    """Noisiest first: highest override rate, then most cards issued, then rule id."""
    rows = [
        Rate(
            r.rule_id,
            r.issued,
            r.accepted,
            r.overridden,
            getattr(r, "silent", 0),
            getattr(r, "invocations", 0),
        )
        for r in reports
    ]
    return sorted(rows, key=lambda r: (-r.overridden_rate, -r.base, r.rule_id))


# Colours meet WCAG AA against white (text) and 3:1 between segments and background.
ACCEPTED = "#1a7f37"
OVERRIDDEN = "#b3261e"
NO_FEEDBACK = "#d0d7de"
TEXT = svgchart.TEXT


def _per_1000(count: int, invocations: int) -> str:
    return f"{1000 * count / invocations:.1f}" if invocations else "–"


def _percent(rate: float) -> str:
    return f"{round(rate * 100)}%"


def feedback_svg(reports: Sequence[RuleCounts]) -> str:
    """The chart as an SVG element (escaped; no script, no style attribute, no external
    reference), or an empty string when nothing was issued or fed back."""
    rows = [r for r in rates(reports) if r.base]
    if not rows:
        return ""
    return svgchart.bar_chart(
        css_class="feedback-chart",
        ident="feedback-chart",
        title="Accepted and overridden cards per rule",
        description="; ".join(
            f"{r.rule_id}: {r.base} card{'s' if r.base != 1 else ''}, "
            f"{_percent(r.accepted_rate)} accepted, "
            f"{_percent(r.overridden_rate)} overridden"
            for r in rows
        ),
        legend=(("accepted", ACCEPTED), ("overridden", OVERRIDDEN), ("no feedback", NO_FEEDBACK)),
        rows=[
            svgchart.Row(
                label=row.rule_id,
                segments=(
                    svgchart.Segment("accepted", ACCEPTED, row.accepted_rate),
                    svgchart.Segment("overridden", OVERRIDDEN, row.overridden_rate),
                    svgchart.Segment(
                        "none", NO_FEEDBACK, 1 - row.accepted_rate - row.overridden_rate
                    ),
                ),
                note=f"{_percent(row.accepted_rate)} accepted, "
                f"{_percent(row.overridden_rate)} overridden (n={row.base})",
                data=(("rule", row.rule_id),),
            )
            for row in rows
        ],
        row_class="feedback-row",
    )
