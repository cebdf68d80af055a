"""The guidelines cards cite (docs/rulebook.md, "Sources"). Defined once."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Source:
    label: str
    url: str


NICE_NG239 = Source(
    "NICE NG239 (2024): Vitamin B12 deficiency in over 16s",
    "https://www.nice.org.uk/guidance/ng239",
)
AAFP_2025 = Source(
    "AAFP 2025: Vitamin B12 Deficiency, Common Questions and Answers",
    "https://www.aafp.org/pubs/afp/issues/2025/0900/vitamin-b12-deficiency.html",
)
AAFP_2017 = Source(
    "AAFP 2017: Vitamin B12 Deficiency, Recognition and Management",
    "https://www.aafp.org/pubs/afp/issues/2017/0915/p384.html",
)
BNF_HYDROXOCOBALAMIN = Source(
    "BNF: hydroxocobalamin",
    "https://bnf.nice.org.uk/drugs/hydroxocobalamin/",
)
CYANOCOBALAMIN_LABEL = Source(
    "US cyanocobalamin injection label",
    "https://dailymed.nlm.nih.gov/dailymed/search.cfm?query=cyanocobalamin+injection",
)
DIVINE = Source(
    "DIVINe trial (House et al., JAMA 2010;303:1603)",
    "https://doi.org/10.1001/jama.2010.490",
)
ASMBS_2016 = Source(
    "ASMBS 2016 integrated health nutritional guidelines",
    "https://doi.org/10.1016/j.soard.2016.12.018",
)
