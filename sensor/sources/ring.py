"""Our own AF_PACKET TPACKET_V3 ring (`capture.backend: ring`), beside libpcap's.

libpcap maps the same kind of ring and copies each frame out in C; here a
whole ring block is copied with one slice and Python walks the frame headers to
write the (sec, usec, offset, caplen) records the pipeline reads.
`tests/bench/bench_live.py` compares the two (docs/performance.md, "Live
capture"); libpcap is faster and stays the default.

Block and frame size are settings (`capture.ring`), the ring's size is
`capture.buffer_mib` as for libpcap; the
filter is compiled by libpcap (`pcapy.compile`, so both backends filter
identically) and attached with SO_ATTACH_FILTER. VLAN tags the kernel took
off are put back from the frame header (TP_STATUS_VLAN_VALID), as libpcap
does, by appending a rebuilt copy of that frame to the batch.
"""

from __future__ import annotations

import mmap
import socket
import struct
from pathlib import Path

import pcapy

from sensor.config import CaptureSettings
from sensor.core.decode.link import ethernet
from sensor.core.pipeline import FRAME_RECORD
from sensor.sources.capture import READ_TIMEOUT_MS, CaptureStats, Fanout
from sensor.sources.fanout import SOL_PACKET, attach_program, join_host_fanout
from sensor.sources.pcapfile import Batch, CaptureError

ETH_P_ALL = 0x0003
PACKET_ADD_MEMBERSHIP, PACKET_MR_PROMISC = 1, 1
PACKET_RX_RING, PACKET_STATISTICS, PACKET_VERSION, TPACKET_V3 = 5, 6, 10, 2
SO_ATTACH_FILTER = 26
TP_STATUS_KERNEL, TP_STATUS_USER, TP_STATUS_VLAN_VALID, TP_STATUS_VLAN_TPID_VALID = (
    0, 1, 1 << 4, 1 << 6)
_REQ3 = struct.Struct("=7I")         # block_size, block_nr, frame_size, frame_nr, tov, priv, feat
_BLOCK = struct.Struct("=8xIIII")    # block_status, num_pkts, offset_to_first_pkt, blk_len
# tpacket3_hdr: next offset, sec, nsec, snaplen, len, status, mac, net, rxhash, vlan tci, tpid
_FRAME = struct.Struct("=IIIIIIHHIIH")
_STATS = struct.Struct("=III")       # tp_packets, tp_drops, tp_freeze_q_cnt
_MREQ = struct.Struct("=iHH8s")      # ifindex, type, alen, address
_ETHERNET_TYPES = {"1", "772"}       # ARPHRD_ETHER, ARPHRD_LOOPBACK


class RingCapture:
    def __init__(self, interface: str, bpf_filter: str, settings: CaptureSettings,
                 fanout: Fanout | None = None) -> None:
        self.interface = interface
        self.link = ethernet
        ring = settings.ring
        blocks = max(2, settings.buffer_mib * 1024 // ring.block_kib)
        kind = Path(f"/sys/class/net/{interface}/type")
        if not kind.exists():
            raise CaptureError(f"cannot capture on {interface}: no such interface "
                               f"(see `ip link` for the interface names)")
        if kind.read_text().strip() not in _ETHERNET_TYPES:
            raise CaptureError(f"{interface}: capture.backend ring handles Ethernet "
                               f"interfaces only; use backend libpcap")
        try:
            program = pcapy.compile(pcapy.DLT_EN10MB, settings.snaplen, bpf_filter or "", 1,
                                    0xFFFFFFFF).get_bpf() if bpf_filter else None
        except pcapy.PcapError as err:
            raise CaptureError(f"{interface}: bad filter: {err}") from None
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        except PermissionError:
            raise CaptureError(f"cannot capture on {interface}: needs root or "
                               f"CAP_NET_RAW") from None
        try:
            if program is not None:     # before bind: no unfiltered frame gets in
                attach_program(sock, socket.SOL_SOCKET, SO_ATTACH_FILTER,
                               b"".join(struct.pack("=HBBI", *i) for i in program))
            sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
            frames = ring.block_kib * 1024 // ring.frame_size * blocks
            sock.setsockopt(SOL_PACKET, PACKET_RX_RING, _REQ3.pack(
                ring.block_kib * 1024, blocks, ring.frame_size, frames, READ_TIMEOUT_MS, 0, 0))
            self._map = mmap.mmap(sock.fileno(), ring.block_kib * 1024 * blocks,
                                  mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            sock.bind((interface, ETH_P_ALL))
            if settings.promiscuous:
                sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, _MREQ.pack(
                    socket.if_nametoindex(interface), PACKET_MR_PROMISC, 0, b""))
            if fanout is not None:
                join_host_fanout(sock.fileno(), *fanout)
        except OSError as err:
            sock.close()
            raise CaptureError(f"cannot capture on {interface}: {err.strerror}") from None
        sock.setblocking(False)
        self._socket = sock
        self.fd = sock.fileno()
        self._block_size = ring.block_kib * 1024
        self._blocks = blocks
        self._next = 0
        self._stats = CaptureStats()

    def read(self) -> Batch | None:
        """The frames of the next block the kernel has handed over, or None."""
        ring, base = self._map, self._next * self._block_size
        status, count, first, length = _BLOCK.unpack_from(ring, base)
        if not status & TP_STATUS_USER:
            return None
        data = ring[base:base + min(length, self._block_size)]
        ring[base + 8:base + 12] = b"\0\0\0\0"          # block_status = TP_STATUS_KERNEL
        self._next = (self._next + 1) % self._blocks
        records, extra = bytearray(), bytearray()
        pack, unpack = FRAME_RECORD.pack, _FRAME.unpack_from
        offset = first
        for _ in range(count):
            step, sec, nsec, caplen, _, status, mac, _, _, tci, tpid = unpack(data, offset)
            start = offset + mac
            if status & TP_STATUS_VLAN_VALID:
                tag = struct.pack("!HH", tpid if status & TP_STATUS_VLAN_TPID_VALID
                                  else 0x8100, tci & 0xFFFF)
                frame = data[start:start + 12] + tag + data[start + 12:start + caplen]
                records += pack(sec, nsec // 1000, len(data) + len(extra), len(frame))
                extra += frame
            else:
                records += pack(sec, nsec // 1000, start, caplen)
            offset += step
        self._stats.received += count
        if not records:
            return None
        return (data + bytes(extra) if extra else data), bytes(records), self.link

    def stats(self) -> CaptureStats:
        _, drops, _ = _STATS.unpack(
            self._socket.getsockopt(SOL_PACKET, PACKET_STATISTICS, _STATS.size))
        self._stats.dropped += drops          # the kernel resets its counters on each read
        return CaptureStats(self._stats.received, self._stats.dropped, 0)

    def close(self) -> None:
        self._map.close()
        self._socket.close()
