"""pcapng files whose interfaces have different link types, which libpcap refuses.

libpcap reads a pcapng file only while every interface shares the first one's
link type; tshark reads them all (say, an Ethernet port and a raw-IP tunnel in
one capture). This small block reader takes over for those files: sections,
interface blocks (link type, snap length, timestamp resolution), enhanced and
simple packet blocks; every other block is skipped. The filter is still
compiled by libpcap, once per link type, and run by libpcap's BPF machine on
each frame, so it selects exactly what it selects elsewhere.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import BinaryIO

_SHB, _IDB, _SPB, _EPB = 0x0A0D0D0A, 0x00000001, 0x00000003, 0x00000006
_BYTE_ORDER_MAGIC = 0x1A2B3C4D
_OPT_TSRESOL = 9

Frame = tuple[int, float, bytes]        # link type, timestamp, frame bytes


class PcapngError(Exception):
    """The file is cut short or malformed; the frames before it were returned."""


def _interface(body: bytes, order: str) -> tuple[int, int, float]:
    """(link type, snap length, timestamp units per second) of an IDB body."""
    linktype, _, snaplen = struct.unpack_from(order + "HHI", body, 0)
    units = 1e6
    pos = 8
    while pos + 4 <= len(body):
        code, length = struct.unpack_from(order + "HH", body, pos)
        if code == 0:
            break
        if code == _OPT_TSRESOL and length >= 1:
            value = body[pos + 4]
            units = float(2 ** (value & 0x7F)) if value & 0x80 else float(10 ** value)
        pos += 4 + length + (-length % 4)
    return linktype, snaplen, units


def pcapng_frames(stream: BinaryIO) -> Iterator[Frame]:
    order = "<"
    interfaces: list[tuple[int, int, float]] = []
    while True:
        header = stream.read(8)
        if not header:
            return
        if len(header) < 8:
            raise PcapngError("cut short inside a block header")
        kind = struct.unpack("<I", header[:4])[0]
        if kind == _SHB:
            magic = stream.read(4)
            if len(magic) < 4:
                raise PcapngError("cut short inside a section header")
            order = "<" if struct.unpack("<I", magic)[0] == _BYTE_ORDER_MAGIC else ">"
            length = struct.unpack(order + "I", header[4:])[0]
            body = magic + stream.read(length - 12)
            interfaces = []
        else:
            length = struct.unpack(order + "I", header[4:])[0]
            if length < 12:
                raise PcapngError(f"block length {length} is too small")
            body = stream.read(length - 8)
        if len(body) < length - 8:
            raise PcapngError("cut short inside a block")
        body = body[:-4]                                # the trailing length copy
        if kind == _IDB:
            interfaces.append(_interface(body, order))
        elif kind == _EPB:
            iface, high, low, caplen, _ = struct.unpack_from(order + "IIIII", body, 0)
            if iface >= len(interfaces):
                raise PcapngError(f"packet on undeclared interface {iface}")
            linktype, _, units = interfaces[iface]
            yield linktype, ((high << 32) | low) / units, body[20:20 + caplen]
        elif kind == _SPB and interfaces:
            wire_length = struct.unpack_from(order + "I", body, 0)[0]
            linktype, snaplen, _ = interfaces[0]
            yield linktype, 0.0, body[4:4 + min(wire_length, snaplen or wire_length)]
