"""`madoc-sensor doctor`: check a host before (or after) installing the sensor.

Each check reads the same configuration the daemon would and tries the real
thing where it can (opens a TPACKET_V3 socket, binds to conntrack's event
groups, loads the rules, asks the collector who this token is), so a green
doctor means the daemon will start. Nothing is changed on the host.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

from sensor.config import SensorConfig
from sensor.daemon.privileges import CAP_NET_ADMIN, CAP_NET_RAW, PrivilegeError, service_account
from sensor.support.checks import (
    FAIL,
    OK,
    WARN,
    Finding,
    check_listen,
    check_service,
    print_findings,
    unit_for,
)

_SOL_PACKET, _PACKET_VERSION, _TPACKET_V3 = 263, 10, 2
_IFF_UP = 0x1
_NAMES = {CAP_NET_RAW: "CAP_NET_RAW", CAP_NET_ADMIN: "CAP_NET_ADMIN"}


def effective_capabilities(status: str) -> int:
    """The CapEff mask from the text of /proc/self/status."""
    for line in status.splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def check_capabilities(config: SensorConfig) -> Iterator[Finding]:
    needed = (CAP_NET_RAW, CAP_NET_ADMIN) if config.mode == "gateway" else (CAP_NET_RAW,)
    have = effective_capabilities(Path("/proc/self/status").read_text())
    missing = [_NAMES[c] for c in needed if not have >> c & 1]
    if missing:
        yield Finding(FAIL, "capabilities", f"this process lacks {' '.join(missing)}: run "
                      "doctor as root (the daemon starts as root, or as the service user with "
                      "the unit's AmbientCapabilities)")
    else:
        yield Finding(OK, "capabilities", " ".join(_NAMES[c] for c in needed))
    if os.geteuid() == 0 and config.user != "root":
        try:
            service_account(config.user)
            yield Finding(OK, "user", f"{config.user} exists (root is given up for it)")
        except PrivilegeError as err:
            yield Finding(FAIL, "user", str(err))


def check_tpacket_v3() -> Iterator[Finding]:
    try:
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as sock:
            sock.setsockopt(_SOL_PACKET, _PACKET_VERSION, _TPACKET_V3)
    except PermissionError:
        yield Finding(FAIL, "kernel: AF_PACKET", "cannot open a packet socket without "
                      "CAP_NET_RAW")
    except OSError as err:
        yield Finding(FAIL, "kernel: AF_PACKET", f"no TPACKET_V3 ring ({err.strerror}): "
                      "use capture.backend: scapy, or a kernel from 3.2 on")
    else:
        yield Finding(OK, "kernel: AF_PACKET", "packet sockets with TPACKET_V3 rings")


def check_conntrack(config: SensorConfig) -> Iterator[Finding]:
    from sensor.sources.conntrack import SYSCTL, ConntrackSource, ConntrackUnavailable

    if config.mode != "gateway":
        state = "loaded" if (SYSCTL / "nf_conntrack_acct").exists() else "not loaded"
        yield Finding(OK, "kernel: conntrack", f"{state} (only mode: gateway uses it)")
        return
    try:
        source = ConntrackSource(config.conntrack.receive_buffer_mib)
    except ConntrackUnavailable as err:
        yield Finding(FAIL, "kernel: conntrack", str(err))
        return
    source.close()
    if source.accounting:
        yield Finding(OK, "kernel: conntrack", "events readable, byte counters on")
    elif config.conntrack.accounting:
        yield Finding(WARN, "kernel: conntrack", "nf_conntrack_acct is off: the daemon turns "
                      "it on at start when root; under systemd set it in /etc/sysctl.d "
                      "(deploy/sysctl.d/madoc.conf)")
    else:
        yield Finding(WARN, "kernel: conntrack", "nf_conntrack_acct is off and "
                      "conntrack.accounting: false: flows will have no byte counts")


def check_interfaces(config: SensorConfig) -> Iterator[Finding]:
    present = sorted(name for _, name in socket.if_nameindex())
    for name in config.interfaces:
        what = f"interface {name}"
        base = Path("/sys/class/net") / name
        if name not in present:
            yield Finding(FAIL, what, f"not found (here: {', '.join(present)})")
            continue
        flags = int((base / "flags").read_text(), 16)
        state = (base / "operstate").read_text().strip()
        if not flags & _IFF_UP:
            yield Finding(FAIL, what, f"is down: ip link set {name} up")
        elif state not in ("up", "unknown"):
            yield Finding(WARN, what, f"is up but its link is {state} (cable, or the mirror "
                          "port not configured on the switch?)")
        else:
            yield Finding(OK, what, f"up, link {state}")


def check_rules(config: SensorConfig) -> Iterator[Finding]:
    from sensor.blocklist.loader import RulesError, load_blocklist

    what = "rules " + ", ".join(map(str, config.rules))
    try:
        blocklist, report = load_blocklist(config.rules)
    except RulesError as err:
        yield Finding(FAIL, what, str(err))
        return
    for source in report.sources:
        if source.error:
            yield Finding(FAIL, what, f"source {source.source.name} ({source.source.path}): "
                          f"{source.error}")
    warnings = len(report.warnings) - sum(bool(s.error) for s in report.sources)
    if warnings:
        yield Finding(WARN, what, f"{warnings} rejected lines or notes (madoc-sensor rules "
                      "check shows them)")
    if not report.failed:
        yield Finding(OK, what, f"{len(blocklist.domains):,} names, "
                      f"{len(blocklist.addresses):,} addresses from "
                      f"{len(report.sources)} sources")


def check_state_dir(config: SensorConfig) -> Iterator[Finding]:
    directory = config.state_dir
    existing = directory
    while not existing.exists():
        existing = existing.parent
    if os.access(existing, os.W_OK):
        detail = "writable" if existing == directory else f"will be made in {existing}"
        yield Finding(OK, f"state directory {directory}", detail)
    else:
        yield Finding(FAIL, f"state directory {directory}", f"{existing} is not writable")


def check_collector(config: SensorConfig) -> Iterator[Finding]:
    from sensor.uplink.backfill import ask_identity
    from sensor.uplink.channel import uplink_config
    from sensor.uplink.sender import UplinkError

    settings = config.collector
    if settings is None:
        yield Finding(OK, "collector", "none configured (EVE log only)")
        return
    what = f"collector {settings.url}"
    try:
        name, unit = ask_identity(uplink_config(settings, timeout=10.0))
    except UplinkError as err:
        yield Finding(FAIL, what, str(err))
        return
    if config.sensor_id and config.sensor_id != name:
        yield Finding(FAIL, what, f"the token belongs to sensor {name!r}, but sensor.id is "
                      f"{config.sensor_id!r}")
    else:
        yield Finding(OK, what, f"reachable; the token is sensor {name!r} of unit {unit!r}")


def findings(config: SensorConfig) -> Iterator[Finding]:
    yield from check_capabilities(config)
    yield from check_tpacket_v3()
    yield from check_conntrack(config)
    yield from check_interfaces(config)
    yield from check_rules(config)
    yield from check_state_dir(config)
    yield from check_collector(config)
    yield from check_listen("metrics", config.metrics_listen, "the sensor")
    if config.source != "(defaults)":
        yield from check_service(unit_for("madoc-sensor", Path(config.source)))


def doctor(config: SensorConfig) -> int:
    """Print one line per finding; 1 if anything failed."""
    return print_findings("madoc-sensor", findings(config), config.source)
