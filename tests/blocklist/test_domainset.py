"""DomainSet compiled into a trie answers exactly as the dict it was built from, and
both as the rules say (suffix, `=exact` and `*.subdomains-only` entries)."""

from __future__ import annotations

import pickle

from hypothesis import given, settings
from hypothesis import strategies as st

from sensor.blocklist.matcher import DomainSet
from tests.conftest import examples

labels = st.sampled_from(["a", "b", "evil", "example", "vn", "gov", "xn--v-d", "c2", "notevil"])
names = st.lists(labels, min_size=1, max_size=5).map(".".join)


KINDS = st.sampled_from(["suffix", "exact", "subdomains"])


def reference(entries: list[tuple[str, str]], query: str) -> str | None:
    """The entry as written that lists `query`, read straight from the rules: an exact
    entry for the name itself first, else the longest listed suffix — the name itself
    only when some entry lists it with its subdomains."""
    if any(kind == "exact" and name == query for name, kind in entries):
        return "=" + query
    listed: dict[str, bool] = {}          # suffix entry → the name itself listed too
    for name, kind in entries:
        if kind != "exact":
            listed[name] = listed.get(name, False) or kind == "suffix"
    candidates = [name for name, with_name in listed.items()
                  if query.endswith("." + name) or (query == name and with_name)]
    if not candidates:
        return None
    best = max(candidates, key=len)
    return best if listed[best] else "*." + best


@settings(max_examples=examples(500), deadline=None)
@given(st.lists(st.tuples(st.lists(labels, min_size=2, max_size=4).map(".".join), KINDS),
                max_size=25),
       st.lists(names, min_size=1, max_size=30), st.integers(1, 4))
def test_compiled_equals_dict_and_the_rules(entries: list[tuple[str, str]], queries: list[str],
                                            crowded_at: int) -> None:
    plain: DomainSet[str] = DomainSet()
    compiled: DomainSet[str] = DomainSet()
    for name, kind in entries:
        for domains in (plain, compiled):
            domains.add(name, name, kind == "exact", kind == "subdomains")
    compiled.compile(minimum=0, crowded_at=crowded_at)   # small: pairs get crowded
    assert len(plain) == len(compiled)
    filtered = compiled.matcher(lambda name, entry, value: (entry, value))
    thawed = pickle.loads(pickle.dumps(compiled)).matcher(lambda name, entry, value: (entry, value))
    for query in queries:
        expected = plain.match_entry(query)
        written = reference(entries, query)
        assert (expected and expected[0]) == written, query
        assert compiled.match_entry(query) == expected, query
        assert filtered(query) == expected and thawed(query) == expected, query
    for name, kind in entries:
        assert plain.get(name, kind == "exact") == compiled.get(name, kind == "exact")


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
