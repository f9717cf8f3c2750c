"""Address text: the C library's spelling, checked against `ipaddress` (what EVE has printed)."""

from __future__ import annotations

from ipaddress import ip_address

from hypothesis import given, settings
from hypothesis import strategies as st

from sensor.core.events import packed_text
from tests.conftest import examples

# Hextets drawn so that runs of zeros (the `::` choice), 0xffff (mapped addresses) and
# small values (a dotted tail in the C library's spelling) are common.
hextets = st.one_of(st.just(0), st.just(0xFFFF), st.integers(0, 2), st.integers(0, 0xFFFF))


@settings(max_examples=examples(3000))
@given(st.lists(hextets, min_size=8, max_size=8))
def test_ipv6_text_is_what_ipaddress_writes(words: list[int]) -> None:
    packed = b"".join(word.to_bytes(2, "big") for word in words)
    assert packed_text(packed) == str(ip_address(packed))


@given(st.binary(min_size=4, max_size=4))
def test_ipv4_text_is_what_ipaddress_writes(packed: bytes) -> None:
    assert packed_text(packed) == str(ip_address(packed))
