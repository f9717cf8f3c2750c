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

from sensor.core.decode.dns import name_text
from sensor.core.decode.segments import SEQ_MASK, in_order
from sensor.core.events import ClientHello

RECORD_HANDSHAKE, HANDSHAKE_CLIENT_HELLO = 22, 1
EXT_SERVER_NAME, EXT_GROUPS, EXT_POINT_FORMATS, EXT_SIGNATURES = 0, 10, 11, 13
EXT_ALPN, EXT_VERSIONS = 16, 43
MAX_NAME = 253
MAX_HELLO = 16_384          # bytes of records a ClientHello may take; beyond, not read
JA4_VERSIONS = {0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10", 0x0300: "s3",
                0x0200: "s2", 0x0100: "s1"}
NO_HASH = "000000000000"


def _is_grease(value: int) -> bool:
    """RFC 8701's reserved values (0x0a0a, 0x1a1a … 0xfafa), left out of JA3 and JA4."""
    return (value & 0x0F0F) == 0x0A0A and (value >> 8) == (value & 0xFF)


def _u16s(buf: bytes, at: int, end: int) -> list[int]:
    return [(buf[i] << 8) | buf[i + 1] for i in range(at, end - 1, 2)]


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
    """The ClientHello body from `at` (its version field) to `hello_end`."""
    if at + 35 > hello_end:
        return "tls.truncated"
    legacy_version = (buf[at] << 8) | buf[at + 1]
    at += 34                            # version and random
    at += 1 + buf[at]                   # session id
    if at + 2 > hello_end:
        return "tls.truncated"
    ciphers_end = at + 2 + ((buf[at] << 8) | buf[at + 1])
    if ciphers_end + 1 > hello_end:
        return "tls.truncated"
    ciphers = [c for c in _u16s(buf, at + 2, ciphers_end) if not _is_grease(c)]
    at = ciphers_end + 1 + buf[ciphers_end]                    # compression methods
    extensions: list[int] = []
    groups: list[int] = []
    formats: list[int] = []
    signatures: list[int] = []
    alpn: list[str] = []
    first_alpn = b""
    versions: list[int] = []
    sni = ""
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
            if not _is_grease(kind):
                extensions.append(kind)
            if kind == EXT_SERVER_NAME and data + 5 <= data_end and buf[data + 2] == 0:
                length = (buf[data + 3] << 8) | buf[data + 4]
                if data + 5 + length > data_end or length > MAX_NAME:
                    return "tls.bad_server_name"
                sni = name_text(buf[data + 5:data + 5 + length])
            elif kind in (EXT_GROUPS, EXT_SIGNATURES):
                if data + 2 <= data_end:
                    values = [v for v in _u16s(buf, data + 2, min(
                        data_end, data + 2 + ((buf[data] << 8) | buf[data + 1])))
                        if not _is_grease(v)]
                    if kind == EXT_GROUPS:
                        groups = values
                    else:
                        signatures = values
            elif kind == EXT_POINT_FORMATS and data < data_end:
                formats = list(buf[data + 1:min(data_end, data + 1 + buf[data])])
            elif kind == EXT_ALPN and data + 2 <= data_end:
                item = data + 2
                while item < data_end and item + 1 + buf[item] <= data_end:
                    value = buf[item + 1:item + 1 + buf[item]]
                    if not alpn:
                        first_alpn = value
                    alpn.append(name_text(value))
                    item += 1 + buf[item]
            elif kind == EXT_VERSIONS and data < data_end:
                versions = _u16s(buf, data + 1, min(data_end, data + 1 + buf[data]))
            at = data_end
    offered = [v for v in versions if not _is_grease(v)]
    version = max(offered) if offered else legacy_version
    ja3 = ",".join((str(legacy_version), "-".join(str(c) for c in ciphers),
                    "-".join(str(e) for e in extensions),
                    "-".join(str(g) for g in groups), "-".join(str(f) for f in formats)))
    return ClientHello(sni, version, tuple(alpn), ja3,
                       md5(ja3.encode(), usedforsecurity=False).hexdigest(),
                       ja4(transport, version, bool(sni), ciphers, extensions, first_alpn,
                           signatures))


def ja4(transport: str, version: int, has_sni: bool, ciphers: list[int],
        extensions: list[int], first_alpn: bytes, signatures: list[int]) -> str:
    """FoxIO's JA4 (technical_details/JA4.md) from a ClientHello's parts, GREASE removed:
    `t13d1516h2_8daaf6152771_e5627efa2ab1`."""
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
    cipher_text = ",".join(sorted(f"{c:04x}" for c in ciphers))
    extension_text = ",".join(sorted(f"{e:04x}" for e in extensions
                                     if e != EXT_SERVER_NAME and e != EXT_ALPN))
    if signatures:
        extension_text += "_" + ",".join(f"{s:04x}" for s in signatures)
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
