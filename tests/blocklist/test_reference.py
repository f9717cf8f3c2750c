"""The matcher's sets against plain reference models written from their docstrings:
the longest listed network holding an address, the most specific listed suffix of a
name (exact entries first, entries listing only their subdomains), the longest listed
URL prefix; compiled or not, through `match_entry` or the streaming `matcher`."""

from __future__ import annotations

from ipaddress import ip_address, ip_network

from hypothesis import given, settings
from hypothesis import strategies as st

from sensor.blocklist.matcher import DomainSet, PrefixSet, UrlSet
from tests.conftest import examples

# -- addresses ------------------------------------------------------------------------

_v4 = st.tuples(st.sampled_from([10, 192]), st.integers(0, 2), st.integers(0, 3),
                st.integers(0, 255)).map(lambda p: f"{p[0]}.{p[1]}.{p[2]}.{p[3]}")
_v6 = st.tuples(st.integers(0, 2), st.integers(0, 3), st.integers(0, 0xFFFF)).map(
    lambda p: f"2001:db8:{p[0]}:{p[1]}::{p[2]:x}")
_network = st.one_of(
    st.tuples(_v4, st.sampled_from([8, 12, 16, 23, 24, 30, 31, 32])),
    st.tuples(_v6, st.sampled_from([32, 48, 56, 64, 127, 128])),
).map(lambda p: ip_network(f"{p[0]}/{p[1]}", strict=False))


def longest_holding(networks: dict, addr: str) -> tuple[str, int] | None:
    held = [(network.prefixlen, network) for network in networks
            if network.version == ip_address(addr).version and ip_address(addr) in network]
    if not held:
        return None
    _, network = max(held)
    text = (str(network.network_address)
            if network.prefixlen == network.max_prefixlen else str(network))
    return text, networks[network]


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(st.tuples(_network, st.integers(0, 9)), max_size=30),
       st.lists(st.one_of(_v4, _v6), min_size=1, max_size=30), st.booleans())
def test_an_address_matches_its_longest_listed_network(entries: list, addresses: list,
                                                       compiled: bool) -> None:
    networks: dict = {}
    listed: PrefixSet[int] = PrefixSet()
    for network, value in entries:
        networks[network] = value
        listed.add(network, value)
    hosts = [address for network, _ in entries for address in (
        str(network.network_address), str(network.broadcast_address))]
    if compiled:
        listed.compile(minimum=1)
    assert len(listed) == len(networks)
    for network, value in networks.items():
        assert listed.get(network) == value
    matcher = listed.matcher(lambda addr, entry, value: (entry, value))
    for address in [*addresses, *hosts]:
        expected = longest_holding(networks, address)
        packed = ip_address(address).packed
        assert listed.match_entry(packed) == expected, address
        assert listed.match(packed) == (expected[1] if expected else None)
        assert matcher(packed) == expected, address


def test_an_unlisted_prefix_length_holds_nothing() -> None:
    listed = PrefixSet.of(["10.1.0.0/16", "2001:db8::/32"], True)
    assert listed.get(ip_network("10.1.0.0/24")) is None
    assert listed.get(ip_network("10.1.0.1/32")) is None
    assert listed.get(ip_network("2001:db8::/48")) is None
    assert listed.get(ip_network("10.2.0.0/16")) is None
    assert listed.get(ip_network("10.1.0.0/16")) is True


# -- names ----------------------------------------------------------------------------

_name = st.lists(st.sampled_from(["a", "b", "evil", "ex", "vn"]), min_size=1,
                 max_size=4).map(".".join)
_entry_name = st.lists(st.sampled_from(["a", "b", "evil", "ex", "vn"]), min_size=2,
                       max_size=3).map(".".join)


def most_specific(suffix: dict, exact: dict, below: set, name: str) -> tuple | None:
    if name in exact:
        return "=" + name, exact[name]
    labels = name.split(".")
    for start in range(len(labels) - 1):
        candidate = ".".join(labels[start:])
        if candidate in suffix:
            if candidate not in below:
                return candidate, suffix[candidate]
            if start > 0:
                return "*." + candidate, suffix[candidate]
    return None


@settings(max_examples=examples(400), deadline=None)
@given(st.lists(st.tuples(_entry_name, st.integers(0, 9),
                          st.sampled_from(["name", "exact", "below"])), max_size=20),
       st.lists(_name, min_size=1, max_size=20), st.booleans())
def test_a_name_matches_its_most_specific_listing(entries: list, names: list,
                                                  compiled: bool) -> None:
    suffix: dict = {}
    exact: dict = {}
    below: set = set()
    listed: DomainSet[int] = DomainSet()
    for name, value, mode in entries:
        listed.add(name, value, exact=mode == "exact", subdomains_only=mode == "below")
        if mode == "exact":
            exact[name] = value
            continue
        if mode == "name":
            below.discard(name)
        elif name not in suffix:
            below.add(name)
        suffix[name] = value
    if compiled:
        listed.compile(minimum=1, crowded_at=2)
    assert len(listed) == len(suffix) + len(exact)
    for name, value in suffix.items():
        assert listed.get(name) == value
    for name, value in exact.items():
        assert listed.get(name, exact=True) == value
    matcher = listed.matcher(lambda name, entry, value: (entry, value))
    for name in [*names, *(n for n, _, _ in entries), *(f"x.{n}" for n, _, _ in entries)]:
        expected = most_specific(suffix, exact, below, name)
        assert listed.match_entry(name) == expected, name
        assert listed.match(name) == (expected[1] if expected else None)
        assert matcher(name) == expected, name


# -- URLs -----------------------------------------------------------------------------

_origin = st.sampled_from(["http://a.example", "http://a.example:8080", "https://b.example"])
_path = st.lists(st.sampled_from(["x", "y", "gate", "kit.exe"]), max_size=3).map(
    lambda parts: "/" + "/".join(parts))


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(st.tuples(_origin, _path, st.booleans(), st.integers(0, 9)), max_size=12),
       st.lists(st.tuples(_origin, _path), min_size=1, max_size=12))
def test_a_url_matches_itself_or_its_longest_listed_prefix(entries: list,
                                                           requests: list) -> None:
    exact: dict = {}
    prefixes: dict = {}
    listed: UrlSet[int] = UrlSet()
    for origin, path, prefix, value in entries:
        listed.add(origin + path, value, prefix=prefix)
        if prefix:
            prefixes.setdefault(origin + path, value)
            assert listed.get(origin + path, prefix=True) == prefixes[origin + path]
        else:
            exact[origin + path] = value
            assert listed.get(origin + path) == value
    assert len(listed) == len(exact) + sum(1 for _, _, p, _ in entries if p)
    for origin, path in [*requests, *((o, p) for o, p, _, _ in entries)]:
        url = origin + path
        if url in exact:
            expected = (url, exact[url])
        else:
            held = [p for p in prefixes if url.startswith(p)
                    and p.split("/", 3)[:3] == url.split("/", 3)[:3]]
            longest = max(held, key=len, default=None)
            expected = None if longest is None else (longest + "*", prefixes[longest])
        assert listed.match_entry(url) == expected, url
