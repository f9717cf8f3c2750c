"""Give up root once the capture sockets are open.

Started as root, the daemon opens its sockets and files, then (1) removes every
capability but CAP_NET_RAW (and CAP_NET_ADMIN when it reads conntrack) from the
bounding set, (2) switches to the configured unprivileged user, keeping only
those capabilities, and (3) sets no_new_privs. Python has no capset(2), so it
is called through ctypes (the kernel's ABI, version 3 of the capability
structures). Started by systemd as the service user with ambient capabilities,
there is nothing to give up beyond what the unit already limits.
"""

from __future__ import annotations

import ctypes
import os
import pwd

CAP_NET_ADMIN, CAP_NET_RAW = 12, 13
_PR_SET_KEEPCAPS, _PR_CAPBSET_DROP, _PR_SET_NO_NEW_PRIVS = 8, 24, 38
_CAPABILITY_VERSION_3 = 0x20080522


class PrivilegeError(RuntimeError):
    pass


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise PrivilegeError(f"{what}: {os.strerror(errno)}")


def _last_capability() -> int:
    try:
        return int(open("/proc/sys/kernel/cap_last_cap").read())
    except OSError:
        return 40


def service_account(user: str) -> pwd.struct_passwd:
    """The account root is given up for, or an error that says how to make it."""
    try:
        return pwd.getpwnam(user)
    except KeyError:
        raise PrivilegeError(
            f"user {user!r} does not exist: create it with the shipped sysusers file (cp "
            f"deploy/systemd/madoc.sysusers.conf /etc/sysusers.d/madoc.conf && "
            f"systemd-sysusers) or useradd --system --no-create-home {user}, or name an "
            f"existing user in sensor.user (or --user)") from None


def drop_privileges(user: str, keep: tuple[int, ...]) -> str:
    """Become `user` with only the capabilities `keep`; returns what was done, for the log.
    Does nothing unless running as root; `user: root` keeps the uid but still drops
    the other capabilities."""
    if os.geteuid() != 0:
        return "not started as root: running with the privileges given"
    account = service_account(user)
    for cap in range(_last_capability() + 1):
        if cap not in keep:
            _check(_libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0), f"dropping capability {cap}")
    _check(_libc.prctl(_PR_SET_KEEPCAPS, 1, 0, 0, 0), "PR_SET_KEEPCAPS")
    if account.pw_uid != 0:
        os.setgroups([])
        os.setgid(account.pw_gid)
        os.setuid(account.pw_uid)
    mask = 0
    for cap in keep:
        mask |= 1 << cap
    header = _Header(_CAPABILITY_VERSION_3, 0)
    data = (_Data * 2)(_Data(mask, mask, 0), _Data(0, 0, 0))
    _check(_libc.capset(ctypes.byref(header), data), "capset")
    _check(_libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")
    names = {CAP_NET_RAW: "CAP_NET_RAW", CAP_NET_ADMIN: "CAP_NET_ADMIN"}
    return f"running as {user} with {' '.join(names[c] for c in keep) or 'no capabilities'}"
