"""A horizontal bar chart as SVG text, with the standard library only.

One drawing for the home page's Feedback chart (``web/chart.py``) and the audit's chart
(``audit/report.py``): a legend, then one row per item with its label, its bar (one or more
segments, each a fraction of the full width) and a note printed beside it, so that colour is
never the only carrier of meaning (WCAG 1.4.1). Every text is escaped; no script, no style
attribute, no external reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

TEXT = "#1f2328"
LABEL_WIDTH = 230
BAR_WIDTH = 300
ROW = 30
BAR = 18
TOP = 34


@dataclass(frozen=True)
class Segment:
    css_class: str
    colour: str
    fraction: float  # of the full bar width, 0..1


@dataclass(frozen=True)
class Row:
    label: str
    segments: Sequence[Segment]
    note: str
    #: data-* attributes of the row's group (``{"rule": "folate-before-b12"}``).
    data: Sequence[tuple[str, str]] = ()


def n(number: float) -> str:
    """A coordinate without noise: 230, not 230.0; 120.5 stays."""
    return f"{round(number, 2):g}"


def bar_chart(
    *,
    css_class: str,
    ident: str,
    title: str,
    description: str,
    legend: Sequence[tuple[str, str]],
    rows: Sequence[Row],
    row_class: str,
    label_width: int = LABEL_WIDTH,
    bar_width: int = BAR_WIDTH,
    note_width: int = 300,
) -> str:
    width = label_width + bar_width + note_width
    height = TOP + ROW * len(rows) + 8
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{escape(css_class)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-labelledby="{ident}-title {ident}-desc">',
        f'<title id="{ident}-title">{escape(title)}</title>',
        f'<desc id="{ident}-desc">{escape(description)}</desc>',
    ]
    x = label_width
    for label, colour in legend:
        parts.append(
            f'<rect x="{x}" y="6" width="12" height="12" fill="{colour}" stroke="{TEXT}" '
            'stroke-width="0.5"/>'
        )
        parts.append(
            f'<text x="{x + 16}" y="16" font-size="13" fill="{TEXT}">{escape(label)}</text>'
        )
        x += 16 + 8 * len(label) + 18
    for index, row in enumerate(rows):
        y = TOP + index * ROW
        data = "".join(f' data-{name}="{escape(value)}"' for name, value in row.data)
        parts.append(f'<g class="{row_class}"{data}>')
        parts.append(
            f'<text x="{label_width - 8}" y="{y + 14}" font-size="13" text-anchor="end" '
            f'fill="{TEXT}">{escape(row.label)}</text>'
        )
        left = float(label_width)
        for segment in row.segments:
            extent = bar_width * segment.fraction
            if extent > 0.005:
                parts.append(
                    f'<rect class="{segment.css_class}" x="{n(left)}" y="{y}" '
                    f'width="{n(extent)}" height="{BAR}" fill="{segment.colour}"/>'
                )
            left += extent
        parts.append(
            f'<text x="{label_width + bar_width + 8}" y="{y + 14}" font-size="13" '
            f'fill="{TEXT}">{escape(row.note)}</text>'
        )
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)
