"""Suffix matching at label boundaries, CIDRs, allowlists and rules loading."""

from __future__ import annotations

import inspect
from ipaddress import ip_address
from pathlib import Path

import pytest
from publicsuffixlist import PublicSuffixList

from sensor.blocklist.formats import hosts
from sensor.blocklist.formats.common import BadLine, Entry
from sensor.blocklist.loader import RulesError, load_blocklist, public_suffix_test
from sensor.blocklist.matcher import fingerprint_kind


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture()
def blocklist(tmp_path: Path):
    write(tmp_path / "d.txt", "evil.example\n=exact.example\nBIG.Example.\nví-dụ.vn\n")
    write(tmp_path / "i.txt", "203.0.113.7\n198.51.100.0/24\n2001:db8:bad::/48\n10.9.0.0/16\n")
    write(tmp_path / "a.txt", "good.evil.example\n")
    write(tmp_path / "ai.txt", "198.51.100.200\n")
    rules = write(tmp_path / "rules.yaml", """
sources:
  - {name: d, path: d.txt, format: domains, campaign: "2022", severity: 1}
  - {name: i, path: i.txt, format: ips}
allowlist:
  - {name: allow, path: a.txt, format: domains}
  - {name: allow-ip, path: ai.txt, format: ips}
""")
    return load_blocklist([rules])[0]


@pytest.mark.parametrize(("name", "listed"), [
    ("evil.example", "evil.example"), ("a.b.evil.example", "evil.example"),
    ("notevil.example", None), ("evil.example.com", None), ("example", None),
    ("exact.example", "=exact.example"), ("sub.exact.example", None),
    ("big.example", "big.example"),                  # listed with capitals and a trailing dot
    ("xn--v-d-rma6749a.vn", "xn--v-d-rma6749a.vn"),        # IDN entries match their punycode
    ("good.evil.example", None), ("x.good.evil.example", None),   # allowlist wins
])
def test_domain_matching(blocklist, name: str, listed: str | None) -> None:
    indicator = blocklist.match_domain(name)
    assert (indicator.value if indicator else None) == listed


@pytest.mark.parametrize(("addr", "listed"), [
    ("203.0.113.7", "203.0.113.7"), ("203.0.113.8", None),
    ("198.51.100.1", "198.51.100.0/24"), ("198.51.101.1", None),
    ("198.51.100.200", None),                         # allowlisted inside a listed /24
    ("2001:db8:bad:1::9", "2001:db8:bad::/48"), ("2001:db8:bae::1", None),
    ("10.9.255.255", "10.9.0.0/16"),
])
def test_address_matching(blocklist, addr: str, listed: str | None) -> None:
    indicator = blocklist.match_address(ip_address(addr).packed)
    assert (indicator.value if indicator else None) == listed


def test_provenance_is_merged_not_doubled(tmp_path: Path) -> None:
    write(tmp_path / "one.txt", "evil.example\n")
    write(tmp_path / "two.txt", "0.0.0.0 evil.example\n")
    rules = write(tmp_path / "rules.yaml", """
sources:
  - {name: one, path: one.txt, format: domains, campaign: "2022", severity: 2}
  - {name: two, path: two.txt, format: hosts, severity: 1}
""")
    blocklist, report = load_blocklist([rules])
    indicator = blocklist.match_domain("x.evil.example")
    assert indicator.sources == ("one", "two") and indicator.severity == 1
    assert indicator.campaign == "2022" and len(blocklist.domains) == 1


def test_bad_lines_are_reported_with_file_and_line_and_the_rest_loads(tmp_path: Path) -> None:
    lists = write(tmp_path / "d.txt",
                  "# comment\nok.example\nbad_label-.example\ncom\n\nfine.example\n")
    blocklist, report = load_blocklist([lists])
    assert len(blocklist.domains) == 2
    assert report.warnings == [f"{lists}:3: bad label 'bad_label-'",
                               f"{lists}:4: 'com' is a single label: it would match a whole "
                               "top-level domain"]


def test_a_source_with_nothing_usable_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "empty.txt", "# nothing here\n")
    rules = write(tmp_path / "rules.yaml",
                  "sources:\n  - {name: e, path: empty.txt, format: domains}\n"
                  "  - {name: gone, path: missing.txt, format: ips}\n")
    _, report = load_blocklist([rules])
    assert report.failed
    assert report.sources[0].error.startswith("no usable entries in domains format")
    assert report.sources[1].error.startswith("cannot read: No such file")
    write(tmp_path / "rules.yaml",
          "sources:\n  - {name: e, path: empty.txt, format: domains, allow_empty: true}\n")
    assert not load_blocklist([rules])[1].failed


@pytest.mark.parametrize(("text", "message"), [
    ("sources: [{name: x}]", "sources[0]: give either 'path'"),
    ("sources: [{name: x, path: y, format: xml}]", "format 'xml' is not one of"),
    ("sources: [{name: x, path: y, format: suricata-dataset, dataset_type: url}]",
     "dataset_type 'url' is not one of"),
    ("sources: [{name: x, path: y, severity: 7}]", "'severity' must be 1"),
    ("feeds: []", "unknown key(s): feeds"),
    ("sources: [unclosed", "not valid YAML"),
])
def test_rules_file_errors_name_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    rules = write(tmp_path / "rules.yaml", text)
    with pytest.raises(RulesError, match=str(rules)) as err:
        load_blocklist([rules])
    assert message in str(err.value)


def test_hosts_format_several_names_and_local_names_skipped() -> None:
    parsed = list(hosts.parse("127.0.0.1 localhost\n0.0.0.0 a.example b.example # c\n"
                              "just-a-name.example\n", {}))
    assert parsed == [Entry(2, "domain", "a.example"), Entry(2, "domain", "b.example"),
                      BadLine(3, "expected an address followed by one or more names")]


def test_safety_guards_refuse_public_suffixes_allowlisted_names_and_wide_networks(
        tmp_path: Path) -> None:
    write(tmp_path / "d.txt",
          "gov.vn\nco.uk\nhaiphong.gov.vn\ncdn.good.example\nx.cdn.good.example\n")
    write(tmp_path / "i.txt", "10.0.0.0/7\n10.0.0.0/8\n2001:db8::/31\n2001:db8::/32\n")
    write(tmp_path / "allow.txt", "cdn.good.example\n")
    rules = write(tmp_path / "rules.yaml", """
sources:
  - {name: d, path: d.txt, format: domains}
  - {name: i, path: i.txt, format: ips}
allowlist:
  - {name: allow, path: allow.txt, format: domains}
""")
    blocklist, report = load_blocklist([rules])
    assert sorted(blocklist.domains._suffix) == ["haiphong.gov.vn"]
    assert len(blocklist.addresses) == 2
    reasons = [w.split(": ", 1)[1] for w in report.warnings]
    assert reasons == [
        "'gov.vn' is a public suffix: it would match every name under it (force: true to load "
        "it anyway)",
        "'co.uk' is a public suffix: it would match every name under it (force: true to load "
        "it anyway)",
        "'cdn.good.example' is allowlisted by allow (force: true to load it anyway)",
        "'x.cdn.good.example' is allowlisted by allow (force: true to load it anyway)",
        "10.0.0.0/7 is wider than /8 (force: true to load it anyway)",
        "2001:db8::/31 is wider than /32 (force: true to load it anyway)"]
    write(tmp_path / "rules.yaml", rules.read_text().replace("format: ips}", "format: ips, "
                                                             "force: true}"))
    assert len(load_blocklist([rules])[0].addresses) == 4


def test_the_public_suffix_shortcut_answers_as_the_package() -> None:
    """Every rule of the list, with a label or two before it and its parent, answered
    by the shortcut as by the package (wildcards `*.ck`, exceptions `!www.ck`)."""
    is_public, suffixes = public_suffix_test(), PublicSuffixList()
    assert not inspect.ismethod(is_public), "the package's rule set is gone: no shortcut"
    names = {"com", "vn", "com.vn", "gov.vn", "haiphong.gov.vn", "ck", "www.ck", "x.ck",
             "a.x.ck", "kobe.jp", "city.kobe.jp", "x.city.kobe.jp", "github.io", "x.github.io",
             "evil.example", "a.b.c.d.e.f.g"}
    for rule in suffixes._publicsuffix:
        bare = rule.removeprefix("!").removeprefix("*.")
        names.update((bare, "a." + bare, "a.b." + bare, bare.partition(".")[2] or bare))
    disagree = [name for name in sorted(names) if is_public(name) != suffixes.is_public(name)]
    assert not disagree, disagree[:10]
    assert is_public("gov.vn") and is_public("x.ck") and not is_public("www.ck")


def test_per_entry_provenance_reaches_the_indicator(tmp_path: Path) -> None:
    write(tmp_path / "c.csv", "indicator,campaign,severity,comment,first_listed\n"
                              "c2.example,2023,1,Mirai C2,2023-05-02\n")
    write(tmp_path / "z.txt", "c2.example\n")
    rules = write(tmp_path / "rules.yaml", """
sources:
  - {name: feed, path: c.csv, format: csv, campaign: "2022", severity: 3}
  - {name: plain, path: z.txt, format: domains, campaign: "2022", severity: 2}
""")
    indicator = load_blocklist([rules])[0].match_domain("c2.example")
    assert indicator == ("c2.example", "domain", ("feed", "plain"), "2023", 1, "Mirai C2",
                         "2023-05-02")


@pytest.mark.parametrize(("value", "kind"), [
    ("e7d705a3286e19ea42f587b344ee6865", "ja3"),
    ("t13d1516h2_8daaf6152771_e5627efa2ab1", "ja4"),
    ("e7d705a3286e19ea42f587b344ee686_", "ja4"),        # 32 characters, one "_"
    ("e7d705a3286e19ea42f587b344ee68651", "ja4"),       # 33
])
def test_a_fingerprint_is_ja3_by_its_md5_shape_else_ja4(value: str, kind: str) -> None:
    assert fingerprint_kind(value) == kind


def test_what_is_listed_ignores_the_allowlist_and_names_the_entry(blocklist) -> None:
    """`rules lookup`'s answer: the listing entry, even where the allowlist wins."""
    listed = blocklist.listed_domain("good.evil.example")
    assert listed is not None and (listed.value, listed.kind) == ("evil.example", "domain")
    assert blocklist.match_domain("good.evil.example") is None
    assert blocklist.listed_domain("fine.example") is None
    network = blocklist.listed_address(ip_address("198.51.100.200").packed)
    assert network is not None and (network.value, network.kind) == ("198.51.100.0/24", "cidr")
    single = blocklist.listed_address(ip_address("203.0.113.7").packed)
    assert single is not None and (single.value, single.kind) == ("203.0.113.7", "ip")
    assert blocklist.listed_address(ip_address("192.0.2.1").packed) is None


def test_a_listed_url_is_no_hit_on_an_allowlisted_host(tmp_path: Path) -> None:
    write(tmp_path / "u.txt", "http://evil.example/kit.exe\nhttp://good.example/kit.exe\n")
    write(tmp_path / "a.txt", "good.example\n")
    rules = write(tmp_path / "rules.yaml", "sources:\n  - {name: u, path: u.txt, format: mixed}\n"
                  "allowlist:\n  - {name: a, path: a.txt, format: domains}\n")
    listed = load_blocklist([rules])[0]
    found = listed.match_url("http://evil.example/kit.exe", "evil.example")
    assert found is not None and (found.value, found.kind) == (
        "http://evil.example/kit.exe", "url")
    assert listed.match_url("http://good.example/kit.exe", "good.example") is None
    assert listed.match_url("", "evil.example") is None
    assert listed.match_url("http://evil.example/other", "evil.example") is None
