"""Each feed format: its sample under rules/samples/ parsed, with valid, edge and broken items."""

from __future__ import annotations

import json
from ipaddress import ip_network
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sensor.blocklist.formats.common import (
    _LABEL,
    ADDRESS_LIKE,
    BadLine,
    Entry,
    address_entry,
    domain_entry,
    looks_like_network,
    network_key,
    normalise_domain,
)
from sensor.blocklist.formats.registry import detect_format, parser_for
from sensor.blocklist.loader import load_blocklist
from tests.conftest import ROOT

SAMPLES = ROOT / "rules" / "samples"


def parse(format_name: str, sample: str, **options: object) -> tuple[list[Entry], list[BadLine]]:
    items = list(parser_for(format_name)((SAMPLES / sample).read_text(), options))
    return ([i for i in items if isinstance(i, Entry)],
            [i for i in items if isinstance(i, BadLine)])


def values(entries: list[Entry]) -> list[tuple[str, str]]:
    return [(e.kind, ("=" if e.exact else "*." if e.subdomains_only else "") + e.value)
            for e in entries]


def test_domains() -> None:
    entries, bad = parse("domains", "domains.txt")
    assert values(entries) == [("domain", "update-flash-player.example"),
                               ("domain", "c2-panel.example"),
                               ("domain", "=login.fake-bank.example"),
                               ("domain", "xn--v-d-c-hi-c2a77a588ydtaze.vn")]
    assert [(b.line, b.reason) for b in bad] == [(6, "bad label 'bad label!'")]


def test_ips() -> None:
    entries, bad = parse("ips", "ips.txt")
    assert values(entries) == [("ip", "203.0.113.77"), ("cidr", "198.18.250.0/24"),
                               ("cidr", "2001:db8:bad::/48")]
    assert [b.line for b in bad] == [5]


def test_hosts() -> None:
    entries, bad = parse("hosts", "hosts.txt")
    assert values(entries) == [("domain", "dropper.malware-cdn.example"),
                               ("domain", "payload.malware-cdn.example"),
                               ("domain", "tracker.adware.example")]
    assert [b.line for b in bad] == [5]


def test_csv_with_provenance_columns() -> None:
    entries, bad = parse("csv", "indicators.csv")
    assert values(entries) == [("domain", "c2.botnet-vn.example"), ("ip", "203.0.113.99"),
                               ("cidr", "198.51.100.0/25"),
                               ("url", "http://dl.malware-cdn.example/x.exe")]
    first = entries[0]
    assert (first.campaign, first.severity, first.comment, first.first_listed) == \
        ("2022", 1, "Mirai C2", "2022-08-26")
    assert [(b.line, b.reason) for b in bad] == [
        (6, "type says domain but '203.0.113.100' is a ip"),
        (7, "severity '9' is not 1, 2 or 3")]


def test_csv_named_column_missing() -> None:
    entries, bad = parse("csv", "indicators.csv", column="ioc_value")
    assert entries == [] and "no indicator column" in bad[0].reason


def test_rpz() -> None:
    entries, bad = parse("rpz", "policy.rpz")
    assert values(entries) == [("domain", "=c2-panel.example"), ("domain", "*.c2-panel.example"),
                               ("domain", "=exact-only.example"), ("ip", "203.0.113.77"),
                               ("cidr", "2001:db8:bad::/48")]
    assert [b.reason.split(" ")[0] for b in bad] == ["rpz-passthru", "rpz-nsdname"]


def test_an_rpz_wildcard_lists_the_subdomains_but_not_the_name(tmp_path: Path) -> None:
    """RPZ's `*.name` owner covers the names below `name`, not `name` itself; the
    name listed by another source as well is listed with its subdomains."""
    zone = tmp_path / "wild.rpz"
    zone.write_text("$TTL 300\n@ SOA localhost. root.localhost. 1 3600 600 86400 300\n"
                    "*.wild.example CNAME .\n")
    blocklist, _ = load_blocklist([zone])
    for name, listed in [("a.wild.example", "*.wild.example"),
                         ("b.a.wild.example", "*.wild.example"), ("wild.example", None),
                         ("notwild.example", None)]:
        indicator = blocklist.match_domain(name)
        assert (indicator and indicator.value) == listed, name
    apex = tmp_path / "apex.txt"
    apex.write_text("wild.example\n")
    blocklist, _ = load_blocklist([zone, apex])
    assert blocklist.match_domain("wild.example").value == "wild.example"
    assert blocklist.match_domain("a.wild.example").sources == ("wild", "apex")


def test_zeek_intel() -> None:
    entries, bad = parse("zeek-intel", "intel.zeek")
    assert values(entries) == [("domain", "bad.example.vn"), ("ip", "203.0.113.7"),
                               ("cidr", "198.51.100.0/24"),
                               ("url", "http://dl.malware-cdn.example/a.exe")]
    assert entries[0].comment == "C2 domain — source campaign-2022"
    assert [b.reason for b in bad] == ["Intel::FILE_HASH is not supported (domains, addresses, "
                                       "subnets, URLs)"]


def test_suricata_string_dataset_is_base64() -> None:
    entries, bad = parse("suricata-dataset", "dns-query.dataset", dataset_type="string")
    assert values(entries) == [("domain", "c2-panel.example"),
                               ("domain", "update-flash-player.example"),
                               ("domain", "xn--v-d-rma6749a.vn")]
    assert len(bad) == 1 and "base64" in bad[0].reason


def test_suricata_ip_datasets() -> None:
    entries, bad = parse("suricata-dataset", "ipv4.dataset", dataset_type="ipv4")
    assert values(entries) == [("ip", "203.0.113.77"), ("ip", "203.0.113.78")]
    assert bad[0].reason == "'2001:db8:bad::1' is not an ipv4 address"
    entries, bad = parse("suricata-dataset", "ipv4.dataset", dataset_type="ip")
    assert len(entries) == 3 and not bad


def test_misp_event() -> None:
    entries, bad = parse("misp", "misp-event.json")
    assert values(entries) == [("domain", "c2.botnet-vn.example"),
                               ("domain", "api.c2.botnet-vn.example"), ("ip", "203.0.113.50"),
                               ("ip", "203.0.113.51"), ("domain", "panel.botnet-vn.example"),
                               ("ip", "203.0.113.52"), ("domain", "object.botnet-vn.example")]
    assert entries[2].comment == "C2 node" and entries[0].comment.startswith("Chiến dịch 2022")
    assert entries[0].first_listed == "2022-08-26"
    assert [b.reason for b in bad] == ["attribute '198.51.100.23': to_ids is false",
                                       "attribute type 'md5' is not supported"]


def test_stix_bundle() -> None:
    entries, bad = parse("stix", "stix-bundle.json")
    assert values(entries) == [("domain", "c2.stix-demo.example"), ("ip", "203.0.113.61"),
                               ("ip", "2001:db8:bad::61"), ("url", "https://dl.stix-demo.example/payload.bin")]
    assert entries[0].comment == "C2 domain" and entries[1].first_listed == "2022-08-27"
    assert len(bad) == 1 and bad[0].reason.startswith("pattern not supported: [file:hashes")


def test_adblock() -> None:
    entries, bad = parse("adblock", "adblock.txt")
    assert values(entries) == [("domain", "tracker.adware.example"),
                               ("domain", "miner.cryptojack.example")]
    assert [b.line for b in bad] == [5, 6, 7]


def test_broken_json_is_one_clear_error() -> None:
    for format_name in ("misp", "stix"):
        items = list(parser_for(format_name)('{"Event": [', {}))
        assert len(items) == 1 and items[0].reason.startswith("not valid JSON")


@pytest.mark.parametrize(("sample", "expected"), [
    ("domains.txt", "domains"), ("ips.txt", "ips"), ("hosts.txt", "hosts"),
    ("indicators.csv", "csv"), ("policy.rpz", "rpz"), ("intel.zeek", "zeek-intel"),
    ("misp-event.json", "misp"), ("stix-bundle.json", "stix"), ("adblock.txt", "adblock")])
def test_format_detected_from_content(sample: str, expected: str) -> None:
    assert detect_format((SAMPLES / sample).read_text()) == expected


def test_every_sample_is_tested() -> None:
    tested = {"domains.txt", "ips.txt", "hosts.txt", "indicators.csv", "policy.rpz", "intel.zeek",
              "dns-query.dataset", "ipv4.dataset", "misp-event.json", "stix-bundle.json",
              "adblock.txt"}
    assert {p.name for p in Path(SAMPLES).iterdir()} == tested


def test_mixed_lists_and_addresses_in_a_domains_list() -> None:
    text = "evil.example\n203.0.113.5\n198.51.100.0/24\n"
    assert detect_format(text) == "mixed"
    assert values(list(parser_for("mixed")(text, {}))) == [
        ("domain", "evil.example"), ("ip", "203.0.113.5"), ("cidr", "198.51.100.0/24")]
    bad = list(parser_for("domains")(text, {}))[1]
    assert bad.reason == "'203.0.113.5' is an address: list it in an ips (or mixed) source"


@given(st.text(alphabet="ab-_0.Z", max_size=80))
def test_a_name_is_accepted_exactly_when_every_label_is(text: str) -> None:
    """normalise_domain checks a whole name with one pattern and falls back to label by
    label only to say why; the two never disagree."""
    name = text.lower().rstrip(".")
    name = name[2:] if name.startswith("*.") else name
    labels = name.split(".")
    valid = bool(name) and len(labels) >= 2 and all(_LABEL.match(label) for label in labels)
    try:
        assert normalise_domain(text) == name and valid
    except ValueError:
        assert not valid


@pytest.mark.parametrize(("text", "key"), [
    ("192.0.2.1", (bytes([192, 0, 2, 1]), 32)),
    ("192.0.2.77/24", (bytes([192, 0, 2, 0]), 24)),
    ("2001:DB8::1", (bytes.fromhex("20010db8" + "0" * 23 + "1"), 128)),
    ("2001:db8::ff/32", (bytes.fromhex("20010db8" + "0" * 24), 32)),
])
def test_network_keys_are_what_ipaddress_says(text: str, key: tuple[bytes, int]) -> None:
    assert network_key(text) == key
    network = ip_network(text, strict=False)
    assert key == (network.network_address.packed, network.prefixlen)


@pytest.mark.parametrize("text", ["01.2.3.4", "1.2.3", "256.1.1.1", "1.2.3.4/33",
                                  "1.2.3.4/٣", "fe80::1%eth0", "::/129", "1.2.3.4/"])
def test_what_inet_pton_refuses_goes_to_ipaddress(text: str) -> None:
    assert network_key(text) is None
    parsed = address_entry(1, text)
    try:
        network = ip_network(text, strict=False)
    except ValueError:
        assert isinstance(parsed, BadLine)
    else:
        assert isinstance(parsed, Entry) and parsed.key == (network.network_address.packed,
                                                            network.prefixlen)


_ADDRESS_TEXT = st.text(st.sampled_from("0123456789abcdefABCDEF.:/=-x ٣²"), max_size=45) \
    | st.ip_addresses().map(str) \
    | st.tuples(st.ip_addresses(), st.integers(0, 140)).map(lambda a: f"{a[0]}/{a[1]}") \
    | st.text()


@given(_ADDRESS_TEXT)
def test_a_domains_line_is_refused_as_an_address_exactly_when_it_is_one(text: str) -> None:
    # domain_entry asks the pattern only about text ending in a digit or with a colon
    is_network = bool(ADDRESS_LIKE.match(text)) and looks_like_network(text)
    parsed = domain_entry(1, text)
    assert (isinstance(parsed, BadLine) and "is an address" in parsed.reason) == is_network


_JSON_LEAVES = (st.none() | st.booleans() | st.integers() | st.text(max_size=6)
                | st.sampled_from(["domain", "hostname", "ip-dst", "domain|ip", "indicator",
                                   "evil.example", "192.0.2.7",
                                   "[domain-name:value = 'evil.example']"]))
_JSON_KEYS = st.sampled_from(["Event", "Attribute", "Object", "response", "objects", "type",
                              "value", "to_ids", "pattern", "comment", "info", "date", "name",
                              "valid_from"]) | st.text(max_size=4)
_JSON_DOCUMENTS = st.recursive(
    _JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_JSON_KEYS, inner, max_size=5),
    max_leaves=40)


@given(_JSON_DOCUMENTS)
def test_a_json_feed_of_any_shape_gives_entries_and_bad_lines_never_an_exception(
        document: object) -> None:
    text = json.dumps(document)
    for format_name in ("misp", "stix"):
        for item in parser_for(format_name)(text, {}):
            assert isinstance(item, Entry | BadLine)


@pytest.mark.parametrize("format_name", ["misp", "stix"])
def test_a_json_feed_nested_too_deeply_is_one_bad_line(format_name: str) -> None:
    (bad,) = parser_for(format_name)("[" * 100_000 + "]" * 100_000, {})
    assert isinstance(bad, BadLine) and "nested" in bad.reason
