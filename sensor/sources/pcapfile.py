"""Capture files (pcap, pcapng, gzip-compressed either) read by libpcap.

libpcap (through pcapy-ng) parses the file and applies the `--filter`
expression in C, so filtered-out packets never reach Python and replay
filters exactly as live capture does. Frames come out in batches of packed
(sec, usec, offset, caplen) records, the layout `Pipeline.feed_batch` takes.
A gzip file is decompressed by a child process into a pipe that libpcap reads
as it would a file (a thread would deadlock: libpcap's blocking read holds the
GIL). A truncated last record is a warning: every packet before it is kept.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pcapy

from sensor.decode.link import LinkDecoder, link_decoder

BATCH_PACKETS = 2048
_GZIP_MAGIC = b"\x1f\x8b"
_ONE_RECORD = 16


class CaptureError(Exception):
    """A file that cannot be read as a capture; the message is one line."""


_GUNZIP = ("import gzip, shutil, sys\n"
           "try:\n"
           "    shutil.copyfileobj(gzip.open(sys.argv[1]), sys.stdout.buffer, 1 << 20)\n"
           "except (OSError, EOFError):\n"
           "    pass  # reader gone, or a corrupt/cut gzip: libpcap sees the end of data\n")


class CaptureFile:
    """One capture file; iterate `batches()` for (data, records) pairs."""

    def __init__(self, path: Path, bpf_filter: str | None = None) -> None:
        self.path = path
        self.bpf_filter = bpf_filter
        self.warning = ""
        self._gunzip: subprocess.Popen | None = None
        self.size = path.stat().st_size if path.exists() else 0
        handle = self._open()
        self.linktype = handle.datalink()
        self._close(handle)
        decoder = link_decoder(self.linktype)
        if decoder is None:
            raise CaptureError(f"unsupported link type {self.linktype}")
        self.link: LinkDecoder = decoder

    def _open(self) -> pcapy.Reader:
        try:
            with open(self.path, "rb") as probe:
                compressed = probe.read(2) == _GZIP_MAGIC
        except OSError as err:
            raise CaptureError(f"cannot read: {err.strerror}") from None
        try:
            if compressed:
                self._stop_gunzip()
                self._gunzip = subprocess.Popen([sys.executable, "-c", _GUNZIP, str(self.path)],
                                                stdout=subprocess.PIPE)
                handle = pcapy.open_offline(f"/dev/fd/{self._gunzip.stdout.fileno()}")
                self._gunzip.stdout.close()    # libpcap holds its own descriptor now
            else:
                handle = pcapy.open_offline(str(self.path))
        except pcapy.PcapError as err:
            raise CaptureError(f"not a capture file ({err})") from None
        if self.bpf_filter:
            try:
                handle.setfilter(self.bpf_filter)
            except pcapy.PcapError as err:
                raise CaptureError(f"bad filter {self.bpf_filter!r}: {err}") from None
        return handle

    def _stop_gunzip(self) -> None:
        if self._gunzip is not None:
            self._gunzip.kill()
            self._gunzip.wait()
            self._gunzip = None

    def _close(self, handle: pcapy.Reader) -> None:
        handle.close()
        self._stop_gunzip()

    def batches(self, batch_packets: int = BATCH_PACKETS) -> Iterator[tuple[bytes, bytes]]:
        handle = self._open()
        done = 0
        try:
            while True:
                data, records = handle.next_batch(batch_packets)
                if not records:
                    return
                done += len(records) // _ONE_RECORD
                yield data, records
        except pcapy.PcapError:
            # libpcap drops the whole batch on a cut-short record: read the rest one by one.
            self._close(handle)
            yield from self._tail(done)
        finally:
            self._close(handle)

    def _tail(self, skip: int) -> Iterator[tuple[bytes, bytes]]:
        handle = self._open()
        try:
            for _ in range(skip):
                handle.next()
            while True:
                try:
                    data, records = handle.next_batch(1)
                except pcapy.PcapError as err:
                    self.warning = f"{err}; the packets before it were processed"
                    return
                if not records:
                    return
                yield data, records
        finally:
            self._close(handle)
