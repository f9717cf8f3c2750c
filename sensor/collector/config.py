"""`collector.yaml`: where the collector listens, which database, TLS, limits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from sensor.support.basicauth import Credentials, CredentialsError, read_credentials
from sensor.support.localtime import local_timezone
from sensor.support.paths import state_directory
from sensor.support.yamlconf import host_port

DEFAULT_CONFIG = Path("/etc/madoc/collector.yaml")
DEFAULT_MAX_BODY = 16 << 20
DEFAULT_METRICS = "127.0.0.1:9571"
KEYS = {"listen", "database", "tls", "admin_token_file", "quiet_period_days", "max_body_bytes",
        "timezone", "insecure", "metrics", "upstream"}
METRICS_KEYS = {"listen", "cert_file", "key_file", "basic_auth_file"}
UPSTREAM_KEYS = {"url", "org", "token_file", "ca_file", "share", "secret_file", "spool",
                 "interval_seconds", "insecure"}


class ConfigError(ValueError):
    pass


@dataclass
class UpstreamSettings:
    """Where this collector reports upward (a province to the nation): the level above's
    URL, this organisation's name there and its token, what may leave (`share`), the
    keyed-hash secret that names hosts upstream, and the spool of batches not yet
    acknowledged."""
    url: str
    org: str
    token_file: str
    ca_file: str | None = None
    share_addresses: bool = False
    secret_file: str = ""
    spool: str = ""
    interval_seconds: float = 300.0
    insecure: bool = False

    def __post_init__(self) -> None:
        self.secret_file = self.secret_file or str(state_directory() / "upstream.secret")
        self.spool = self.spool or str(state_directory() / "upstream-spool.db")


@dataclass
class CollectorConfig:
    listen: str = "127.0.0.1:9443"
    database: str = ""
    tls_cert: str | None = None
    tls_key: str | None = None
    admin_token_file: str | None = None
    quiet_period_days: float = 7.0
    max_body_bytes: int = DEFAULT_MAX_BODY
    timezone: str = ""
    insecure: bool = False
    metrics_listen: str | None = DEFAULT_METRICS      # None: no /metrics
    metrics_cert: str | None = None                   # HTTPS for /metrics
    metrics_key: str | None = None
    metrics_credentials: Credentials | None = None    # basic auth for /metrics
    upstream: UpstreamSettings | None = None          # reporting to the level above
    source: str = "(defaults)"

    def __post_init__(self) -> None:
        if not self.database:
            self.database = f"sqlite:///{state_directory() / 'collector.db'}"

    @property
    def host_port(self) -> tuple[str, int]:
        return self._host_port("listen", self.listen)

    @property
    def metrics_host_port(self) -> tuple[str, int]:
        """Only when metrics are on (`metrics_listen` set)."""
        return self._host_port("metrics.listen", self.metrics_listen or "")

    def _host_port(self, key: str, listen: str) -> tuple[str, int]:
        address = host_port(listen)
        if address is None:
            raise ConfigError(f"{self.source}: {key} must be HOST:PORT, not {listen!r}")
        return address[0] or "0.0.0.0", address[1]

    @property
    def tz(self) -> tzinfo:
        if not self.timezone:
            return local_timezone()
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ConfigError(f"{self.source}: unknown timezone {self.timezone!r}") from err


def load_config(path: Path | None) -> CollectorConfig:
    """Read `path` (or /etc/madoc/collector.yaml when it exists; else the defaults)."""
    if path is None:
        if not DEFAULT_CONFIG.exists():
            return CollectorConfig()
        path = DEFAULT_CONFIG
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a mapping of settings")
    unknown = set(doc) - KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) {', '.join(sorted(unknown))}; "
                          f"known: {', '.join(sorted(KEYS))}")
    metrics: Any = doc.pop("metrics", None) or {}
    if not isinstance(metrics, dict) or set(metrics) - METRICS_KEYS or (
            ("cert_file" in metrics) != ("key_file" in metrics)):
        raise ConfigError(f"{path}: metrics is {{listen: HOST:PORT or off, cert_file: FILE, "
                          f"key_file: FILE, basic_auth_file: FILE}} (cert and key together)")
    tls: Any = doc.pop("tls", None) or {}
    if not isinstance(tls, dict) or set(tls) - {"cert", "key"} or bool(tls) != (
            "cert" in tls and "key" in tls):
        raise ConfigError(f"{path}: tls needs both cert and key: {{cert: FILE, key: FILE}}")
    base = path.parent
    upstream = _upstream(path, base, doc.pop("upstream", None))
    listen = metrics.get("listen", DEFAULT_METRICS)
    config = CollectorConfig(**doc, tls_cert=_relative(base, tls.get("cert")),
                             tls_key=_relative(base, tls.get("key")),
                             metrics_listen=None if listen in ("off", False) else str(listen),
                             metrics_cert=_relative(base, metrics.get("cert_file")),
                             metrics_key=_relative(base, metrics.get("key_file")),
                             upstream=upstream, source=str(path))
    if metrics.get("basic_auth_file"):
        try:
            config.metrics_credentials = read_credentials(
                Path(_relative(base, metrics["basic_auth_file"]) or ""))
        except CredentialsError as err:
            raise ConfigError(f"{path}: metrics.basic_auth_file: {err}") from None
    if config.admin_token_file:
        config.admin_token_file = _relative(base, config.admin_token_file)
    for name, kind in (("quiet_period_days", (int, float)), ("max_body_bytes", int),
                       ("insecure", bool), ("listen", str), ("database", str)):
        if not isinstance(getattr(config, name), kind):
            raise ConfigError(f"{path}: {name} has the wrong type")
    config.host_port  # noqa: B018 - validates listen
    if config.metrics_listen:
        config.metrics_host_port  # noqa: B018 - validates metrics.listen
    config.tz  # noqa: B018 - validates timezone
    return config


def _upstream(path: Path, base: Path, doc: Any) -> UpstreamSettings | None:
    if doc is None:
        return None
    usage = (f"{path}: upstream is {{url: https://HOST:PORT, org: NAME, token_file: FILE, "
             f"ca_file: FILE, share: {{addresses: false}}, secret_file: FILE, spool: FILE, "
             f"interval_seconds: 300}}")
    if not isinstance(doc, dict) or set(doc) - UPSTREAM_KEYS or not {
            "url", "org", "token_file"} <= set(doc):
        raise ConfigError(f"{usage} (url, org and token_file needed)")
    share = doc.get("share") or {}
    if not isinstance(share, dict) or set(share) - {"addresses"} or not isinstance(
            share.get("addresses", False), bool):
        raise ConfigError(f"{path}: upstream.share is {{addresses: true|false}}")
    interval = doc.get("interval_seconds", 300)
    if not isinstance(interval, (int, float)) or interval < 1:
        raise ConfigError(f"{path}: upstream.interval_seconds must be a number >= 1")
    if not all(isinstance(doc[k], str) and doc[k] for k in ("url", "org", "token_file")):
        raise ConfigError(f"{usage} (url, org and token_file are text)")
    return UpstreamSettings(
        url=doc["url"], org=doc["org"], token_file=_relative(base, doc["token_file"]) or "",
        ca_file=_relative(base, doc.get("ca_file")),
        share_addresses=share.get("addresses", False),
        secret_file=_relative(base, doc.get("secret_file")) or "",
        spool=_relative(base, doc.get("spool")) or "", interval_seconds=float(interval),
        insecure=bool(doc.get("insecure", False)))


def _relative(base: Path, value: str | None) -> str | None:
    return None if value is None else str((base / value).resolve())
