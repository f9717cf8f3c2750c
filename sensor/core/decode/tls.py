"""TLS ClientHello (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2): the name a client connects to.

`client_hello(buf, off, end)` reads a TLS record of type 22 holding a handshake of
type 1 from the start of a TCP payload, on any port, and returns a `ClientHello`:
the server name (SNI, RFC 6066), the ALPN protocols (RFC 7301), the highest version
offered (supported_versions, else the legacy version), and the JA3 string and its MD5
(ciphers, extensions, groups and point formats in the order sent, GREASE values left
out, as abuse.ch's SSLBL and tshark compute it). A ClientHello longer than the
segment (one with a post-quantum key share) comes back as `tls.partial`; anything
malformed as a `tls.*` reason. Every read is bounds-checked; nothing raises.
"""

from __future__ import annotations

from hashlib import md5

from sensor.core.decode.dns import name_text
from sensor.core.events import ClientHello

RECORD_HANDSHAKE, HANDSHAKE_CLIENT_HELLO = 22, 1
EXT_SERVER_NAME, EXT_GROUPS, EXT_POINT_FORMATS, EXT_ALPN, EXT_VERSIONS = 0, 10, 11, 16, 43
MAX_NAME = 253


def _is_grease(value: int) -> bool:
    """RFC 8701's reserved values (0x0a0a, 0x1a1a … 0xfafa), left out of JA3."""
    return (value & 0x0F0F) == 0x0A0A and (value >> 8) == (value & 0xFF)


def _u16s(buf: bytes, at: int, end: int) -> list[int]:
    return [(buf[i] << 8) | buf[i + 1] for i in range(at, end - 1, 2)]


def client_hello(buf: bytes, off: int, end: int) -> ClientHello | str:
    if off + 9 > end:
        return "tls.partial"
    if buf[off] != RECORD_HANDSHAKE or buf[off + 1] != 3 or buf[off + 5] != \
            HANDSHAKE_CLIENT_HELLO:
        return "tls.not_client_hello"
    record_end = off + 5 + ((buf[off + 3] << 8) | buf[off + 4])
    hello_end = off + 9 + ((buf[off + 6] << 16) | (buf[off + 7] << 8) | buf[off + 8])
    if hello_end > record_end:
        return "tls.bad_length"         # a hello spread over several records: not read
    if hello_end > end:
        return "tls.partial"
    at = off + 9
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
    ciphers = _u16s(buf, at + 2, ciphers_end)
    at = ciphers_end + 1 + buf[ciphers_end]                    # compression methods
    extensions: list[int] = []
    groups: list[int] = []
    formats: list[int] = []
    alpn: list[str] = []
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
            extensions.append(kind)
            if kind == EXT_SERVER_NAME and data + 5 <= data_end and buf[data + 2] == 0:
                length = (buf[data + 3] << 8) | buf[data + 4]
                if data + 5 + length > data_end or length > MAX_NAME:
                    return "tls.bad_server_name"
                sni = name_text(buf[data + 5:data + 5 + length])
            elif kind == EXT_GROUPS and data + 2 <= data_end:
                groups = _u16s(buf, data + 2, min(data_end, data + 2 + ((buf[data] << 8)
                                                                       | buf[data + 1])))
            elif kind == EXT_POINT_FORMATS and data < data_end:
                formats = list(buf[data + 1:min(data_end, data + 1 + buf[data])])
            elif kind == EXT_ALPN and data + 2 <= data_end:
                item = data + 2
                while item < data_end and item + 1 + buf[item] <= data_end:
                    alpn.append(name_text(buf[item + 1:item + 1 + buf[item]]))
                    item += 1 + buf[item]
            elif kind == EXT_VERSIONS and data < data_end:
                versions = _u16s(buf, data + 1, min(data_end, data + 1 + buf[data]))
            at = data_end
    offered = [v for v in versions if not _is_grease(v)]
    ja3 = ",".join((str(legacy_version),
                    "-".join(str(c) for c in ciphers if not _is_grease(c)),
                    "-".join(str(e) for e in extensions if not _is_grease(e)),
                    "-".join(str(g) for g in groups if not _is_grease(g)),
                    "-".join(str(f) for f in formats)))
    return ClientHello(sni, max(offered) if offered else legacy_version, tuple(alpn), ja3,
                       md5(ja3.encode(), usedforsecurity=False).hexdigest())
