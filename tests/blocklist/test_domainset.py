"""DomainSet compiled into a trie answers exactly as the dict it was built from."""

from __future__ import annotations

import pickle

from hypothesis import given, settings
from hypothesis import strategies as st

from sensor.blocklist.matcher import DomainSet

labels = st.sampled_from(["a", "b", "evil", "example", "vn", "gov", "xn--v-d", "c2", "notevil"])
names = st.lists(labels, min_size=1, max_size=5).map(".".join)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(st.lists(labels, min_size=2, max_size=4).map(".".join), st.booleans()),
                max_size=25),
       st.lists(names, min_size=1, max_size=30), st.integers(1, 4))
def test_compiled_equals_dict(entries: list[tuple[str, bool]], queries: list[str],
                              crowded_at: int) -> None:
    plain: DomainSet[str] = DomainSet()
    compiled: DomainSet[str] = DomainSet()
    for name, exact in entries:
        for domains in (plain, compiled):
            domains.add(name, f"{'=' if exact else ''}{name}", exact)
    compiled.compile(minimum=0, crowded_at=crowded_at)   # small: pairs get crowded
    assert len(plain) == len(compiled)
    filtered = compiled.matcher(lambda name, entry, value: (entry, value))
    thawed = pickle.loads(pickle.dumps(compiled)).matcher(lambda name, entry, value: (entry, value))
    for query in queries:
        expected = plain.match_entry(query)
        assert compiled.match_entry(query) == expected, query
        assert filtered(query) == expected and thawed(query) == expected, query
    for name, exact in entries:
        assert plain.get(name, exact) == compiled.get(name, exact)


def test_label_boundaries_in_the_trie() -> None:
    domains: DomainSet[int] = DomainSet()
    domains.add("evil.example", 1)
    domains.add("a.evil.example", 2)
    domains.compile(minimum=0)
    assert domains.match_entry("x.a.evil.example") == ("a.evil.example", 2)
    assert domains.match_entry("b.evil.example") == ("evil.example", 1)
    assert domains.match_entry("notevil.example") is None
    assert domains.match_entry("evil.example.com") is None


def test_any_text_can_be_asked() -> None:
    # `rules lookup` passes command-line text: undecodable bytes arrive as surrogates
    domains: DomainSet[int] = DomainSet()
    domains.add("evil.example", 1)
    domains.compile(minimum=0)
    match = domains.matcher(lambda name, entry, value: (entry, value))
    for name in ("\udcff.example", "ví-dụ.vn", "", ".", "example", "x.evil.example"):
        expected = ("evil.example", 1) if name.endswith("evil.example") else None
        assert domains.match_entry(name) == expected and match(name) == expected


def test_names_under_a_crowded_pair_are_told_apart_by_their_third_label() -> None:
    domains: DomainSet[int] = DomainSet()
    for n in range(20):
        domains.add(f"shop{n}.com.vn", n)
    domains.add("evil.example", 99)
    domains.compile(minimum=0)
    assert domains.match_entry("www.shop7.com.vn") == ("shop7.com.vn", 7)
    assert domains.match_entry("com.vn") is None and domains.match_entry("shop.com.vn") is None
    # the pair itself listed: every name under it is listed, so it is not crowded
    domains = DomainSet()
    for n in range(20):
        domains.add(f"shop{n}.com.vn", n)
    domains.add("com.vn", 100)
    domains.compile(minimum=0)
    assert domains.match_entry("anything.com.vn") == ("com.vn", 100)
