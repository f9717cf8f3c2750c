"""TLS ClientHello (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2): the name a client connects to.

`client_hello(buf, off, end)` reads TLS records of type 22 carrying a handshake of
type 1 from the start of a TCP payload, on any port; `handshake_hello` reads the bare
handshake message QUIC carries in its CRYPTO frames. Both give a `ClientHello`: the
server name (SNI, RFC 6066), the ALPN protocols (RFC 7301), the highest version
offered (supported_versions, else the legacy version), the JA3 string and its MD5
(ciphers, extensions, groups and point formats in the order sent, GREASE values left
out, as abuse.ch's SSLBL and tshark compute it) and the JA4 fingerprint (FoxIO's
specification: sorted ciphers and extensions, so Chrome's shuffled extension order
gives one fingerprint). A ClientHello longer than the bytes given (one with a
post-quantum key share spans TCP segments) comes back as `tls.partial`, and
`HelloAssembly` gathers the segments of one flow until it is whole; anything
malformed is a `tls.*` reason. Every read is bounds-checked; nothing raises.
"""

from __future__ import annotations

from hashlib import md5, sha256
from struct import unpack_from
from typing import Final

from sensor.core.decode.dns import name_text
from sensor.core.decode.segments import SEQ_MASK, in_order
from sensor.core.events import ClientHello, new_record

# Final: the compiled module uses the values in place rather than looking names up
RECORD_HANDSHAKE: Final = 22
HANDSHAKE_CLIENT_HELLO: Final = 1
EXT_SERVER_NAME: Final = 0
EXT_GROUPS: Final = 10
EXT_POINT_FORMATS: Final = 11
EXT_SIGNATURES: Final = 13
EXT_ALPN: Final = 16
EXT_VERSIONS: Final = 43
MAX_NAME: Final = 253
MAX_HELLO: Final = 16_384   # bytes of records a ClientHello may take; beyond, not read
JA4_VERSIONS: Final = {0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10",
                       0x0300: "s3", 0x0200: "s2", 0x0100: "s1"}
NO_HASH: Final = "000000000000"


# RFC 8701's reserved values (0x0a0a, 0x1a1a … 0xfafa), left out of JA3 and JA4, as the
# two bytes they are on the wire
GREASE: Final = frozenset(bytes((high, high)) for high in range(0x0A, 0x100, 0x10))
MAX_FINGERPRINTS: Final = 4096    # remembered client fingerprints (few client programs recur)


def _pairs(raw: bytes, at: int, end: int) -> list[bytes]:
    """The 16-bit values in raw[at:end] as 2-byte strings, GREASE values left out.
    Big-endian, they sort as the numbers do, and `bytes.hex` writes JA4's lists."""
    return [pair for pair in (raw[i:i + 2] for i in range(at, end - 1, 2))
            if pair not in GREASE]


def _decimal(pairs: list[bytes]) -> str:
    """JA3's form of a list: the values in decimal, joined by dashes."""
    if not pairs:
        return ""
    return "-".join(map(str, unpack_from(f"!{len(pairs)}H", b"".join(pairs))))


def client_hello(buf: bytes, off: int, end: int) -> ClientHello | str:
    """The ClientHello in the TLS records starting at `off` (a TCP payload)."""
    if off + 9 > end:
        return "tls.partial"
    if buf[off] != RECORD_HANDSHAKE or buf[off + 1] != 3 or buf[off + 5] != \
            HANDSHAKE_CLIENT_HELLO:
        return "tls.not_client_hello"
    record_end = off + 5 + ((buf[off + 3] << 8) | buf[off + 4])
    hello_end = off + 9 + ((buf[off + 6] << 16) | (buf[off + 7] << 8) | buf[off + 8])
    if hello_end - off > MAX_HELLO:
        return "tls.too_long"
    if hello_end <= record_end:                     # the usual case: one record
        if hello_end > end:
            return "tls.partial"
        return _hello(buf, off + 9, hello_end, "t")
    message = _records(buf, off, end, hello_end - off - 5)
    if isinstance(message, str):
        return message
    return _hello(message, 4, len(message), "t")


def _records(buf: bytes, at: int, end: int, size: int) -> bytes | str:
    """The first `size` bytes of handshake data from consecutive type-22 records."""
    parts: list[bytes] = []
    have = 0
    while have < size:
        if at + 5 > end:
            return "tls.partial"
        if buf[at] != RECORD_HANDSHAKE or buf[at + 1] != 3:
            return "tls.bad_record"
        record_end = at + 5 + ((buf[at + 3] << 8) | buf[at + 4])
        if record_end == at + 5:
            return "tls.bad_record"
        if record_end > end:
            return "tls.partial"
        parts.append(buf[at + 5:record_end])
        have += record_end - at - 5
        at = record_end
    return b"".join(parts)[:size]


def handshake_hello(buf: bytes, off: int, end: int, transport: str) -> ClientHello | str:
    """The ClientHello handshake message at `off`, outside any record (QUIC's CRYPTO
    stream); `transport` is JA4's first letter, "q" for QUIC."""
    if off + 4 > end:
        return "tls.partial"
    if buf[off] != HANDSHAKE_CLIENT_HELLO:
        return "tls.not_client_hello"
    hello_end = off + 4 + ((buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3])
    if hello_end - off > MAX_HELLO:
        return "tls.too_long"
    if hello_end > end:
        return "tls.partial"
    return _hello(buf, off + 4, hello_end, transport)


def _hello(buf: bytes, at: int, hello_end: int, transport: str) -> ClientHello | str:
    """The ClientHello body from `at` (its version field) to `hello_end`.

    What the fingerprints are made of is kept as raw slices, and the fingerprints are
    remembered by them: the same client program sends the same lists every time, and
    building JA3 and JA4 costs more than reading the hello."""
    if at + 35 > hello_end:
        return "tls.truncated"
    legacy_version = (buf[at] << 8) | buf[at + 1]
    at += 34                            # version and random
    at += 1 + buf[at]                   # session id
    if at + 2 > hello_end:
        return "tls.truncated"
    ciphers_at = at + 2
    ciphers_end = ciphers_at + ((buf[at] << 8) | buf[at + 1])
    if ciphers_end + 1 > hello_end:
        return "tls.truncated"
    at = ciphers_end + 1 + buf[ciphers_end]                    # compression methods
    kinds = bytearray()
    groups = formats = signatures = alpn = versions = b""
    sni = ""
    has_sni = False
    if at + 2 <= hello_end:
        ext_end = at + 2 + ((buf[at] << 8) | buf[at + 1])
        if ext_end > hello_end:
            return "tls.truncated"
        at += 2
        while at + 4 <= ext_end:
            kind = (buf[at] << 8) | buf[at + 1]
            data, data_end = at + 4, at + 4 + ((buf[at + 2] << 8) | buf[at + 3])
            if data_end > ext_end:
                return "tls.truncated"
            kinds += buf[at:at + 2]
            if kind == EXT_SERVER_NAME:
                has_sni = True
                if data + 5 <= data_end and buf[data + 2] == 0:
                    length = (buf[data + 3] << 8) | buf[data + 4]
                    if data + 5 + length > data_end or length > MAX_NAME:
                        return "tls.bad_server_name"
                    sni = name_text(buf[data + 5:data + 5 + length])
            elif kind == EXT_GROUPS:
                groups = buf[data:data_end]
            elif kind == EXT_SIGNATURES:
                signatures = buf[data:data_end]
            elif kind == EXT_POINT_FORMATS:
                formats = buf[data:data_end]
            elif kind == EXT_ALPN:
                alpn = buf[data:data_end]
            elif kind == EXT_VERSIONS:
                versions = buf[data:data_end]
            at = data_end
    key = (legacy_version, buf[ciphers_at:ciphers_end], bytes(kinds), groups, formats,
           signatures, alpn, versions, has_sni, transport)
    known = _fingerprints.get(key)
    if known is None:
        if len(_fingerprints) >= MAX_FINGERPRINTS:
            _fingerprints.clear()
        known = _fingerprints[key] = _fingerprint(key)
    version, protocols, ja3, ja3_hash, ja4_text = known
    return new_record(ClientHello, (sni, version, protocols, ja3, ja3_hash, ja4_text))


Fingerprint = tuple[int, tuple[str, ...], str, str, str]
_fingerprints: dict[tuple, Fingerprint] = {}


def _listed(raw: bytes, prefix: int) -> list[bytes]:
    """An extension's list of 16-bit values after its `prefix`-byte length."""
    if len(raw) < prefix:
        return []
    size = raw[0] if prefix == 1 else (raw[0] << 8) | raw[1]
    return _pairs(raw, prefix, min(len(raw), prefix + size))


def _fingerprint(key: tuple) -> Fingerprint:
    """(version offered, ALPN protocols, JA3 string, its MD5, JA4) of a hello's parts."""
    (legacy_version, cipher_raw, kind_raw, groups_raw, formats_raw, signatures_raw, alpn_raw,
     versions_raw, has_sni, transport) = key
    ciphers = _pairs(cipher_raw, 0, len(cipher_raw))
    extensions = _pairs(kind_raw, 0, len(kind_raw))
    offered = _listed(versions_raw, 1)
    highest = max(offered) if offered else b""
    version = (highest[0] << 8) | highest[1] if highest else legacy_version
    protocols: list[bytes] = []
    item = 2
    while item < len(alpn_raw) and item + 1 + alpn_raw[item] <= len(alpn_raw):
        protocols.append(alpn_raw[item + 1:item + 1 + alpn_raw[item]])
        item += 1 + alpn_raw[item]
    formats = formats_raw[1:1 + formats_raw[0]] if formats_raw else b""
    ja3 = ",".join((str(legacy_version), _decimal(ciphers), _decimal(extensions),
                    _decimal(_listed(groups_raw, 2)), "-".join(map(str, formats))))
    return (version, tuple(name_text(p) for p in protocols), ja3,
            md5(ja3.encode(), usedforsecurity=False).hexdigest(),
            ja4(transport, version, has_sni, ciphers, extensions,
                protocols[0] if protocols else b"", _listed(signatures_raw, 2)))


_SNI_AND_ALPN: Final = frozenset((b"\x00\x00", b"\x00\x10"))


def ja4(transport: str, version: int, has_sni: bool, ciphers: list[bytes],
        extensions: list[bytes], first_alpn: bytes, signatures: list[bytes]) -> str:
    """FoxIO's JA4 (technical_details/JA4.md) from a ClientHello's parts (2-byte values,
    GREASE removed): `t13d1516h2_8daaf6152771_e5627efa2ab1`."""
    if not first_alpn:
        alpn = "00"
    elif chr(first_alpn[0]).isalnum() and chr(first_alpn[-1]).isalnum() and \
            first_alpn[0] < 128 and first_alpn[-1] < 128:
        alpn = chr(first_alpn[0]) + chr(first_alpn[-1])
    else:                   # not a letter or digit: the first and last hex digits
        text = first_alpn.hex()
        alpn = text[0] + text[-1]
    head = (f"{transport}{JA4_VERSIONS.get(version, '00')}{'d' if has_sni else 'i'}"
            f"{min(len(ciphers), 99):02d}{min(len(extensions), 99):02d}{alpn}")
    cipher_text = b"".join(sorted(ciphers)).hex(",", 2)
    extension_text = b"".join(sorted(e for e in extensions if e not in _SNI_AND_ALPN)).hex(
        ",", 2)
    if signatures:
        extension_text += "_" + b"".join(signatures).hex(",", 2)
    return f"{head}_{_ja4_hash(cipher_text)}_{_ja4_hash(extension_text)}"


def _ja4_hash(text: str) -> str:
    return sha256(text.encode()).hexdigest()[:12] if text else NO_HASH


class HelloAssembly:
    """A client's first bytes on one TCP flow, kept until they hold a whole ClientHello
    (at most `MAX_HELLO` bytes), in sequence order; a gap ends the wait."""

    __slots__ = ("next_seq", "data")

    def __init__(self) -> None:
        self.next_seq = -1
        self.data = b""

    def feed(self, seq: int, buf: bytes, off: int, end: int) -> ClientHello | str:
        """The ClientHello once whole, `tls.partial` while waiting, else the reason it
        cannot be read (`tls.gap` when bytes went missing)."""
        if self.next_seq < 0:                 # the first segment: read it in place
            self.next_seq = (seq + end - off) & SEQ_MASK
            hello = client_hello(buf, off, end)
            if hello == "tls.partial":
                self.data = buf[off:end]
            return hello
        new = in_order(self.next_seq, seq, buf[off:end])
        if new is None:
            self.data = b""
            return "tls.gap"
        self.next_seq = (self.next_seq + len(new)) & SEQ_MASK
        data = self.data = self.data + new
        hello = client_hello(data, 0, len(data))
        if hello == "tls.partial" and len(data) >= MAX_HELLO:
            hello = "tls.too_long"
        if hello != "tls.partial":
            self.data = b""
        return hello
