"""The Feedback chart: one bar per rule, noisiest first, split into accepted / overridden /
no feedback in proportion, numbers printed beside each bar, and nothing that can run."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from cds_service.storage import RuleReport
from cds_service.web.chart import ACCEPTED, NO_FEEDBACK, OVERRIDDEN, feedback_svg, rates

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def rows(root: ET.Element) -> dict[str, ET.Element]:
    return {g.get("data-rule"): g for g in root.iter(f"{SVG}g")}


def widths(group: ET.Element) -> dict[str, float]:
    return {r.get("class"): float(r.get("width")) for r in group.iter(f"{SVG}rect")}


REPORTS = [
    RuleReport("b12-cause-workup", issued=10, accepted=8, overridden=1),
    RuleReport("b12-screening-due", issued=4, accepted=0, overridden=3),
    RuleReport("folate-before-b12", issued=5, accepted=5, overridden=0),
]


def test_nothing_issued_draws_no_chart():
    assert feedback_svg([]) == ""
    assert feedback_svg([RuleReport("folate-before-b12")]) == ""


def test_one_row_per_rule_noisiest_first():
    root = parse(feedback_svg(REPORTS))
    assert list(rows(root)) == ["b12-screening-due", "b12-cause-workup", "folate-before-b12"]
    assert [r.rule_id for r in rates(REPORTS)] == list(rows(root))


def test_bar_segments_are_in_proportion_to_the_issued_cards():
    bars = rows(parse(feedback_svg(REPORTS)))
    screening = widths(bars["b12-screening-due"])
    assert screening == {"overridden": 225.0, "none": 75.0}  # 3 of 4 overridden, 1 silent
    workup = widths(bars["b12-cause-workup"])
    assert workup == {"accepted": 240.0, "overridden": 30.0, "none": 30.0}
    assert widths(bars["folate-before-b12"]) == {"accepted": 300.0}


def test_colours_name_the_outcome_and_the_numbers_are_printed_too():
    root = parse(feedback_svg(REPORTS))
    group = rows(root)["b12-cause-workup"]
    fills = {r.get("class"): r.get("fill") for r in group.iter(f"{SVG}rect")}
    assert fills == {"accepted": ACCEPTED, "overridden": OVERRIDDEN, "none": NO_FEEDBACK}
    texts = [t.text for t in group.iter(f"{SVG}text")]
    assert texts == ["b12-cause-workup", "80% accepted, 10% overridden (n=10)"]


def test_the_chart_is_labelled_for_assistive_technology():
    root = parse(feedback_svg(REPORTS))
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "feedback-chart-title feedback-chart-desc"
    assert root.find(f"{SVG}title").text == "Accepted and overridden cards per rule"
    desc = root.find(f"{SVG}desc").text
    assert "b12-screening-due: 4 cards, 0% accepted, 75% overridden" in desc


def test_feedback_for_cards_the_ledger_never_issued_is_counted_out_of_itself():
    report = RuleReport("(unknown card)", issued=0, accepted=1, overridden=1)
    bars = rows(parse(feedback_svg([report])))
    assert widths(bars["(unknown card)"]) == {"accepted": 150.0, "overridden": 150.0}


def test_rule_ids_are_escaped_and_nothing_can_run():
    hostile = RuleReport('<script>alert(1)</script>"&', issued=2, accepted=1)
    svg = feedback_svg([hostile])
    assert "<script" not in svg
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&amp;" in svg
    root = parse(svg)  # still well-formed XML
    assert list(rows(root)) == ['<script>alert(1)</script>"&']
    for element in root.iter():
        assert not any(name.startswith("on") or name == "style" for name in element.attrib)
        assert "href" not in "".join(element.attrib)
