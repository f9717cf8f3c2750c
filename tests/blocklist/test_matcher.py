"""Suffix matching at label boundaries, CIDRs, allowlists and rules loading."""

from __future__ import annotations

from ipaddress import ip_address
from pathlib import Path

import pytest

from sensor.blocklist.formats import BadLine, Entry, detect_format, hosts
from sensor.blocklist.loader import RulesError, load_blocklist


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
    errors = [s.error.split(":")[0] for s in report.sources]
    assert errors == ["no usable entries in domains format", "cannot read"]


@pytest.mark.parametrize(("text", "message"), [
    ("sources: [{name: x}]", "sources[0]: 'path' is required"),
    ("sources: [{name: x, path: y, format: csv}]", "format 'csv' is not one of"),
    ("sources: [{name: x, path: y, severity: 7}]", "'severity' must be 1"),
    ("feeds: []", "unknown key(s): feeds"),
    ("sources: [unclosed", "not valid YAML"),
])
def test_rules_file_errors_name_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    rules = write(tmp_path / "rules.yaml", text)
    with pytest.raises(RulesError, match=str(rules)) as err:
        load_blocklist([rules])
    assert message in str(err.value)


def test_format_detection() -> None:
    assert detect_format(["0.0.0.0 a.example b.example", "127.0.0.1 c.example"]) == "hosts"
    assert detect_format(["# ips", "203.0.113.1", "198.51.100.0/24"]) == "ips"
    assert detect_format(["evil.example", "=x.example"]) == "domains"


def test_hosts_format_several_names_and_local_names_skipped() -> None:
    parsed = list(hosts.parse(["127.0.0.1 localhost", "0.0.0.0 a.example b.example # c",
                               "just-a-name.example"]))
    assert parsed == [Entry(2, "domain", "a.example"), Entry(2, "domain", "b.example"),
                      BadLine(3, "expected an address followed by one or more names")]
