"""PrefixSet against a brute-force longest-prefix match, for random networks and addresses."""

from __future__ import annotations

from ipaddress import ip_address, ip_network

from hypothesis import given, settings
from hypothesis import strategies as st

from sensor.blocklist.matcher import PrefixSet


def networks(bits: int) -> st.SearchStrategy:
    return st.tuples(st.integers(0, (1 << bits) - 1), st.integers(1, bits)).map(
        lambda t: ip_network((t[0] >> (bits - t[1]) << (bits - t[1]), t[1])))


def near(bits: int, listed: list) -> st.SearchStrategy:
    """Addresses inside, at the edges of, or outside the listed networks."""
    edges = [int(n.network_address) for n in listed] + [int(n.broadcast_address) for n in listed]
    anywhere = st.integers(0, (1 << bits) - 1)
    if not edges:
        return anywhere
    around = st.sampled_from(edges).flatmap(
        lambda e: st.integers(max(0, e - 2), min((1 << bits) - 1, e + 2)))
    return st.one_of(anywhere, around)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([32, 128]).flatmap(
    lambda bits: st.tuples(st.just(bits), st.lists(networks(bits), max_size=30)).flatmap(
        lambda t: st.tuples(st.just(t[0]), st.just(t[1]),
                            st.lists(near(t[0], t[1]), min_size=1, max_size=30)))))
def test_longest_prefix_match(case) -> None:
    bits, listed, probes = case
    prefixes: PrefixSet[str] = PrefixSet()
    for network in listed:
        prefixes.add(network, str(network))
    for number in probes:
        address = ip_address(number) if bits == 32 else ip_address(number.to_bytes(16, "big"))
        holding = [n for n in listed if address in n]
        expected = str(max(holding, key=lambda n: n.prefixlen)) if holding else None
        assert prefixes.match(address.packed) == expected
        found = prefixes.match_entry(address.packed)
        assert (found[1] if found else None) == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, (1 << 32) - 1), max_size=40),
       st.lists(networks(32), max_size=5), st.lists(st.integers(0, (1 << 32) - 1), max_size=40))
def test_compiled_single_addresses_equal_the_dict(hosts: list[int], nets: list,
                                                  others: list[int]) -> None:
    plain: PrefixSet[str] = PrefixSet()
    compiled: PrefixSet[str] = PrefixSet()
    for prefixes in (plain, compiled):
        for number in hosts:
            prefixes.add(ip_network(number), f"host {number}")
        for network in nets:
            prefixes.add(network, str(network))
    compiled.compile(minimum=0)
    assert len(plain) == len(compiled)
    for number in hosts + others:
        packed = number.to_bytes(4, "big")
        assert plain.match(packed) == compiled.match(packed)
        assert plain.match_entry(packed) == compiled.match_entry(packed)
        assert plain.get(ip_network(number)) == compiled.get(ip_network(number))
