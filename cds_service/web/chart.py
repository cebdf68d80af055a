"""Accepted / overridden rates per rule as a server-rendered SVG bar chart.

The signal a CDS team retires noisy rules on: a rule whose cards are mostly overridden is
noise. One row per rule, noisiest first; each bar is the rule's issued cards, split into
accepted, overridden and no feedback. Numbers are printed beside each bar so that colour is
never the only carrier of meaning (WCAG 1.4.1), and the page repeats them in a table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Protocol


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
    rows = [Rate(r.rule_id, r.issued, r.accepted, r.overridden) for r in reports]
    return sorted(rows, key=lambda r: (-r.overridden_rate, -r.base, r.rule_id))


# Colours meet WCAG AA against white (text) and 3:1 between segments and background.
ACCEPTED = "#1a7f37"
OVERRIDDEN = "#b3261e"
NO_FEEDBACK = "#d0d7de"
TEXT = "#1f2328"

_LABEL_WIDTH = 230
_BAR_WIDTH = 300
_ROW = 30
_BAR = 18
_TOP = 34
_WIDTH = _LABEL_WIDTH + _BAR_WIDTH + 300


def _percent(rate: float) -> str:
    return f"{round(rate * 100)}%"


def _n(number: float) -> str:
    """A coordinate without noise: 230, not 230.0; 120.5 stays."""
    return f"{round(number, 2):g}"


def feedback_svg(reports: Sequence[RuleCounts]) -> str:
    """The chart as an SVG element (escaped; no script, no style attribute, no external
    reference), or an empty string when nothing was issued or fed back."""
    rows = [r for r in rates(reports) if r.base]
    if not rows:
        return ""
    height = _TOP + _ROW * len(rows) + 8
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="feedback-chart" '
        f'viewBox="0 0 {_WIDTH} {height}" width="{_WIDTH}" height="{height}" role="img" '
        f'aria-labelledby="feedback-chart-title feedback-chart-desc">',
        '<title id="feedback-chart-title">Accepted and overridden cards per rule</title>',
        '<desc id="feedback-chart-desc">'
        + escape(
            "; ".join(
                f"{r.rule_id}: {r.base} card{'s' if r.base != 1 else ''}, "
                f"{_percent(r.accepted_rate)} accepted, "
                f"{_percent(r.overridden_rate)} overridden"
                for r in rows
            )
        )
        + "</desc>",
    ]
    x = _LABEL_WIDTH
    for label, colour in (
        ("accepted", ACCEPTED),
        ("overridden", OVERRIDDEN),
        ("no feedback", NO_FEEDBACK),
    ):
        parts.append(
            f'<rect x="{x}" y="6" width="12" height="12" fill="{colour}" stroke="{TEXT}" '
            'stroke-width="0.5"/>'
        )
        parts.append(f'<text x="{x + 16}" y="16" font-size="13" fill="{TEXT}">{label}</text>')
        x += 16 + 8 * len(label) + 18
    for index, row in enumerate(rows):
        y = _TOP + index * _ROW
        accepted = _BAR_WIDTH * row.accepted_rate
        overridden = _BAR_WIDTH * row.overridden_rate
        rest = _BAR_WIDTH - accepted - overridden
        parts.append(f'<g class="feedback-row" data-rule="{escape(row.rule_id)}">')
        parts.append(
            f'<text x="{_LABEL_WIDTH - 8}" y="{y + 14}" font-size="13" text-anchor="end" '
            f'fill="{TEXT}">{escape(row.rule_id)}</text>'
        )
        segments = (
            ("accepted", ACCEPTED, _LABEL_WIDTH, accepted),
            ("overridden", OVERRIDDEN, _LABEL_WIDTH + accepted, overridden),
            ("none", NO_FEEDBACK, _LABEL_WIDTH + accepted + overridden, rest),
        )
        for name, colour, left, width in segments:
            if width > 0.005:
                parts.append(
                    f'<rect class="{name}" x="{_n(left)}" y="{y}" width="{_n(width)}" '
                    f'height="{_BAR}" fill="{colour}"/>'
                )
        parts.append(
            f'<text x="{_LABEL_WIDTH + _BAR_WIDTH + 8}" y="{y + 14}" font-size="13" '
            f'fill="{TEXT}">{_percent(row.accepted_rate)} accepted, '
            f"{_percent(row.overridden_rate)} overridden (n={row.base})</text>"
        )
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)
