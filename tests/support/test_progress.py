"""Replay's progress bar: bytes read of the total and packets per second on a terminal,
nothing when stderr is a pipe or a file; the read position comes from the capture file
itself, plain or gzip-compressed."""

from __future__ import annotations

import gzip
import io
import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sensor.sources.pcapfile import CaptureFile
from sensor.support.progress import Progress, format_progress
from tests.conftest import PCAPS, ROOT


def test_the_line_says_share_bytes_rate_and_file() -> None:
    assert format_progress(12_300_000, 29_000_000, 370_008, 2.0, "office.pcap") == (
        "[==========>             ]  42%  12.3/29.0 MB  185,004 pkt/s  office.pcap")
    assert format_progress(5, 5, 10, 1.0, "a").startswith("[========================] 100%")
    assert format_progress(0, 0, 0, 0.0, "a").startswith("[========================] 100%")
    assert "  - pkt/s" in format_progress(0, 10, 0, 0.0, "a")


def test_redrawn_at_most_five_times_a_second_and_wiped_at_the_end() -> None:
    now = [100.0]
    out = io.StringIO()
    progress = Progress(out, 1000, clock=lambda: now[0])
    for step in range(20):                 # 20 batches in 1 s
        progress.update(step * 50, step * 100, "f.pcap")
        now[0] += 0.05
    assert 4 <= out.getvalue().count("\r[") <= 5     # every 0.2 s, not 20 times
    progress.close()
    assert out.getvalue().endswith("\r" + " " * len(out.getvalue().split("\r")[-2]) + "\r")


@pytest.mark.parametrize("name", ["office.pcap", "office-vlan.pcapng", "office.pcap.gz"])
def test_the_read_position_grows_to_the_file_size(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name.endswith(".gz"):
        with open(PCAPS / "office.pcap", "rb") as plain, gzip.open(path, "wb") as packed:
            shutil.copyfileobj(plain, packed)
    else:
        shutil.copy(PCAPS / name, path)
    capture = CaptureFile(path)
    positions = [capture.position() for _ in capture.batches(256)]
    assert positions == sorted(positions) and positions[-1] == path.stat().st_size
    assert capture.position() == 0          # closed


def replay_stderr(terminal: bool) -> bytes:
    command = [sys.executable, "-m", "sensor", "replay", "--eve", os.devnull,
               str(PCAPS / "office.pcap"), str(PCAPS / "office-vlan.pcapng")]
    if not terminal:
        return subprocess.run(command, capture_output=True, cwd=ROOT, check=True).stderr
    leader, follower = pty.openpty()
    process = subprocess.Popen(command, stderr=follower, stdout=subprocess.DEVNULL, cwd=ROOT)
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:                     # EIO: the replay closed the terminal
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    assert process.wait() == 0
    return output


def test_a_bar_on_a_terminal_and_none_in_a_pipe() -> None:
    on_terminal = replay_stderr(terminal=True).decode()
    assert "\r[" in on_terminal and "pkt/s  office.pcap" in on_terminal
    assert " MB " in on_terminal
    piped = replay_stderr(terminal=False).decode()
    assert "\r" not in piped and "pkt/s  office" not in piped
    # The summary is the same either way once the bar is wiped (but for its timing).
    summary = on_terminal.replace("\r\n", "\n").split("\r")[-1]
    assert summary.splitlines()[1:] == piped.splitlines()[1:]
