"""docs/configuration.md's settings tables and .env.example are written from the settings'
declarations: neither can drift from what the service reads.

Rewrite them with ``python -m tests.docs.configuration`` (or ``make docs``) after changing a
setting.
"""

import pytest

from cds_service.config import SETTINGS, env_example, markdown

from .configuration import CONFIGURATION, ENV_EXAMPLE, generated_block, replace_block


def test_the_configuration_tables_match_the_settings():
    text = CONFIGURATION.read_text(encoding="utf-8")
    assert (
        generated_block(CONFIGURATION, text) == markdown()
    ), "docs/configuration.md is stale: run `make docs` and commit the result"


def test_env_example_matches_the_settings():
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    assert (
        generated_block(ENV_EXAMPLE, text) == env_example()
    ), ".env.example is stale: run `make docs` and commit the result"


def test_every_setting_has_a_row_and_an_env_line():
    table, env = markdown(), env_example()
    for item in SETTINGS:
        assert table.count(f"| `{item.env}` |") == 1, item.env
        assert sum(line.lstrip("# ").startswith(f"{item.env}=") for line in env.splitlines()) == 1


CONFIGURATION_SAMPLE = (
    "intro\n<!-- generated: settings x -->\nold\n<!-- end generated: settings -->\nend\n"
)
ENV_SAMPLE = (
    "# intro\n# === generated: settings x ===\nold\n# === end generated: settings ===\n# end\n"
)


@pytest.mark.parametrize(
    "path, text", [(CONFIGURATION, CONFIGURATION_SAMPLE), (ENV_EXAMPLE, ENV_SAMPLE)]
)
def test_rewriting_keeps_the_prose_around_the_block(path, text):
    new = replace_block(path, text, "new\n")
    assert "old" not in new and "\nnew\n" in new
    assert new.startswith(text.split("old")[0]) and new.endswith(text.split("old\n")[1])


def test_a_file_without_its_markers_is_reported():
    with pytest.raises(AssertionError, match="markers"):
        generated_block(CONFIGURATION, "no markers here")
