"""QUIC Initial packets (RFC 9000 §17.2.2, RFC 9001 §5, RFC 9369): the client's ClientHello.

A client's first datagrams carry Initial packets protected with keys anyone can derive
from the Destination Connection ID and the version's published salt. `QuicInitials`
follows one UDP flow's client side: it removes header protection (AES-128-ECB on a
sample), decrypts each Initial (AES-128-GCM), gathers the CRYPTO frames by offset
(Chrome spreads its ClientHello over two packets) and, once the stream holds the whole
ClientHello, reads it as `decode/tls.py` does, with JA4's "q". Versions 1 and 2;
the ciphers and HKDF are the `cryptography` package's. At most `MAX_CRYPTO` bytes
and `MAX_PACKETS` packets per flow; anything malformed is a `quic.*` reason.
"""

from __future__ import annotations

from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

from sensor.core.decode.tls import MAX_HELLO, handshake_hello
from sensor.core.events import ClientHello

VERSION_1: Final = 0x00000001
VERSION_2: Final = 0x6B3343CF


def _label(label: bytes, length: int) -> bytes:
    """HKDF-Expand-Label's `info` (RFC 8446 §7.1) for `label` with an empty context."""
    full = b"tls13 " + label
    return length.to_bytes(2, "big") + bytes((len(full),)) + full + b"\x00"


class Version:
    """What a QUIC version's Initial keys are derived from (RFC 9001 §5.2, RFC 9369 §3.3):
    the initial salt and the labels' `info`, made once."""

    __slots__ = ("salt", "key_info", "iv_info", "hp_info", "initial_type")

    def __init__(self, salt: str, prefix: bytes, initial_type: int) -> None:
        self.salt = bytes.fromhex(salt)
        self.key_info = _label(prefix + b"key", 16)
        self.iv_info = _label(prefix + b"iv", 12)
        self.hp_info = _label(prefix + b"hp", 16)
        self.initial_type = initial_type    # the long header's type bits for Initial


VERSIONS: Final = {
    VERSION_1: Version("38762cf7f55934b34d179ae6a4c80cadccbb7f0a", b"quic ", 0),
    VERSION_2: Version("0dede3def700a6db819381be6e269dcbf9bd2ed9", b"quicv2 ", 1),
}
CLIENT_IN: Final = _label(b"client in", 32)
MIN_INITIAL: Final = 1200   # a client's Initial datagram is padded to this (RFC 9000 §14.1)
MAX_CRYPTO: Final = MAX_HELLO   # bytes of CRYPTO stream kept per flow
MAX_PACKETS: Final = 8      # Initial packets read per flow
FRAME_PADDING: Final = 0
FRAME_PING: Final = 1
FRAME_ACK: Final = 2
FRAME_ACK_ECN: Final = 3
FRAME_CRYPTO: Final = 6
FRAME_CLOSE: Final = 0x1C
SHA256: Final = hashes.SHA256()     # stateless: one instance serves every derivation
ECB: Final = modes.ECB()


def is_long_header(buf: bytes, off: int, end: int) -> bool:
    """Whether a UDP payload can start a client's QUIC connection: a long header with
    the fixed bit, in a datagram of the size clients pad their Initials to."""
    return end - off >= MIN_INITIAL and (buf[off] & 0xC0) == 0xC0


def _varint(buf: bytes, at: int, end: int) -> tuple[int, int]:
    """(value, next offset) of a variable-length integer (RFC 9000 §16); (-1, end) when
    it runs past `end`."""
    if at >= end:
        return -1, end
    size = 1 << (buf[at] >> 6)
    if at + size > end:
        return -1, end
    value = buf[at] & 0x3F
    for i in range(at + 1, at + size):
        value = (value << 8) | buf[i]
    return value, at + size


class InitialKeys:
    """The client's Initial keys for one Destination Connection ID (RFC 9001 §5.2): the
    AEAD, the IV as a number (each nonce is it XOR the packet number) and the header
    protection's AES-ECB."""

    __slots__ = ("aead", "iv", "mask")

    def __init__(self, version: Version, dcid: bytes) -> None:
        # HKDF-Extract(salt, DCID), then Expand-Label "client in": HKDF in one call
        client = HKDF(SHA256, 32, version.salt, CLIENT_IN).derive(dcid)
        self.aead = AESGCM(HKDFExpand(SHA256, 16, version.key_info).derive(client))
        self.iv = int.from_bytes(HKDFExpand(SHA256, 12, version.iv_info).derive(client), "big")
        self.mask = Cipher(algorithms.AES(HKDFExpand(SHA256, 16, version.hp_info)
                                          .derive(client)), ECB).encryptor()


def _initial_payload(buf: bytes, at: int, end: int, keys: dict[tuple[int, bytes], InitialKeys]
                     ) -> tuple[int, bytes, int] | str:
    """(version, decrypted payload, offset of the next coalesced packet) of the Initial
    packet at `at`, or why it is not one."""
    if at + 7 > end or (buf[at] & 0xC0) != 0xC0:
        return "quic.not_initial"
    version = int.from_bytes(buf[at + 1:at + 5], "big")
    known = VERSIONS.get(version)
    if known is None:
        return "quic.other_version"
    if (buf[at] >> 4) & 3 != known.initial_type:
        return "quic.not_initial"
    dcid_len = buf[at + 5]
    if dcid_len > 20 or at + 6 + dcid_len >= end:
        return "quic.bad_header"
    dcid = buf[at + 6:at + 6 + dcid_len]
    p = at + 6 + dcid_len
    p += 1 + buf[p]                                     # source connection ID
    token_len, p = _varint(buf, p, end)
    if token_len < 0:
        return "quic.bad_header"
    length, pn_at = _varint(buf, p + token_len, end)
    packet_end = pn_at + length
    if length < 20 or packet_end > end:
        return "quic.bad_header"
    key = (version, dcid)
    packet_keys = keys.get(key)
    if packet_keys is None:
        packet_keys = keys[key] = InitialKeys(known, dcid)
    mask = packet_keys.mask.update(buf[pn_at + 4:pn_at + 20])
    first = buf[at] ^ (mask[0] & 0x0F)
    pn_len = (first & 3) + 1
    pn = (int.from_bytes(buf[pn_at:pn_at + pn_len], "big")
          ^ int.from_bytes(mask[1:1 + pn_len], "big"))
    header = bytes((first,)) + buf[at + 1:pn_at] + pn.to_bytes(pn_len, "big")
    nonce = (packet_keys.iv ^ pn).to_bytes(12, "big")
    try:
        payload = packet_keys.aead.decrypt(nonce, buf[pn_at + pn_len:packet_end], header)
    except InvalidTag:
        return "quic.undecryptable"
    return version, payload, packet_end


class QuicInitials:
    """The client side of one UDP flow until its ClientHello is read."""

    __slots__ = ("keys", "crypto", "packets", "version")

    def __init__(self) -> None:
        self.keys: dict[tuple[int, bytes], InitialKeys] = {}
        self.crypto: dict[int, bytes] = {}        # CRYPTO frame data by stream offset
        self.packets = 0
        self.version = 0

    def feed(self, buf: bytes, off: int, end: int) -> ClientHello | str:
        """The ClientHello once whole; `quic.partial` while waiting; else why not."""
        at = off
        while at < end and (buf[at] & 0x80):              # coalesced long-header packets
            self.packets += 1
            if self.packets > MAX_PACKETS:
                return "quic.too_many_initials"
            read = _initial_payload(buf, at, end, self.keys)
            if isinstance(read, str):
                if at == off:
                    return read
                break                                   # a Handshake or 0-RTT packet after
            self.version, payload, at = read
            problem = self._frames(payload)
            if problem:
                return problem
        return self._hello()

    def _frames(self, payload: bytes) -> str:
        p, end = 0, len(payload)
        while p < end:
            kind = payload[p]
            if kind in (FRAME_PADDING, FRAME_PING):
                p += 1
            elif kind == FRAME_CRYPTO:
                offset, p = _varint(payload, p + 1, end)
                length, p = _varint(payload, p, end)
                if offset < 0 or length < 0 or p + length > end:
                    return "quic.bad_frame"
                if offset + length > MAX_CRYPTO:
                    return "quic.crypto_too_long"
                self.crypto[offset] = payload[p:p + length]
                p += length
            elif kind in (FRAME_ACK, FRAME_ACK_ECN):
                p = self._skip_ack(payload, p + 1, end, kind == FRAME_ACK_ECN)
                if p < 0:
                    return "quic.bad_frame"
            elif kind == FRAME_CLOSE:
                return "quic.closed"
            else:
                return "quic.bad_frame"                 # not allowed in an Initial
        return ""

    @staticmethod
    def _skip_ack(payload: bytes, p: int, end: int, ecn: bool) -> int:
        """The offset past an ACK frame's fields (largest acknowledged, delay, range
        count, first range, gap and length per range, and three ECN counts), or -1."""
        _, p = _varint(payload, p, end)
        _, p = _varint(payload, p, end)
        count, p = _varint(payload, p, end)
        if count < 0:
            return -1
        values = 1 + 2 * count + (3 if ecn else 0)      # first range, gaps and ranges, ECN
        for _ in range(values):
            value, p = _varint(payload, p, end)
            if value < 0:
                return -1
        return p

    def _hello(self) -> ClientHello | str:
        stream = b""
        for offset in sorted(self.crypto):              # frames may overlap when resent
            if offset > len(stream):
                break
            piece = self.crypto[offset]
            if offset + len(piece) > len(stream):
                stream += piece[len(stream) - offset:]
        hello = handshake_hello(stream, 0, len(stream), "q")
        if hello == "tls.partial":
            return "quic.partial"
        return hello
