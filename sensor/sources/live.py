"""Live capture from a network interface: libpcap's TPACKET_V3 ring, or scapy.

`LibpcapCapture` is the default: libpcap (through pcapy-ng, the binding replay
uses) maps an AF_PACKET TPACKET_V3 ring, compiles the filter expression and
attaches it to the socket, so the kernel drops filtered-out packets before they
are copied; VLAN tags that the kernel strips are put back by libpcap from the
ring's metadata. Frames leave in batches of packed (sec, usec, offset, caplen)
records, exactly as from a capture file, so the pipeline cannot tell live from
replay. The handle is non-blocking: the caller waits on `fd` with select(), which
releases the GIL for the uplink thread. Several handles on one interface share
the load through PACKET_FANOUT, keyed by internal host (see `fanout.py`).

`RingCapture` (`ring.py`, `capture.backend: ring`) is our own TPACKET_V3 ring,
measured against libpcap's and slower in Python (docs/performance.md). What every
backend shares is in `capture.py`.

`ScapyCapture` is the fallback for kernels or platforms where libpcap cannot map
a ring; it reads one frame per system call and is much slower. It is used only
when configured (`capture.backend: scapy`).
"""

from __future__ import annotations

import struct
import time

import pcapy

from sensor.config import CaptureSettings, filter_for_link
from sensor.core.pipeline import FRAME_RECORD
from sensor.sources.capture import READ_TIMEOUT_MS, CaptureStats, Fanout, LiveCapture
from sensor.sources.fanout import join_host_fanout
from sensor.sources.pcapfile import Batch, CaptureError, decoder_for
from sensor.sources.ring import RingCapture

SOL_PACKET, PACKET_STATISTICS = 263, 6
_TPACKET_STATS = struct.Struct("=II")      # tp_packets, tp_drops (reset by each read)


class LibpcapCapture:
    def __init__(self, interface: str, bpf_filter: str, settings: CaptureSettings,
                 fanout: Fanout | None = None) -> None:
        self.interface = interface
        self.batch_packets = settings.batch_packets
        try:
            handle = pcapy.create(interface)
            handle.set_snaplen(settings.snaplen)
            handle.set_promisc(int(settings.promiscuous))
            handle.set_timeout(READ_TIMEOUT_MS)
            handle.set_buffer_size(settings.buffer_mib << 20)
            handle.activate()
        except pcapy.PcapError as err:
            raise CaptureError(f"cannot capture on {interface}: {_explain(err)}") from None
        try:
            if bpf_filter:
                handle.setfilter(filter_for_link(bpf_filter, handle.datalink()))
            if fanout is not None:
                join_host_fanout(handle.getfd(), *fanout)
            handle.setnonblock(1)
            self.link = decoder_for(handle.datalink())
        except (pcapy.PcapError, OSError, CaptureError) as err:
            handle.close()
            raise CaptureError(f"{interface}: {err}") from None
        self.fd = handle.getfd()
        self._handle = handle

    def read(self) -> Batch | None:
        """The frames waiting in the ring (up to a batch), or None when there are none."""
        data, records = self._handle.next_batch(self.batch_packets)
        return (data, records, self.link) if records else None

    def stats(self) -> CaptureStats:
        received, dropped, ifdropped = self._handle.stats()
        return CaptureStats(received, dropped, ifdropped)

    def close(self) -> None:
        self._handle.close()


class ScapyCapture:
    """One frame per recv() through scapy's AF_PACKET socket; the filter is still
    compiled by libpcap and run by the kernel."""

    def __init__(self, interface: str, bpf_filter: str, settings: CaptureSettings,
                 fanout: Fanout | None = None) -> None:
        from scapy.arch.linux import L2ListenSocket
        from scapy.error import Scapy_Exception

        if fanout is not None:
            raise CaptureError("capture.backend scapy has no fanout: use workers: 1")
        self.interface = interface
        self.batch_packets = settings.batch_packets
        try:
            self._socket = L2ListenSocket(iface=interface, filter=bpf_filter or None,
                                          promisc=settings.promiscuous)
        except (OSError, Scapy_Exception) as err:
            raise CaptureError(f"cannot capture on {interface}: {err}") from None
        self._socket.ins.setblocking(False)
        self.fd = self._socket.fileno()
        self.link = decoder_for(1)      # scapy's AF_PACKET socket gives Ethernet frames
        self._snaplen = settings.snaplen
        self._stats = CaptureStats()

    def read(self) -> Batch | None:
        data, records = bytearray(), bytearray()
        receive = self._socket.ins.recv
        for _ in range(self.batch_packets):
            try:
                frame = receive(self._snaplen)
            except BlockingIOError:
                break
            now = time.time()
            second = int(now)
            records += FRAME_RECORD.pack(second, int((now - second) * 1e6), len(data),
                                         len(frame))
            data += frame
        if not records:
            return None
        self._stats.received += len(records) // FRAME_RECORD.size
        return bytes(data), bytes(records), self.link

    def stats(self) -> CaptureStats:
        raw = self._socket.ins.getsockopt(SOL_PACKET, PACKET_STATISTICS, _TPACKET_STATS.size)
        _, drops = _TPACKET_STATS.unpack(raw)
        self._stats.dropped += drops
        return CaptureStats(self._stats.received, self._stats.dropped, 0)

    def close(self) -> None:
        self._socket.close()


def _backend(name: str) -> type:
    return {"libpcap": LibpcapCapture, "scapy": ScapyCapture, "ring": RingCapture}[name]


def open_captures(interfaces: list[str], bpf_filter: str, settings: CaptureSettings,
                  fanout: Fanout | None) -> list[LiveCapture]:
    """One capture per interface (each interface its own fanout group, numbered on from
    the given one); on error, those already open are closed."""
    opened: list[LiveCapture] = []
    try:
        for interface in interfaces:
            group = None if fanout is None else (fanout[0] + len(opened), fanout[1])
            opened.append(_backend(settings.backend)(interface, bpf_filter, settings, group))
    except CaptureError:
        for capture in opened:
            capture.close()
        raise
    return opened


def _explain(err: pcapy.PcapError) -> str:
    text = str(err)
    if "No such device" in text:
        return f"{text} (see `ip link` for the interface names)"
    if "ermission" in text or "not permitted" in text:
        return f"{text} (needs root or CAP_NET_RAW)"
    return text
