"""DNS wire format: names, compression, records, and what malformed input becomes."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.all import DNS, DNSQR, DNSRR, raw

from sensor.core.decode import dns
from sensor.core.decode.dns import DnsFormatError, decode_dns, read_name
from sensor.core.events import DnsMessage
from tests.conftest import examples


def header(flags: int = 0x0100, questions: int = 1, answers: int = 0) -> bytes:
    return struct.pack("!HHHHHH", 7, flags, questions, answers, 0, 0)


def decode(wire: bytes):
    return decode_dns(wire, 0, len(wire))


def test_query_name_lowercased_without_trailing_dot() -> None:
    message = decode(raw(DNS(id=9, rd=1, qd=[DNSQR(qname="WWW.Evil.Example.", qtype="AAAA")])))
    assert isinstance(message, DnsMessage)
    assert [(q.name, q.rrtype) for q in message.questions] == [("www.evil.example", 28)]
    assert not message.is_response and message.id == 9


def test_answers_a_aaaa_cname_mx_ns_ptr_txt() -> None:
    answers = [DNSRR(rrname="a.example", type="CNAME", rdata="b.example", ttl=30),
               DNSRR(rrname="b.example", type="A", rdata="203.0.113.5", ttl=31),
               DNSRR(rrname="b.example", type="AAAA", rdata="2001:db8::5", ttl=32),
               DNSRR(rrname="b.example", type="MX", rdata=b"\x00\x0a\x04mail\x07example\x00"),
               DNSRR(rrname="b.example", type="NS", rdata="ns1.example"),
               DNSRR(rrname="5.113.0.203.in-addr.arpa", type="PTR", rdata="b.example"),
               DNSRR(rrname="b.example", type="TXT", rdata=["v=1", "k=2"])]
    wire = raw(DNS(id=1, qr=1, rd=1, ra=1, rcode=0, qd=[DNSQR(qname="a.example")], an=answers))
    message = decode(wire)
    assert message.is_response
    assert [(a.rrtype, a.data) for a in message.answers] == [
        (5, "b.example"), (1, "203.0.113.5"), (28, "2001:db8::5"), (15, "10 mail.example"),
        (2, "ns1.example"), (12, "b.example"), (16, "v=1 k=2")]
    assert [a.ttl for a in message.answers[:3]] == [30, 31, 32]
    assert message.answers[1].addr == bytes([203, 0, 113, 5])


def test_rcode_and_flags() -> None:
    message = decode(raw(DNS(id=2, qr=1, aa=1, rcode=3, qd=[DNSQR(qname="nx.example")])))
    assert message.rcode == 3 and message.flags & 0x0400


def test_compression_pointer_backward() -> None:
    # question "evil.example", answer name = pointer to offset 12 (the question name)
    question = b"\x04evil\x07example\x00\x00\x01\x00\x01"
    answer = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xcb\x00\x71\x07"
    wire = struct.pack("!HHHHHH", 1, 0x8180, 1, 1, 0, 0) + question + answer
    message = decode(wire)
    assert message.answers[0].name == "evil.example" and message.answers[0].data == "203.0.113.7"


def test_compression_pointer_forward_is_followed() -> None:
    # The question's name points forward to a name stored after the question.
    wire = (struct.pack("!HHHHHH", 1, 0x0100, 1, 0, 0, 0)
            + b"\xc0\x12" + b"\x00\x01\x00\x01" + b"\x03fwd\x07example\x00")
    assert decode(wire).questions[0].name == "fwd.example"


def test_pointer_loops_are_a_reason_not_a_hang() -> None:
    assert decode(header() + b"\xc0\x0c\x00\x01\x00\x01") == "dns.pointer_loop"
    two_step = header() + b"\xc0\x0e\xc0\x0c\x00\x01\x00\x01"     # 12 → 14 → 12 …
    assert decode(two_step) == "dns.pointer_loop"


def test_over_long_names_are_rejected() -> None:
    label = b"\x3f" + b"a" * 63
    assert decode(header() + label * 4 + b"\x00\x00\x01\x00\x01") == "dns.name_too_long"
    # 255 bytes on the wire is the limit, reached through pointers as well
    assert read_name(label * 3 + b"\x3d" + b"b" * 61 + b"\x00", 0, 300, 0)[0].count(".") == 3


def test_non_printable_bytes_escaped_and_punycode_kept() -> None:
    wire = header() + b"\x04a\x00.\\\x0axn--vi-dua\x02vn\x00\x00\x01\x00\x01"
    assert decode(wire).questions[0].name == "a\\x00\\x2e\\x5c.xn--vi-dua.vn"


def test_truncated_and_bad_label_types() -> None:
    assert decode(header()[:7]) == "dns.truncated"
    assert decode(header() + b"\x05short") == "dns.truncated"
    assert decode(header() + b"\x80bad\x00\x00\x01\x00\x01") == "dns.bad_label_type"


def test_response_with_a_broken_answer_keeps_the_ones_before() -> None:
    good = raw(DNS(id=1, qr=1, qd=[DNSQR(qname="a.example")],
                   an=[DNSRR(rrname="a.example", rdata="192.0.2.1"),
                       DNSRR(rrname="a.example", rdata="192.0.2.2")]))
    message = decode(good[:-3])
    assert [a.data for a in message.answers] == ["192.0.2.1"] and message.truncated_sections


def mutated_response(data: st.DataObject, fewest: int, values: st.SearchStrategy[int]) -> bytes:
    """A real response (a CNAME and an address) with up to 8 of its bytes changed."""
    wire = bytearray(raw(DNS(id=1, qr=1, qd=[DNSQR(qname="x.evil.example")],
                             an=[DNSRR(rrname="x.evil.example", type="CNAME",
                                       rdata="y.evil.example"),
                                 DNSRR(rrname="y.evil.example", rdata="192.0.2.9")])))
    for _ in range(data.draw(st.integers(fewest, 8))):
        wire[data.draw(st.integers(0, len(wire) - 1))] = data.draw(values)
    return bytes(wire)


def _name_or_reason(wire: bytes, pos: int, names: dict[int, str] | None) -> object:
    try:
        return read_name(wire, 0, len(wire), pos, names)
    except DnsFormatError as err:
        return err.reason


@settings(max_examples=examples(500), deadline=None)
@given(st.data())
def test_names_remembered_within_a_message_read_as_if_read_afresh(data: st.DataObject) -> None:
    # Answers' owners point back at the question; the decoder looks those names up in
    # what it read before. Whatever the bytes, that must equal reading them again.
    wire = mutated_response(data, 0, st.sampled_from([0x00, 0x01, 0x0C, 0x3F, 0x80, 0xC0])
                            | st.integers(0, 255))
    names: dict[int, str] = {}
    for pos in data.draw(st.permutations(range(len(wire)))):
        assert _name_or_reason(wire, pos, names) == _name_or_reason(wire, pos, None)


@settings(max_examples=examples(300), deadline=None)
@given(st.data())
def test_names_known_from_earlier_messages_read_as_if_read_afresh(data: st.DataObject) -> None:
    # Pointer-free names are remembered by their wire form across messages; one read
    # from that memory must equal a read with the memory empty, at every offset.
    wire = mutated_response(data, 0, st.sampled_from([0x00, 0x01, 0x0C, 0x3F, 0x40, 0xC0])
                            | st.integers(0, 255))
    for pos in range(len(wire)):
        dns._known_names.clear()
        fresh = _name_or_reason(wire, pos, None)
        assert _name_or_reason(wire, pos, None) == fresh      # from the memory, if it holds it
        assert _name_or_reason(wire, pos, {}) == fresh


class CountedBytes(bytes):
    """Bytes that count how often one of them is read."""

    reads = 0

    def __getitem__(self, index: int | slice) -> int | bytes:  # type: ignore[override]
        CountedBytes.reads += 1
        return super().__getitem__(index)


def test_a_long_chain_of_labels_is_walked_no_further_than_a_name_can_reach() -> None:
    # 30,000 one-byte labels: a name may not pass 255 bytes, so neither the search for a
    # remembered name nor the read may walk the rest (256 such names fit in a TCP message).
    wire = CountedBytes(b"\x01a" * 30_000 + b"\x00")
    CountedBytes.reads = 0
    assert _name_or_reason(wire, 0, None) == "dns.name_too_long"
    assert CountedBytes.reads < 2 * 300


@settings(max_examples=examples(3000), deadline=None)
@given(st.binary(max_size=600))
def test_no_input_raises(wire: bytes) -> None:
    result = decode(wire)
    assert isinstance(result, (DnsMessage, str))


@settings(max_examples=examples(3000), deadline=None)
@given(st.data())
def test_mutated_real_messages_never_raise(data: st.DataObject) -> None:
    wire = mutated_response(data, 1, st.integers(0, 255))
    cut = data.draw(st.integers(0, len(wire)))
    assert isinstance(decode(wire[:cut]), (DnsMessage, str))


def _spec_name_text(raw: bytes) -> str:
    """docs/eve.md's rule for names, written from the rule: each byte lower-cased when
    printable ASCII other than `.` and `\\`, else `\\xNN`; labels joined by dots."""
    return ".".join("".join(chr(b).lower() if 0x21 <= b <= 0x7E and b not in b".\\"
                            else f"\\x{b:02x}" for b in label)
                    for label in raw.split(b".")).rstrip(".")


@settings(max_examples=examples(3000), deadline=None)
@given(st.binary(max_size=80) | st.text("aZ09-._\\\x00é", max_size=40).map(str.encode))
def test_a_dotted_name_reads_as_the_rule_says(raw: bytes) -> None:
    """A name given as text (a TLS server name, an HTTP Host), whether or not it takes
    the shortcut for names that need no escaping."""
    assert dns.name_text(raw) == _spec_name_text(raw)


_label = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9-]{0,20}[A-Za-z0-9])?", fullmatch=True)
_dns_name = st.lists(_label, min_size=1, max_size=5).map(".".join)
_RDATA = {
    "A": st.ip_addresses(v=4).map(str),
    "AAAA": st.ip_addresses(v=6).map(str),
    "CNAME": _dns_name.map(lambda name: name + "."),
    "NS": _dns_name.map(lambda name: name + "."),
    "PTR": _dns_name.map(lambda name: name + "."),
    "MX": st.tuples(st.integers(0, 65535), _dns_name).map(lambda mx: f"{mx[0]} {mx[1]}."),
    "TXT": st.lists(st.from_regex(r"[A-Za-z0-9=._-]{1,255}", fullmatch=True), min_size=1,
                    max_size=3).map(lambda strings: " ".join(f'"{s}"' for s in strings)),
}


def _dnspython_reads(rdata) -> str:
    """An answer's data in our text form, from dnspython's reading of it."""
    match rdata.rdtype.name:
        case "A" | "AAAA":           # written as Python's ipaddress writes them
            return str(ipaddress.ip_address(rdata.address))
        case "CNAME" | "NS" | "PTR":
            return rdata.target.to_text(omit_final_dot=True).lower()
        case "MX":
            return f"{rdata.preference} {rdata.exchange.to_text(omit_final_dot=True).lower()}"
        case _:
            return " ".join(s.decode() for s in rdata.strings)


@settings(max_examples=examples(500), deadline=None)
@given(question=_dns_name, qtype=st.sampled_from(sorted(_RDATA)), data=st.data(),
       ttl=st.integers(0, 2**31 - 1))
def test_responses_read_as_dnspython_reads_them(question: str, qtype: str,
                                                data: st.DataObject, ttl: int) -> None:
    """Responses written by dnspython (names compressed wherever they repeat) read as
    dnspython reads them back."""
    import dns.message
    import dns.rrset

    query = dns.message.make_query(question, qtype)
    response = dns.message.make_response(query)
    rrsets: dict[tuple[str, str], list[str]] = {}     # one set per owner and type, as
    for _ in range(data.draw(st.integers(1, 4))):      # dnspython reads them back
        owner = data.draw(st.sampled_from([question, *data.draw(st.lists(_dns_name,
                                                                           max_size=1))]))
        rrtype = data.draw(st.sampled_from(sorted(_RDATA)))
        records = rrsets.setdefault((owner.lower(), rrtype), [])
        if (rdata := data.draw(_RDATA[rrtype])) not in records:
            records.append(rdata)
    for (owner, rrtype), records in rrsets.items():
        response.answer.append(dns.rrset.from_text_list(owner + ".", ttl, "IN", rrtype,
                                                        records))
    wire = response.to_wire()
    theirs = dns.message.from_wire(wire)
    message = decode(wire)
    assert isinstance(message, DnsMessage), message
    assert (message.id, message.flags) == (theirs.id, theirs.flags)
    assert [(q.name, q.rrtype) for q in message.questions] == [
        (q.name.to_text(omit_final_dot=True).lower(), q.rdtype) for q in theirs.question]
    assert [(a.name, a.rrtype, a.ttl, a.data) for a in message.answers] == [
        (rrset.name.to_text(omit_final_dot=True).lower(), rrset.rdtype, rrset.ttl,
         _dnspython_reads(rdata)) for rrset in theirs.answer for rdata in rrset]
    assert [a.addr for a in message.answers] == [
        ipaddress.ip_address(rdata.address).packed if rrset.rdtype in (1, 28) else b""
        for rrset in theirs.answer for rdata in rrset]


NAME = b"\x04evil\x07example\x00"
QUESTION = NAME + b"\x00\x01\x00\x01"


def record(rrtype: int, rdata: bytes, name: bytes = b"\x00") -> bytes:
    return name + struct.pack("!HHIH", rrtype, 1, 300, len(rdata)) + rdata


@pytest.mark.parametrize(("wire", "reason"), [
    (header()[:11], "dns.truncated"),                       # no whole header
    (header() + b"\x04evi", "dns.truncated"),               # a label past the end
    (header() + NAME, "dns.truncated"),                     # no type and class
    (header() + NAME + b"\x00\x01\x00", "dns.truncated"),
    (header() + b"\x03abc", "dns.truncated"),               # no end of the name
    (header() + b"\xc0", "dns.truncated"),                  # half a pointer
    (header() + b"\x40abc\x00", "dns.bad_label_type"),
    (header(questions=0, answers=1) + record(1, b"\x01\x02\x03"), "dns.bad_rdata"),
    (header(questions=0, answers=1) + record(28, b"\x00" * 15), "dns.bad_rdata"),
    (header(questions=0, answers=1) + record(15, b"\x00\x0a"), "dns.bad_rdata"),
    (header(questions=0, answers=1) + record(16, b"\x05abcd"), "dns.bad_rdata"),
    (header(questions=0, answers=1) + record(16, b"\x02ab\x02a"), "dns.bad_rdata"),
    (header(answers=1) + QUESTION + b"\xc0\x0c" + b"\x00" * 9, "dns.truncated"),
    (header(answers=1) + QUESTION + record(1, b"\x01\x02\x03\x04")[:-1], "dns.truncated"),
    # A query's flags with an odd bit set (rcode 1) are still a query's: no answers kept.
    (header(flags=0x0001, questions=0, answers=1) + record(1, b"\x01"), "dns.bad_rdata"),
])
def test_a_malformed_message_gives_its_reason(wire: bytes, reason: str) -> None:
    assert decode(wire) == reason


def test_a_response_keeps_the_answers_read_before_a_malformed_one() -> None:
    wire = (header(0x8180, answers=3) + QUESTION + record(1, b"\xcb\x00\x71\x07")
            + record(1, b"\x01\x02\x03") + record(1, b"\x01\x02\x03\x04"))
    message = decode(wire)
    assert isinstance(message, DnsMessage) and message.truncated_sections
    assert [a.data for a in message.answers] == ["203.0.113.7"]
    whole = decode(header(0x8180, answers=1) + QUESTION + record(1, b"\xcb\x00\x71\x07"))
    assert isinstance(whole, DnsMessage) and whole.truncated_sections is False


@pytest.mark.parametrize(("wire", "answers"), [
    (header(questions=0), []),                                        # a bare header
    (header(questions=0, answers=1) + record(99, b""), [(99, "", b"")]),  # type unknown
    (header(questions=0, answers=1) + record(15, b"\x00\x0a\x00"), [(15, "10 ", b"")]),
    (header(questions=0, answers=1) + record(16, b"\x02ab\x00"), [(16, "ab ", b"")]),
    (header(questions=0, answers=1) + record(16, b"\x02\" \x01\\"),
     [(16, '"\\x20 \\x5c', b"")]),
    (header(questions=0, answers=1) + record(5, NAME, b"\x00"), [(5, "evil.example", b"")]),
    (header(questions=0, answers=1) + record(1, b"\x0a\x00\x00\x01", b"\x00"),
     [(1, "10.0.0.1", b"\x0a\x00\x00\x01")]),
])
def test_records_at_the_edges_of_their_lengths(wire: bytes, answers: list) -> None:
    message = decode(wire)
    assert isinstance(message, DnsMessage), message
    assert [(a.rrtype, a.data, a.addr) for a in message.answers] == answers


def test_a_chain_of_64_pointers_is_read_and_65_are_a_loop() -> None:
    """After "evil.example", each pointer points at the one before it: reading the last
    takes as many jumps as there are pointers."""
    for pointers, expected in ((64, "evil.example"), (65, "dns.pointer_loop")):
        wire = bytearray(header() + NAME)
        last = 12
        for _ in range(pointers):
            here = len(wire)
            wire += struct.pack("!H", 0xC000 | last)
            last = here
        dns._known_names.clear()
        try:
            name = read_name(bytes(wire), 0, len(wire), last)[0]
        except DnsFormatError as err:
            name = err.reason
        assert name == expected


def test_a_pointer_past_the_first_256_bytes_is_followed() -> None:
    wire = (header(0x8180, answers=3) + QUESTION
            + record(16, b"\xff" + b"t" * 255)                       # fills past 256
            + record(5, b"\x03www\x06target\x07example\x00")        # the target at > 256
            + record(1, b"\xcb\x00\x71\x07", b"\x03www\xc1\x1a"))   # its name, pointed at
    target = wire.index(b"\x06target")
    assert target > 0x100
    wire = wire.replace(b"\xc1\x1a", struct.pack("!H", 0xC000 | target))
    message = decode(wire)
    assert isinstance(message, DnsMessage), message
    assert message.answers[2].name == "www.target.example"


@pytest.mark.parametrize(("code", "name"), [(1, "A"), (28, "AAAA"), (65, "HTTPS"),
                                            (999, "TYPE999")])
def test_types_are_named_as_suricata_names_them(code: int, name: str) -> None:
    assert dns.rrtype_name(code) == name


@pytest.mark.parametrize(("code", "name"), [(0, "NOERROR"), (3, "NXDOMAIN"), (12, "RCODE12")])
def test_response_codes_are_named(code: int, name: str) -> None:
    assert dns.rcode_name(code) == name


@pytest.mark.parametrize(("raw", "text"), [
    (b"\x20\x21\x22\x5b\x5c\x5d\x7e\x7f", "\\x20!\"[\\x5c]~\\x7f"),
    (b"AbC", "AbC"),
    (b"\x00\xff", "\\x00\\xff"),
])
def test_a_txt_string_keeps_its_case_and_escapes_the_rest(raw: bytes, text: str) -> None:
    assert dns.character_string_text(raw) == text


def test_a_message_is_read_where_it_starts_in_the_buffer() -> None:
    """A TCP stream or a tunnel hands the decoder a buffer with the message inside."""
    inside = (b"\xff" * 20 + header(0x8180, answers=1) + QUESTION
              + record(1, b"\x01\x02\x03\x04"))
    message = decode_dns(inside + b"\xff" * 5, 20, len(inside))
    assert isinstance(message, DnsMessage) and message.id == 7
    assert [q.name for q in message.questions] == ["evil.example"]
    assert [a.data for a in message.answers] == ["1.2.3.4"]
    assert decode_dns(b"\xff" * 20 + header()[:11], 20, 31) == "dns.truncated"


def test_an_end_past_the_buffer_is_contained() -> None:
    assert decode_dns(header(), 0, 100) == "dns.malformed"


def test_a_name_with_a_delete_byte_escapes_it() -> None:
    wire = header(questions=1) + b"\x03a\x7fb\x07example\x00\x00\x01\x00\x01"
    message = decode(wire)
    assert isinstance(message, DnsMessage)
    assert message.questions[0].name == "a\\x7fb.example"
