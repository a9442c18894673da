"""Output ids: the direct computation is exactly RFC 4122's version 5 UUID of the parts."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from workers.core.lifecycle import _NAMESPACE, stable_id

PART = st.one_of(st.text(), st.integers(min_value=-(2**70), max_value=2**70))


@given(st.lists(PART, max_size=6))
def test_stable_id_is_uuid5_of_the_joined_parts(parts: list[str | int]) -> None:
    expected = uuid.uuid5(_NAMESPACE, "\x1f".join(str(part) for part in parts))
    assert stable_id(*parts) == str(expected)
    assert uuid.UUID(stable_id(*parts)).version == 5


def test_known_id_is_unchanged() -> None:
    # A published decision id: changing how ids are computed must never change one.
    assert stable_id("u00000001", "close_line", 1) == "c9438926-9427-5100-9b4a-0a8f04d2daba"
