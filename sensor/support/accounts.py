"""Root's admin commands act as the service whose state they touch.

A database, spool or secret that root creates or writes in a service's state
directory would be root's, and the service (which runs as its own user) could no
longer write it. So a command run as root takes the service user's group and user
as its *effective* ids before it opens any state (`act_as`): what it creates there
is the service's, and what the service cannot read, the command cannot either. The
real ids stay root's, so the few files the admin names on the command line (a units
file in /root, a report written to the admin's folder) are opened with root's ids
for that moment (`as_invoker`).
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Iterator
from contextlib import contextmanager


class AccountError(RuntimeError):
    pass


def act_as(user: str | None, required: bool = True) -> bool:
    """Take `user`'s ids as the effective ones when running as root; whether it did.
    None (the configuration names no service user) or a non-root caller: nothing. A
    user that does not exist is an error, or with `required=False` nothing (no
    service runs as it, so there is no state of its to keep)."""
    if user is None or os.geteuid() != 0 or user == "root":
        return False
    try:
        account = pwd.getpwnam(user)
    except KeyError:
        if not required:
            return False
        raise AccountError(
            f"user {user!r}, whose state this command works on, does not exist: install "
            f"the package (or run systemd-sysusers), or correct the configuration's user"
        ) from None
    os.setgroups(os.getgrouplist(user, account.pw_gid))
    os.setegid(account.pw_gid)
    os.seteuid(account.pw_uid)
    return True


@contextmanager
def as_invoker() -> Iterator[None]:
    """Root's own ids inside the block when `act_as` took a service's; else nothing."""
    uid, gid = os.geteuid(), os.getegid()
    if os.getuid() != 0 or uid == 0:
        yield
        return
    os.seteuid(0)
    os.setegid(0)
    try:
        yield
    finally:
        os.setegid(gid)
        os.seteuid(uid)
