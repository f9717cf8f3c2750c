"""PrefixSet against a brute-force longest-prefix match, for random networks and addresses."""

from __future__ import annotations

import pickle
from ipaddress import ip_address, ip_network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensor.blocklist.matcher import PrefixSet
from tests.conftest import examples


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


@settings(max_examples=examples(400), deadline=None)
@given(st.sampled_from([32, 128]).flatmap(
    lambda bits: st.tuples(st.just(bits), st.lists(networks(bits), max_size=30)).flatmap(
        lambda t: st.tuples(st.just(t[0]), st.just(t[1]),
                            st.lists(near(t[0], t[1]), min_size=1, max_size=30)))))
def test_longest_prefix_match(case) -> None:
    bits, listed, probes = case
    prefixes: PrefixSet[str] = PrefixSet()
    compiled: PrefixSet[str] = PrefixSet()
    for network in listed:
        prefixes.add(network, str(network))
        compiled.add(network, str(network))
    compiled.compile(minimum=0)
    filtered = compiled.matcher(lambda addr, entry, value: value)
    for number in probes:
        address = ip_address(number) if bits == 32 else ip_address(number.to_bytes(16, "big"))
        holding = [n for n in listed if address in n]
        expected = str(max(holding, key=lambda n: n.prefixlen)) if holding else None
        assert prefixes.match(address.packed) == expected
        found = prefixes.match_entry(address.packed)
        assert (found[1] if found else None) == expected
        assert filtered(address.packed) == expected


@settings(max_examples=examples(200), deadline=None)
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
    filtered = compiled.matcher(lambda addr, entry, value: (entry, value))
    # the filter is not pickled but filled again: as from the compiled cache
    thawed = pickle.loads(pickle.dumps(compiled)).matcher(lambda addr, entry, value: (entry, value))
    for number in hosts + others:
        packed = number.to_bytes(4, "big")
        assert plain.match(packed) == compiled.match(packed)
        assert plain.match_entry(packed) == compiled.match_entry(packed) == filtered(packed) \
            == thawed(packed)
        assert plain.get(ip_network(number)) == compiled.get(ip_network(number))


@pytest.mark.parametrize("cidr", ["10.0.0.0/8", "10.128.0.0/9", "172.16.0.0/16",
                                  "172.16.16.0/20", "192.0.2.0/23",
                                  "198.51.100.128/25", "203.0.113.7/32", "0.0.0.0/0"])
def test_the_compiled_block_bits_never_hide_a_listed_address(cidr: str) -> None:
    """Compiled sets answer most misses from a filter of /24s (of /16s for networks wider
    than /16): every address of a listed network, at its edges and just outside, is
    answered as before compiling."""
    plain: PrefixSet[str] = PrefixSet()
    compiled: PrefixSet[str] = PrefixSet()
    for prefixes in (plain, compiled):
        prefixes.add(ip_network(cidr), cidr)
        for number in range(0x0B000000, 0x0B000000 + 2048, 7):     # singles in 11/8
            prefixes.add(ip_network(number), f"host {number}")
    compiled.compile(minimum=0)
    filtered = compiled.matcher(lambda addr, entry, value: (entry, value))
    network = ip_network(cidr)
    first, last = int(network.network_address), int(network.broadcast_address)
    probes = {first, last, first - 1, last + 1, (first + last) // 2, 0x0B000000 + 7,
              0x0B000000 + 8, 0x0BFFFFFF}
    for number in sorted(n for n in probes if 0 <= n < 1 << 32):
        packed = number.to_bytes(4, "big")
        assert filtered(packed) == compiled.match_entry(packed) == plain.match_entry(packed), \
            number
    with pytest.raises(AssertionError):
        compiled.add(ip_network("100.64.0.0/10"), "late")


@pytest.mark.parametrize("network6", [None, "2001:db8:bad::/48"])
def test_ipv6_addresses_through_the_compiled_matcher(network6: str | None) -> None:
    """Without IPv6 networks a compiled matcher answers an IPv6 address from the singles
    alone; with one, it walks the networks too."""
    prefixes: PrefixSet[str] = PrefixSet()
    prefixes.add(ip_network("2001:db8::7"), "single")
    prefixes.add(ip_network("203.0.113.7"), "v4")
    if network6:
        prefixes.add(ip_network(network6), "network")
    prefixes.compile(minimum=0)
    match = prefixes.matcher(lambda addr, entry, value: (entry, value))
    assert match(ip_address("2001:db8::7").packed) == ("2001:db8::7", "single")
    assert match(ip_address("2001:db8::8").packed) is None
    assert match(ip_address("2001:db8:bad::1").packed) == (
        ("2001:db8:bad::/48", "network") if network6 else None)
    assert match(ip_address("203.0.113.7").packed) == ("203.0.113.7", "v4")
