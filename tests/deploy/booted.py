"""A clean Debian 12 root file system with a real systemd booted in it, for the
package's tests.

The base root is made once by debootstrap (minbase, with systemd and dbus) and kept
in CACHE between runs; each test boots a copy. systemd-nspawn needs a system bus
these machines lack, so the copy is booted by hand: in new PID, mount and UTS
namespaces, the root is bind-mounted onto itself, /proc mounted and /sys and /dev
bound in, then `pivot_root` (not chroot: a chrooted process may not create the user
namespace `PrivateUsers=yes` needs) and systemd runs as PID 1. The network namespace
is the host's: the root reaches Debian's mirror for `apt install`, and its services
listen on the host's loopback. `nsenter` runs commands inside; killing PID 1 ends it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

CACHE = Path(os.environ.get("MADOC_TEST_CACHE", "/var/cache/madoc-test"))
BASE = CACHE / "bookworm-minbase"
MIRROR = "http://deb.debian.org/debian"
# Units that wait for a serial console or a tty this root never gets.
MASKED = ("serial-getty@.service", "getty@.service", "console-getty.service",
          "systemd-networkd-wait-online.service")
_BOOT = """set -e
root=$1
mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
cd "$root"
mkdir -p .oldroot
pivot_root . .oldroot
umount -l /.oldroot
rmdir /.oldroot
exec /lib/systemd/systemd --system
"""


def require_tools() -> None:
    """Root and the tools, or a skip that says which is absent (under CI=true a skip
    fails: tests/conftest.py)."""
    if os.geteuid() != 0:
        pytest.skip("booting a Debian root needs root (CI runs as root)")
    missing = [t for t in ("debootstrap", "unshare", "nsenter") if not shutil.which(t)]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (.ci/run installs debootstrap; util-linux "
                    f"has the others)")


def base_root() -> Path:
    """The cached minimal Debian 12, made by debootstrap when missing (about a minute)."""
    stamp = BASE / ".madoc-complete"
    if not stamp.exists():
        shutil.rmtree(BASE, ignore_errors=True)
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(["debootstrap", "--variant=minbase",
                        "--include=systemd,systemd-sysv,dbus", "bookworm", str(BASE), MIRROR],
                       check=True, capture_output=True)
        for unit in MASKED:
            (BASE / "etc/systemd/system" / unit).symlink_to("/dev/null")
        stamp.touch()
    return BASE


class BootedRoot:
    """A copy of the base root at `path`, booted; `run` executes bash inside it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        subprocess.run(["cp", "-a", str(base_root()), str(path)], check=True)
        shutil.copy("/etc/resolv.conf", path / "etc/resolv.conf")
        self._unshare = subprocess.Popen(
            ["unshare", "--fork", "--pid", "--mount", "--uts", "--propagation", "private",
             "bash", "-c", _BOOT, "boot", str(path)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        self.pid = self._init_pid()
        self._wait_for_boot()

    def _init_pid(self) -> int:
        """The host's pid of the root's PID 1 (unshare's child, once it is systemd)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            children = Path(f"/proc/{self._unshare.pid}/task/{self._unshare.pid}/children")
            for pid in children.read_text().split() if children.exists() else ():
                try:
                    if Path(f"/proc/{pid}/comm").read_text().strip() == "systemd":
                        return int(pid)
                except OSError:
                    continue
            if self._unshare.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError("systemd did not start as PID 1 of the root")

    def _wait_for_boot(self) -> None:
        deadline = time.monotonic() + 90
        state = ""
        while time.monotonic() < deadline:
            state = self.run("systemctl is-system-running || true").stdout.strip()
            if state in ("running", "degraded"):
                return
            time.sleep(0.5)
        raise AssertionError(f"the root's systemd did not finish booting: {state!r}")

    def run(self, script: str, check: bool = False,
            timeout: float = 600) -> subprocess.CompletedProcess:
        """bash -euo pipefail inside the root, as root, in /root."""
        return subprocess.run(
            ["nsenter", "-t", str(self.pid), "-a", "-r", "-w", "bash", "-euo", "pipefail",
             "-c", f"cd /root\n{script}"],
            capture_output=True, text=True, check=check, timeout=timeout,
            env={"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                 "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive", "HOME": "/root"})

    def must(self, script: str, timeout: float = 600) -> str:
        """`run`, failing the test with what the commands printed when they fail."""
        done = self.run(script, timeout=timeout)
        assert done.returncode == 0, (f"exit {done.returncode} from:\n{script}\n"
                                      f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}")
        return done.stdout

    def stop(self) -> None:
        """Kill PID 1: the kernel ends every process of its namespace, and its mounts."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        self._unshare.wait(timeout=30)
        shutil.rmtree(self.path, ignore_errors=True)
