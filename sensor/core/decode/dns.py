"""DNS wire format (RFC 1035) into `DnsMessage`, through one bounded reader.

Every read checks the bytes left and fails with one exception type, caught
at the module boundary, so `decode_dns` returns a message or a reason string
and never raises. Names: lowercased, no trailing dot, bytes outside
printable ASCII (and `.`/`\\` inside a label) escaped as `\\xNN`; punycode
(`xn--…`) is kept as it is, never decoded.
"""

from __future__ import annotations

import re
import struct

from sensor.core.events import DnsAnswer, DnsMessage, DnsQuestion, addr_text, new_record

MAX_NAME_LENGTH = 255        # RFC 1035 §2.3.4, counted on the wire form
MAX_POINTER_JUMPS = 64       # any real name needs far fewer; a loop needs more
MAX_RECORDS = 256            # per section: bounds the work one packet can cause
MAX_KNOWN_NAMES = 16_384     # wire forms remembered across messages (then forgotten at once)
MAX_KNOWN_LENGTH = 128       # longer names are not remembered: memory stays a few MB

RRTYPE_A, RRTYPE_NS, RRTYPE_CNAME, RRTYPE_PTR, RRTYPE_MX, RRTYPE_TXT = 1, 2, 5, 12, 15, 16
RRTYPE_AAAA = 28
RRTYPE_NAMES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT",
                28: "AAAA", 33: "SRV", 35: "NAPTR", 41: "OPT", 43: "DS", 46: "RRSIG",
                47: "NSEC", 48: "DNSKEY", 50: "NSEC3", 64: "SVCB", 65: "HTTPS",
                99: "SPF", 255: "ANY", 256: "URI", 257: "CAA"}
RCODE_NAMES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP",
               5: "REFUSED", 6: "YXDOMAIN", 7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH",
               10: "NOTZONE"}

_HEADER = struct.Struct("!HHHHHH")
_QTAIL = struct.Struct("!HH")
_RRTAIL = struct.Struct("!HHIH")
_SAFE_LABEL = re.compile(rb"[!-\-/-\[\]-~]*\Z")    # printable, minus '.' and '\'
_SAFE_NAME = re.compile(rb"[!-\[\]-~]*\Z")         # printable, minus '\'


class DnsFormatError(Exception):
    """Raised inside this module only; `decode_dns` turns it into a reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def rrtype_name(rrtype: int) -> str:
    return RRTYPE_NAMES.get(rrtype) or f"TYPE{rrtype}"


def rcode_name(rcode: int) -> str:
    return RCODE_NAMES.get(rcode) or f"RCODE{rcode}"


def label_text(label: bytes) -> str:
    """One label as names are written everywhere (nothing from the wire is trusted):
    lowercase, bytes outside printable ASCII and `.`/`\\` escaped `\\xNN`."""
    if _SAFE_LABEL.match(label):
        return label.decode("ascii").lower()
    return "".join(chr(b).lower() if 0x21 <= b <= 0x7E and b not in (0x2E, 0x5C)
                   else f"\\x{b:02x}" for b in label)


def character_string_text(raw: bytes) -> str:
    """One TXT string: case kept (it is data, not a name), bytes outside printable
    ASCII, the space and `\\` escaped `\\xNN`, so strings joined by spaces stay apart."""
    return "".join(chr(b) if 0x21 <= b <= 0x7E and b != 0x5C else f"\\x{b:02x}" for b in raw)


def name_text(raw: bytes) -> str:
    """A dotted name given as text on the wire (a TLS server name), written as a decoded
    DNS name is: label by label, without the trailing dot."""
    if _SAFE_NAME.match(raw):           # nearly always: no label needs escaping
        return raw.decode("ascii").lower().rstrip(".")
    return ".".join(map(label_text, raw.split(b"."))).rstrip(".")


# Pointer-free names by their wire form (labels with their length bytes, no final zero):
# the same few names are asked again and again, and finding a name's end and looking it
# up costs a third of reading it. What a pointer-free name reads as depends on its bytes
# alone, so the memory answers as a fresh read would (tested).
_known_names: dict[bytes, str] = {}


def read_name(buf: bytes, base: int, end: int, pos: int,
              names: dict[int, str] | None = None) -> tuple[str, int]:
    """Read a possibly compressed name at `pos`; return (name, offset after it).

    Compression pointers are offsets from `base` (the message start). Forward
    pointers are allowed, as resolvers and tshark accept them; loops are caught
    by the jump limit and the 255-byte name limit. `names`, shared by the reads
    of one message with the same `end`, remembers pointer-free names by offset,
    so a name that is only a pointer to one of them (an answer's owner, nearly
    always) is looked up instead of read again: the same result, since the
    pointer is its one jump.
    """
    at = pos
    known_end = min(end, at + MAX_KNOWN_LENGTH)    # no longer name is remembered
    while pos < known_end:              # a pointer-free name read before? (`_known_names`)
        length = buf[pos]
        if not length:
            name = _known_names.get(buf[at:pos])
            if name is None:
                break
            if names is not None:
                names[at] = name
            return name, pos + 1
        if length > 63:
            break
        pos += length + 1
    pos = at
    labels: list[bytes] = []
    wire_length = 1
    after = -1
    jumps = 0
    while True:
        if pos >= end:
            raise DnsFormatError("dns.truncated")
        length = buf[pos]
        if length == 0:
            pos += 1
            break
        kind = length & 0xC0
        if kind == 0xC0:
            if pos + 1 >= end:
                raise DnsFormatError("dns.truncated")
            if after < 0:
                after = pos + 2
            jumps += 1
            if jumps > MAX_POINTER_JUMPS:
                raise DnsFormatError("dns.pointer_loop")
            pos = base + (((length & 0x3F) << 8) | buf[pos + 1])
            if names is not None and jumps == 1 and not labels and pos in names:
                return names[pos], after
            continue
        if kind:
            raise DnsFormatError("dns.bad_label_type")
        wire_length += length + 1
        if wire_length > MAX_NAME_LENGTH:
            raise DnsFormatError("dns.name_too_long")
        pos += 1
        if pos + length > end:
            raise DnsFormatError("dns.truncated")
        labels.append(buf[pos:pos + length])
        pos += length
    if _SAFE_LABEL.match(b"".join(labels)):        # the usual case: one check, one decode
        name = b".".join(labels).decode("ascii").lower()
    else:
        name = ".".join(map(label_text, labels))
    if after < 0:
        if names is not None:
            names[at] = name
        if pos - at <= MAX_KNOWN_LENGTH:
            if len(_known_names) >= MAX_KNOWN_NAMES:
                _known_names.clear()
            _known_names[buf[at:pos - 1]] = name
        return name, pos
    return name, after


def _rdata_text(buf: bytes, base: int, pos: int, stop: int, rrtype: int) -> tuple[str, bytes]:
    """The rdata of one record as text (and packed address for A/AAAA)."""
    rdlen = stop - pos
    if rrtype == RRTYPE_A:
        if rdlen != 4:
            raise DnsFormatError("dns.bad_rdata")
        packed = buf[pos:stop]
        return addr_text(packed), packed
    if rrtype == RRTYPE_AAAA:
        if rdlen != 16:
            raise DnsFormatError("dns.bad_rdata")
        packed = buf[pos:stop]
        return addr_text(packed), packed
    if rrtype in (RRTYPE_CNAME, RRTYPE_NS, RRTYPE_PTR):
        return read_name(buf, base, stop, pos)[0], b""
    if rrtype == RRTYPE_MX:
        if rdlen < 3:
            raise DnsFormatError("dns.bad_rdata")
        preference = (buf[pos] << 8) | buf[pos + 1]
        return f"{preference} {read_name(buf, base, stop, pos + 2)[0]}", b""
    if rrtype == RRTYPE_TXT:
        parts = []
        while pos < stop:
            n = buf[pos]
            if pos + 1 + n > stop:
                raise DnsFormatError("dns.bad_rdata")
            parts.append(character_string_text(buf[pos + 1:pos + 1 + n]))
            pos += 1 + n
        return " ".join(parts), b""
    return "", b""


def decode_dns(buf: bytes, start: int, end: int) -> DnsMessage | str:
    """Decode the message in `buf[start:end]`; a reason string if malformed."""
    try:
        return _decode(buf, start, end)
    except DnsFormatError as err:
        return err.reason
    except (IndexError, ValueError, struct.error):   # belt and braces: never escape
        return "dns.malformed"


def _decode(buf: bytes, start: int, end: int) -> DnsMessage:
    if end - start < 12:
        raise DnsFormatError("dns.truncated")
    msg_id, flags, qdcount, ancount, _nscount, _arcount = _HEADER.unpack_from(buf, start)
    pos = start + 12
    names: dict[int, str] = {}
    questions = []
    for _ in range(min(qdcount, MAX_RECORDS)):
        name, pos = read_name(buf, start, end, pos, names)
        if pos + 4 > end:
            raise DnsFormatError("dns.truncated")
        rrtype, _cls = _QTAIL.unpack_from(buf, pos)
        pos += 4
        questions.append(new_record(DnsQuestion, (name, rrtype)))
    answers = []
    cut_short = False
    try:
        for _ in range(min(ancount, MAX_RECORDS)):
            name, pos = read_name(buf, start, end, pos, names)
            if pos + 10 > end:
                raise DnsFormatError("dns.truncated")
            rrtype, _cls, ttl, rdlen = _RRTAIL.unpack_from(buf, pos)
            pos += 10
            stop = pos + rdlen
            if stop > end:
                raise DnsFormatError("dns.truncated")
            data, packed = _rdata_text(buf, start, pos, stop, rrtype)
            answers.append(new_record(DnsAnswer, (name, rrtype, ttl, data, packed)))
            pos = stop
    except DnsFormatError:
        if not (flags & 0x8000):
            raise
        cut_short = True                   # keep the answers read so far
    return new_record(DnsMessage, (msg_id, flags, tuple(questions), tuple(answers), cut_short))
