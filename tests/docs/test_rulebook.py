"""The rule book's generated tables are the catalogue's: documentation cannot drift from code.

Rewrite them with ``python -m tests.docs.rulebook`` (or ``make docs``) after changing a rule.
"""

from pathlib import Path

from cds_service.domain.catalogue import markdown
from cds_service.domain.policy import DEFAULT_POLICY

from .rulebook import RULEBOOK, generated_block, replace_block


def test_rulebook_rule_tables_match_the_catalogue():
    text = RULEBOOK.read_text(encoding="utf-8")
    assert generated_block(text) == markdown(
        DEFAULT_POLICY
    ), "docs/rulebook.md is stale: run `make docs` and commit the result"


def test_replacing_the_block_keeps_the_prose_around_it():
    text = "intro\n<!-- generated: rules x -->\nold\n<!-- end generated: rules -->\noutro\n"
    new = replace_block(text, "| new |\n")
    assert new.startswith("intro\n<!-- generated: rules x -->\n| new |\n<!-- end generated")
    assert new.endswith("outro\n")


def test_rulebook_is_in_the_repository():
    assert RULEBOOK.is_file() and RULEBOOK.parent == Path(__file__).resolve().parents[2] / "docs"
