"""Capture files (pcap, pcapng, gzip-compressed either) read by libpcap.

libpcap (through pcapy-ng) parses the file and applies the `--filter`
expression in C, so filtered-out packets never reach Python and replay
filters exactly as live capture does. Frames come out in batches of packed
(sec, usec, offset, caplen) records, the layout `Pipeline.feed_batch` takes.
A gzip file is decompressed by a child process into a pipe that libpcap reads
as it would a file (a thread would deadlock: libpcap's blocking read holds the
GIL). A truncated last record is a warning: every packet before it is kept.
A pcapng file mixing link types, which libpcap refuses, is read by
`pcapng_mixed` instead. Each batch comes with the link decoder of its frames.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pcapy

from sensor.config import filter_for_link
from sensor.core.decode.link import LinkDecoder, link_decoder
from sensor.core.pipeline import FRAME_RECORD
from sensor.sources.pcapng_mixed import PcapngError, pcapng_frames

BATCH_PACKETS = 2048
_GZIP_MAGIC = b"\x1f\x8b"
_ONE_RECORD = 16
_MIXED_LINK_TYPES = "different from the type of the first interface"   # libpcap's words
Batch = tuple[bytes, bytes, LinkDecoder]
_LINKTYPE_TO_DLT = {101: 12}      # pcapng's LINKTYPE_RAW is DLT_RAW to libpcap on Linux


class CaptureError(Exception):
    """A file that cannot be read as a capture; the message is one line."""


def decoder_for(linktype: int) -> LinkDecoder:
    decoder = link_decoder(linktype)
    if decoder is None:
        raise CaptureError(f"unsupported link type {linktype}")
    return decoder


_GUNZIP = ("import gzip, os, shutil, sys\n"
           "try:\n"
           "    source = gzip.open(os.fdopen(int(sys.argv[1]), 'rb'))\n"
           "    shutil.copyfileobj(source, sys.stdout.buffer, 1 << 20)\n"
           "except (OSError, EOFError):\n"
           "    pass  # reader gone, or a corrupt/cut gzip: libpcap sees the end of data\n")


def file_size(path: Path) -> int:
    """Bytes on disk (0 for a file that cannot be read: it is reported when opened)."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


class CaptureFile:
    """One capture file; iterate `batches()` for (data, records) pairs."""

    def __init__(self, path: Path, bpf_filter: str | None = None) -> None:
        self.path = path
        self.bpf_filter = bpf_filter
        self.warning = ""
        self._gunzip: subprocess.Popen | None = None
        self._source: BinaryIO | None = None       # the .gz file, shared with gunzip
        self._position_fd: int | None = None       # whose offset is how far reading got
        handle = self._open()
        self.linktype = handle.datalink()
        self._close(handle)
        self.link: LinkDecoder = decoder_for(self.linktype)

    def _open(self) -> pcapy.Reader:
        try:
            compressed = self._compressed()
        except OSError as err:
            raise CaptureError(f"cannot read: {err.strerror}") from None
        try:
            if compressed:
                self._stop_gunzip()
                self._source = open(self.path, "rb")   # noqa: SIM115 (closed in _stop_gunzip)
                fd = self._source.fileno()
                self._gunzip = subprocess.Popen([sys.executable, "-c", _GUNZIP, str(fd)],
                                                stdout=subprocess.PIPE, pass_fds=(fd,))
                handle = pcapy.open_offline(f"/dev/fd/{self._gunzip.stdout.fileno()}")
                self._gunzip.stdout.close()    # libpcap holds its own descriptor now
                self._position_fd = fd         # one file description: gunzip's offset
            else:
                handle = pcapy.open_offline(str(self.path))
                self._position_fd = handle.getfd()
        except pcapy.PcapError as err:
            raise CaptureError(f"not a capture file ({err})") from None
        if self.bpf_filter:
            try:
                handle.setfilter(filter_for_link(self.bpf_filter, handle.datalink()))
            except pcapy.PcapError as err:
                raise CaptureError(f"bad filter {self.bpf_filter!r}: {err}") from None
        return handle

    def _stop_gunzip(self) -> None:
        if self._gunzip is not None:
            self._gunzip.kill()
            self._gunzip.wait()
            self._gunzip = None
        if self._source is not None:
            self._source.close()
            self._source = None

    def _close(self, handle: pcapy.Reader) -> None:
        self._position_fd = None
        handle.close()
        self._stop_gunzip()

    def position(self) -> int:
        """Bytes of the file read so far (of `file_size`; compressed bytes for .gz), for
        a progress bar; read-ahead makes it run a buffer ahead of the packets."""
        if self._position_fd is None:
            return 0
        try:
            return os.lseek(self._position_fd, 0, os.SEEK_CUR)
        except OSError:
            return 0

    def batches(self, batch_packets: int = BATCH_PACKETS) -> Iterator[Batch]:
        handle = self._open()
        done = 0
        try:
            while True:
                data, records = handle.next_batch(batch_packets)
                if not records:
                    return
                done += len(records) // _ONE_RECORD
                yield data, records, self.link
        except pcapy.PcapError as err:
            self._close(handle)
            if _MIXED_LINK_TYPES in str(err):
                yield from self._mixed(done, batch_packets)
            else:
                # libpcap drops the whole batch on a cut-short record: read the rest singly.
                yield from self._tail(done)
        finally:
            self._close(handle)

    def _mixed(self, skip: int, batch_packets: int) -> Iterator[Batch]:
        """The rest of a pcapng file whose interfaces differ in link type."""
        filters: dict[int, object] = {}
        data, records, batch_type = bytearray(), bytearray(), -1

        def flush() -> Batch:
            batch = (bytes(data), bytes(records), decoder_for(batch_type))
            data.clear()
            records.clear()
            return batch

        compressed = self._compressed()
        try:
            with open(self.path, "rb") as raw, (gzip.open(raw) if compressed else raw) as stream:
                self._position_fd = raw.fileno()
                for linktype, ts, frame in pcapng_frames(stream):
                    if self.bpf_filter and not self._passes(filters, linktype, frame):
                        continue
                    if skip:
                        skip -= 1
                        continue
                    if records and (linktype != batch_type or
                                    len(records) // _ONE_RECORD == batch_packets):
                        yield flush()
                    batch_type = linktype
                    second = int(ts)
                    records += FRAME_RECORD.pack(second, round((ts - second) * 1e6), len(data),
                                                 len(frame))
                    data += frame
        except (PcapngError, EOFError, OSError) as err:
            self.warning = f"{err}; the packets before it were processed"
        self._position_fd = None
        if records:
            yield flush()

    def _passes(self, filters: dict[int, object], linktype: int, frame: bytes) -> bool:
        program = filters.get(linktype)
        if program is None:
            datalink = _LINKTYPE_TO_DLT.get(linktype, linktype)
            try:
                program = filters[linktype] = pcapy.compile(
                    datalink, 65535, filter_for_link(self.bpf_filter, datalink), 1, 0xFFFFFFFF)
            except pcapy.PcapError as err:
                raise CaptureError(f"bad filter {self.bpf_filter!r} for link type "
                                   f"{linktype}: {err}") from None
        return bool(program.filter(frame))

    def _compressed(self) -> bool:
        with open(self.path, "rb") as probe:
            return probe.read(2) == _GZIP_MAGIC

    def _tail(self, skip: int) -> Iterator[Batch]:
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
                yield data, records, self.link
        finally:
            self._close(handle)
