"""What both programs' `doctor` share: a finding, the unit's state, the printout."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sensor.support.paths import instance_of
from sensor.support.yamlconf import host_port

OK, WARN, FAIL = "ok", "warn", "FAIL"


@dataclass(frozen=True)
class Finding:
    level: str          # ok, warn, FAIL
    what: str
    detail: str


def unit_for(program: str, config: Path) -> str:
    """The systemd unit that runs `program` with this configuration: NAME.yaml's own
    unit, SENSOR-INSTANCE.yaml's template instance (madoc-sensor@eth1 reads
    /etc/madoc/sensor-eth1.yaml)."""
    instance = instance_of(config, program.removeprefix("madoc-"))
    return f"{program}@{instance}.service" if instance else f"{program}.service"


def check_service(unit: str) -> Iterator[Finding]:
    """Installed, enabled, running: said, never failed (doctor runs before the first
    start too). Nothing when systemd is not the init system."""
    if not Path("/run/systemd/system").is_dir() or not shutil.which("systemctl"):
        return

    def state(verb: str) -> str:
        done = subprocess.run(["systemctl", verb, unit], capture_output=True, text=True,
                              check=False)
        return done.stdout.strip() or done.stderr.strip()

    enabled, active = state("is-enabled"), state("is-active")
    if active == "active":
        yield Finding(OK, f"service {unit}", f"running ({enabled})")
    elif enabled in ("enabled", "static", "indirect"):
        yield Finding(WARN, f"service {unit}", f"{enabled} but {active}: journalctl -u "
                      f"{unit} says why")
    elif "not-found" in enabled or "No such file" in enabled:
        yield Finding(WARN, f"service {unit}", "not installed")
    else:
        yield Finding(OK, f"service {unit}", f"installed, {enabled}, {active}: once this "
                      f"doctor passes, systemctl enable --now {unit}")


def print_findings(program: str, findings: Iterable[Finding], source: str) -> int:
    """One line per finding, a verdict on stderr; 1 if anything failed."""
    failed = warned = 0
    for finding in findings:
        print(f"{finding.level:<4}  {finding.what}: {finding.detail}", flush=True)
        failed += finding.level == FAIL
        warned += finding.level == WARN
    verdict = "ready to run" if not failed else "fix the FAIL lines before starting"
    print(f"{program} doctor: {failed} failed, {warned} warnings ({source}): {verdict}",
          file=sys.stderr)
    return 1 if failed else 0


def check_listen(what: str, listen: str | None, program: str) -> Iterator[Finding]:
    """A listening address that the service will bind: free, or taken (by the service
    itself when it runs)."""
    if not listen:
        yield Finding(OK, what, "off")
        return
    host, port = host_port(listen) or ("", 0)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as err:
        yield Finding(WARN, what, f"cannot listen on {listen} ({err.strerror}): is "
                      f"{program} already running?")
    else:
        yield Finding(OK, what, f"{listen} is free")
