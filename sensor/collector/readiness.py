"""`madoc-collector doctor`: check a collector's configuration against this host.

Run as root, it looks as the service will (as the configuration's `user`): the TLS
certificate and key readable, the database reachable (or where it will be made),
the upstream's token readable and its secret kept, the listening addresses free
(or served by the running collector), and the unit's state. It changes nothing.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterator
from pathlib import Path

from sensor.collector.config import CollectorConfig
from sensor.collector.store import Store, StoreError
from sensor.support.accounts import AccountError, act_as
from sensor.support.checks import (
    FAIL,
    OK,
    Finding,
    check_listen,
    check_service,
    print_findings,
    unit_for,
)


def check_user(config: CollectorConfig) -> Iterator[Finding]:
    if config.user is None:
        yield Finding(OK, "user", f"none named: commands act as whoever runs them "
                      f"(uid {os.geteuid()})")
        return
    try:
        switched = act_as(config.user)
    except AccountError as err:
        yield Finding(FAIL, "user", str(err))
        return
    yield Finding(OK, "user", f"{config.user}" + (" (the checks below run as it)"
                                                  if switched else ""))


def _readable(path: str) -> str | None:
    """Why `path` cannot be read by this process's effective user; None when it can."""
    try:
        with open(path, "rb"):
            return None
    except OSError as err:
        return err.strerror or str(err)


def check_tls(config: CollectorConfig) -> Iterator[Finding]:
    if not config.tls_cert or not config.tls_key:
        level = OK if config.plain_http_allowed else FAIL
        yield Finding(level, "tls", "none: plain HTTP" + ("" if level == OK else
                      f" on {config.listen} is refused (tls: {{cert, key}}, or insecure: true)"))
        return
    for name, path in (("certificate", config.tls_cert), ("key", config.tls_key)):
        problem = _readable(path)
        if problem:
            yield Finding(FAIL, f"tls {name} {path}", f"{problem}: make it (deploy/README.md, "
                          f"\"The collector\") and let the service's group read it")
            return
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
            config.tls_cert, config.tls_key)
    except (ssl.SSLError, OSError) as err:
        yield Finding(FAIL, "tls", f"{config.tls_cert} and {config.tls_key} do not load "
                      f"together: {err}")
        return
    yield Finding(OK, "tls", f"{config.tls_cert} with its key")


def check_database(config: CollectorConfig) -> Iterator[Finding]:
    what = f"database {config.database}"
    store = Store(config.database, config.tz)
    if not store.postgres and not store.path.exists():
        existing = store.path.parent
        while not existing.exists():
            existing = existing.parent
        if os.access(existing, os.W_OK, effective_ids=True):
            yield Finding(OK, what, "made at the first start")
        elif config.state_dir and store.path.is_relative_to(config.state_dir) \
                and not config.state_dir.exists():
            yield Finding(OK, what, f"made at the first start, in the {config.state_dir} "
                          f"that systemd makes for the unit")
        else:
            yield Finding(FAIL, what, f"{existing} is not writable")
        return
    try:
        store.ping()
    except StoreError as err:
        yield Finding(FAIL, what, str(err))
        return
    finally:
        store.close()
    yield Finding(OK, what, "reachable")


def check_upstream(config: CollectorConfig) -> Iterator[Finding]:
    upstream = config.upstream
    if upstream is None:
        yield Finding(OK, "upstream", "none configured")
        return
    problem = _readable(upstream.token_file)
    if problem:
        yield Finding(FAIL, f"upstream token {upstream.token_file}", problem)
    if Path(upstream.secret_file).exists():
        yield Finding(OK, "upstream secret", f"{upstream.secret_file} kept")
    else:
        yield Finding(OK, "upstream secret", f"{upstream.secret_file} made at the first "
                      f"send (keep it: hosts' names upstream depend on it)")


def findings(config: CollectorConfig) -> Iterator[Finding]:
    yield from check_user(config)
    yield from check_tls(config)
    yield from check_database(config)
    yield from check_upstream(config)
    yield from check_listen("listen", config.listen, "the collector")
    yield from check_listen("metrics", config.metrics_listen, "the collector")
    if config.source != "(defaults)":
        yield from check_service(unit_for("madoc-collector", Path(config.source)))


def doctor(config: CollectorConfig) -> int:
    return print_findings("madoc-collector", findings(config), config.source)
