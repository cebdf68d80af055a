"""The card text helpers the rules share."""

import pytest

from cds_service.domain.cardtext import join_words


@pytest.mark.parametrize(
    ("words", "text"),
    [
        (["folate"], "folate"),
        (["a blood count", "folate"], "a blood count and folate"),
        (["B12", "a blood count", "folate"], "B12, a blood count and folate"),
    ],
)
def test_join_words_lists_without_a_serial_comma(words: list[str], text: str) -> None:
    assert join_words(words) == text
