"""`collector.yaml`: where the collector listens, which database, TLS, limits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sensor.support.basicauth import Credentials, CredentialsError, read_credentials
from sensor.support.localtime import local_timezone
from sensor.support.paths import instance_of, state_directory
from sensor.support.yamlconf import ConfigError, Section, host_port, load_mapping, positive

DEFAULT_CONFIG = Path("/etc/madoc/collector.yaml")
SERVICE = "madoc-collector"         # the unit's StateDirectory= and User=
DEFAULT_MAX_BODY = 16 << 20
DEFAULT_METRICS = "127.0.0.1:9571"
__all__ = ["ConfigError", "CollectorConfig", "UpstreamSettings", "load_config"]


@dataclass
class UpstreamSettings:
    """Where this collector reports upward (a province to the nation): the level above's
    URL, this organisation's name there and its token, what may leave (`share`), the
    keyed-hash secret that names hosts upstream, and the spool of batches not yet
    acknowledged (both in the state directory unless named: `load_config`)."""
    url: str
    org: str
    token_file: str
    secret_file: str
    spool: str
    ca_file: str | None = None
    share_addresses: bool = False
    interval_seconds: float = 300.0
    insecure: bool = False


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
    user: str | None = None         # the service's user: root's commands act as it
    state_dir: Path | None = None   # where defaults go: the unit's StateDirectory=
    source: str = "(defaults)"

    def __post_init__(self) -> None:
        self.state_dir = self.state_dir or state_directory(SERVICE)
        if not self.database:
            self.database = f"sqlite:///{self.state_dir / 'collector.db'}"

    @property
    def host_port(self) -> tuple[str, int]:
        return self._host_port("listen", self.listen)

    @property
    def plain_http_allowed(self) -> bool:
        """Without TLS the collector serves only on loopback, unless told `insecure`:
        sensors' tokens would otherwise cross the network in clear."""
        return self.insecure or self.host_port[0] in ("127.0.0.1", "::1", "localhost")

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
    """Read `path` (or /etc/madoc/collector.yaml when it exists; else the defaults). A
    mistake is one line naming the file, the line and the key."""
    if path is None:
        if not DEFAULT_CONFIG.exists():
            return CollectorConfig()
        path = DEFAULT_CONFIG
    top = load_mapping(path)
    base = path.parent
    state_dir = state_directory(SERVICE, instance_of(path, "collector"))
    tls = top.section("tls")
    if tls.mapping:
        tls.get("cert", str), tls.get("key", str)      # both, or neither
    metrics, upstream = top.section("metrics"), top.section("upstream")
    listen = metrics.get("listen", (str, bool), DEFAULT_METRICS,
                         lambda v: None if v in ("off", False) or host_port(str(v))
                         else "must be HOST:PORT or off")
    if metrics.has("cert_file") != metrics.has("key_file"):
        raise metrics.error("cert_file" if metrics.has("cert_file") else "key_file",
                            "needs its pair: cert_file and key_file together")
    config = CollectorConfig(
        listen=top.get("listen", str, "127.0.0.1:9443", _address),
        database=top.get("database", str, ""),
        tls_cert=_relative(base, tls.get("cert", str, None)),
        tls_key=_relative(base, tls.get("key", str, None)),
        admin_token_file=_relative(base, top.get("admin_token_file", str, None)),
        quiet_period_days=top.get("quiet_period_days", (int, float), 7.0, positive),
        max_body_bytes=top.get("max_body_bytes", int, DEFAULT_MAX_BODY, positive),
        timezone=top.get("timezone", str, ""),
        insecure=top.get("insecure", bool, False),
        metrics_listen=None if listen in ("off", False) else str(listen),
        metrics_cert=_relative(base, metrics.get("cert_file", str, None)),
        metrics_key=_relative(base, metrics.get("key_file", str, None)),
        upstream=_upstream(upstream, base, state_dir) if upstream.mapping else None,
        user=top.get("user", str, None), state_dir=state_dir, source=str(path))
    auth = metrics.get("basic_auth_file", str, None)
    if auth:
        try:
            config.metrics_credentials = read_credentials(Path(_relative(base, auth) or ""))
        except CredentialsError as err:
            raise metrics.error("basic_auth_file", str(err)) from None
    for section in (tls, metrics, top):
        section.finish()
    try:
        config.tz  # noqa: B018 - validates timezone
    except ConfigError:
        raise top.error("timezone", f"unknown time zone {config.timezone!r} (an IANA name: "
                        f"Asia/Ho_Chi_Minh)") from None
    return config


def _address(value: str) -> str | None:
    return None if host_port(value) else "must be HOST:PORT"


def _upstream(section: Section, base: Path, state_dir: Path) -> UpstreamSettings:
    share = section.section("share")
    settings = UpstreamSettings(
        url=section.get("url", str), org=section.get("org", str),
        token_file=_relative(base, section.get("token_file", str)) or "",
        ca_file=_relative(base, section.get("ca_file", str, None)),
        share_addresses=share.get("addresses", bool, False),
        secret_file=_relative(base, section.get("secret_file", str, None)) or str(
            state_dir / "upstream.secret"),
        spool=_relative(base, section.get("spool", str, None)) or str(
            state_dir / "upstream-spool.db"),
        interval_seconds=float(section.get("interval_seconds", (int, float), 300,
                                           lambda v: None if v >= 1 else "must be ≥ 1")),
        insecure=section.get("insecure", bool, False))
    share.finish()
    section.finish()
    return settings


def _relative(base: Path, value: str | None) -> str | None:
    """A path of the file, read relative to the file's folder."""
    return None if value is None else str((base / value).resolve())
