#!/usr/bin/env python3
"""Record pcaps/tunnels/vxlan-kernel.pcap: a real kernel VXLAN tunnel between two
network namespaces made for the purpose, an infected host inside it (glibc's resolver
asking for a listed name, bash's /dev/tcp connecting to a listed address), tcpdump on
the underlay. The tunnel and the traffic are `tests.daemon.netns.VxlanWire`'s, the same
the live test runs. Needs root; every address is made up inside the namespaces.

Run: sudo .venv/bin/python pcaps/capture_vxlan.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.daemon.netns import VxlanWire  # noqa: E402


def main() -> None:
    path = ROOT / "pcaps" / "tunnels" / "vxlan-kernel.pcap"
    with VxlanWire() as wire, wire.recording(path):
        wire.infected_host()
    print(f"{path.relative_to(ROOT)}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
