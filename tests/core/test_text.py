"""The one ``clip``: a model is told how much was cut; a person's one-line view stays within its width."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from agentcore.core.text import clip


def test_short_text_is_returned_as_it_is() -> None:
    assert clip("abc", 3) == "abc"
    assert clip("a\nb", 3, one_line=True, mark="ellipsis") == "a b"


def test_count_mark_keeps_limit_characters_and_says_how_many_were_cut() -> None:
    assert clip("abcdefghij", 4) == "abcd …[6 more chars not shown]"


def test_ellipsis_mark_fits_within_limit() -> None:
    assert clip("abcdefghij", 4, mark="ellipsis") == "abc…"
    assert clip("abcdefghij", 0, mark="ellipsis") == "…"


def test_one_line_collapses_whitespace_before_measuring() -> None:
    assert clip("a  b\n\n\tc   d", 100, one_line=True) == "a b c d"
    assert clip("word " * 10, 9, one_line=True, mark="ellipsis") == "word wor…"


@given(st.text(), st.integers(min_value=1, max_value=60))
def test_ellipsis_never_passes_the_limit_and_keeps_a_prefix(text: str, limit: int) -> None:
    out = clip(text, limit, one_line=True, mark="ellipsis")
    flat = " ".join(text.split())
    assert len(out) <= limit
    assert out == flat or (out.endswith("…") and flat.startswith(out[:-1]))
    assert "\n" not in out


@given(st.text(), st.integers(min_value=0, max_value=60))
def test_count_mark_tells_exactly_how_much_is_missing(text: str, limit: int) -> None:
    out = clip(text, limit)
    if len(text) <= limit:
        assert out == text
        return
    found = re.fullmatch(r"(.*) …\[(\d+) more chars not shown\]", out, flags=re.S)
    assert found is not None
    assert found.group(1) == text[:limit] and int(found.group(2)) == len(text) - limit
