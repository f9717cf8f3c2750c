"""`sensor.yaml`: what `madoc-sensor run` captures, where it sends, how it runs.

Everything is validated when the daemon starts, before any socket is opened;
an error names the file, the line and the key. Relative paths are relative to
the configuration file. deploy/README.md describes every key.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sensor.core.decode.tunnel import TunnelPorts
from sensor.core.flows import FlowTimeouts
from sensor.support.basicauth import Credentials, CredentialsError, read_credentials
from sensor.support.paths import instance_of
from sensor.support.yamlconf import (
    ConfigError,
    Section,
    host_port,
    load_mapping,
    positive,
    string_list,
)

DEFAULT_CONFIG = Path("/etc/madoc/sensor.yaml")
DEFAULT_RULES = Path("/etc/madoc/rules.yaml")
DEFAULT_STATE_DIR = Path("/var/lib/madoc")
DEFAULT_USER = "madoc"
DEFAULT_METRICS = "127.0.0.1:9570"

# What the flow table and the matcher need, both ways: UDP datagrams (DNS and UDP
# flows, VXLAN and Geneve) except QUIC's short-header packets (UDP 443 with the
# header-form bit clear: the bulk of a QUIC connection, after the Initials the sensor
# reads), TCP DNS, the TCP segments that open or close a connection, and those whose
# payload opens a TLS ClientHello (record 22, handshake 1) or an HTTP request (the
# method's first four bytes), on any port, with the client's pushed segments to port
# 443 that finish a ClientHello longer than one segment. libpcap cannot index TCP or
# UDP behind IPv6 with `tcp[]`/`udp[]`, hence the ip6[] forms (no extension headers).
# A filter cannot look inside a tunnel, so every packet of one is kept: IP in IP, IPv6
# in IP and GRE (ERSPAN mirror sessions), and on Ethernet MPLS and PPPoE sessions (by
# EtherType: libpcap's `mpls` and `pppoes` keywords would shift the offsets of the rest
# of the expression). The `vlan` half keeps tagged frames when they reach the filter
# tagged (capture files); the kernel hands live frames to it untagged.
_TCP_DATA = "((tcp[12:1] & 0xf0) >> 2)"
_TCP6_DATA = "(40 + ((ip6[52:1] & 0xf0) >> 2))"
HTTP_METHOD_HEADS = ("0x47455420", "0x504f5354", "0x48454144", "0x50555420", "0x434f4e4e",
                     "0x44454c45", "0x4f505449", "0x50415443")   # GET  POST HEAD PUT  CONN …
_HEADS = (f"(tcp[{_TCP_DATA}:1] = 0x16 and tcp[{_TCP_DATA} + 5:1] = 1) or "
          + " or ".join(f"tcp[{_TCP_DATA}:4] = {head}" for head in HTTP_METHOD_HEADS)
          + f" or (ip6[6] = 6 and ((ip6[{_TCP6_DATA}:1] = 0x16 and ip6[{_TCP6_DATA} + 5:1] = 1)"
          + "".join(f" or ip6[{_TCP6_DATA}:4] = {head}" for head in HTTP_METHOD_HEADS) + "))"
          + " or (tcp dst port 443 and tcp[tcpflags] & tcp-push != 0)"
          + " or (ip6[6] = 6 and ip6[42:2] = 443 and ip6[53] & 8 != 0)")
_QUIC_SHORT = ("(udp port 443 and udp[8] & 0x80 = 0) or (ip6[6] = 17 and (ip6[40:2] = 443 "
               "or ip6[42:2] = 443) and ip6[48] & 0x80 = 0)")
_KEEP = (f"(udp and not ({_QUIC_SHORT})) or tcp port 53 "
         "or tcp[tcpflags] & (tcp-syn|tcp-fin|tcp-rst) != 0 "
         f"or (ip6[6] = 6 and ip6[53] & 7 != 0) or {_HEADS} "
         "or ip proto 4 or ip proto 41 or ip proto 47 "
         "or ip6 proto 4 or ip6 proto 41 or ip6 proto 47")
_LINK_CARRIERS = "ether proto 0x8847 or ether proto 0x8848 or ether proto 0x8864"
DEFAULT_FILTER = f"({_KEEP}) or {_LINK_CARRIERS} or (vlan and (({_KEEP}) or {_LINK_CARRIERS}))"
# Gateway mode: flows come from conntrack, packets only for the DNS messages and, unless
# `app: false`, for the names inside connections (the same heads as above, and QUIC's
# long-header packets: those a client's Initials travel in).
_DNS = "port 53 or port 5353"
DNS_FILTER = f"({_DNS}) or (vlan and ({_DNS}))"
_QUIC_LONG = "(udp[8] & 0xc0 = 0xc0) or (ip6[6] = 17 and ip6[48] & 0xc0 = 0xc0)"
_DNS_AND_NAMES = f"{_DNS} or {_HEADS} or {_QUIC_LONG}"
GATEWAY_FILTER = f"({_DNS_AND_NAMES}) or (vlan and ({_DNS_AND_NAMES}))"
FILTERS = {"default": DEFAULT_FILTER, "all": ""}
# Only Ethernet frames carry 802.1Q tags; libpcap refuses `vlan` on other link types.
_UNTAGGED = {DEFAULT_FILTER: f"({_KEEP})", DNS_FILTER: f"({_DNS})",
             GATEWAY_FILTER: f"({_DNS_AND_NAMES})"}
DLT_EN10MB = 1


def filter_for_link(expression: str, datalink: int) -> str:
    """The filter to compile for a capture of link type `datalink` (a DLT): the built-in
    filters without their `vlan` half where frames cannot be tagged; any other
    expression as written."""
    return expression if datalink == DLT_EN10MB else _UNTAGGED.get(expression, expression)
MODES = ("capture", "gateway")
BACKENDS = ("libpcap", "ring", "scapy")


def default_workers() -> int:
    """Cores minus one (one is left for the uplink and the system), at least one."""
    return max(1, (os.cpu_count() or 1) - 1)


@dataclass
class RingSettings:
    """`capture.backend: ring` (our own TPACKET_V3 ring); its size is `buffer_mib`."""

    block_kib: int = 1024                # a block is handed over full or after 100 ms
    frame_size: int = 2048               # the kernel's frame slot; V3 packs frames tighter


@dataclass
class CaptureSettings:
    backend: str = "libpcap"
    promiscuous: bool = True
    snaplen: int = 65535
    buffer_mib: int = 64                 # kernel ring per worker and interface
    batch_packets: int = 2048
    ring: RingSettings = field(default_factory=RingSettings)


@dataclass
class ConntrackSettings:
    accounting: bool = True              # turn on nf_conntrack_acct / _timestamp at start
    receive_buffer_mib: int = 8


@dataclass
class CollectorSettings:
    url: str
    token_file: Path
    ca_file: str | None = None
    insecure: bool = False
    batch_seconds: float = 10.0
    retry_max: float = 60.0
    spool_max_mib: int = 256


@dataclass
class SensorConfig:
    interfaces: list[str]
    sensor_id: str | None = None
    unit: str = "local"             # the unit named in the local summary (no collector)
    mode: str = "capture"
    filter: str = DEFAULT_FILTER
    workers: int = field(default_factory=default_workers)
    internal_networks: list[str] | None = None    # None: automatic
    capture: CaptureSettings = field(default_factory=CaptureSettings)
    conntrack: ConntrackSettings = field(default_factory=ConntrackSettings)
    flows: FlowTimeouts = field(default_factory=FlowTimeouts)
    tunnels: TunnelPorts = field(default_factory=TunnelPorts)
    app: bool = True                # read names inside connections: TLS, QUIC, HTTP
    user: str = DEFAULT_USER
    rules: list[Path] = field(default_factory=lambda: [DEFAULT_RULES])
    rules_reload_seconds: float = 30.0
    eve: Path | None = None
    collector: CollectorSettings | None = None
    state_dir: Path = DEFAULT_STATE_DIR
    metrics_listen: str | None = DEFAULT_METRICS     # None: no metrics endpoint
    metrics_cert_file: Path | None = None
    metrics_key_file: Path | None = None
    metrics_credentials: Credentials | None = None   # basic auth for /metrics
    stop_timeout: float = 10.0
    source: str = "(defaults)"

    @property
    def spool_path(self) -> Path:
        return self.state_dir / f"spool-{self.sensor_id or 'sensor'}.db"

    @property
    def summary_path(self) -> Path:
        return self.state_dir / "summary.db"


def load_config(path: Path) -> SensorConfig:
    top = load_mapping(path)
    base = path.parent
    sensor = top.section("sensor")
    if not sensor.mapping:
        raise sensor.error(None, "a `sensor:` section with at least `interfaces:` is required")
    config = SensorConfig(
        interfaces=sensor.get("interfaces", list, check=string_list),
        sensor_id=sensor.get("id", str, None),
        unit=sensor.get("unit", str, "local"),
        mode=sensor.choice("mode", MODES, "capture"),
        internal_networks=_networks(sensor),
        capture=_capture(sensor.section("capture")),
        conntrack=_conntrack(sensor.section("conntrack")),
        flows=_flows(sensor.section("flows")),
        tunnels=_tunnels(sensor.section("tunnels")),
        app=sensor.get("app", bool, True),
        user=sensor.get("user", str, DEFAULT_USER),
        source=str(path))
    if config.mode == "gateway":
        _gateway(sensor, config)
    else:
        config.filter = _filter(sensor)
        config.workers = sensor.get("workers", int, default_workers(), positive)
    sensor.finish()
    rules = top.get("rules", (str, list), str(DEFAULT_RULES))
    rules = rules if isinstance(rules, list) else [rules]
    if not all(isinstance(item, str) and item for item in rules):
        raise top.error("rules", "must be a path or a list of paths")
    config.rules = [_path(base, item) for item in rules]
    config.rules_reload_seconds = float(top.get("rules_reload_seconds", (int, float), 30.0,
                                                positive))
    eve = top.get("eve", str, None)
    config.eve = _path(base, eve) if eve else None
    config.state_dir = _path(base, top.get("state_dir", str, str(
        DEFAULT_STATE_DIR / (instance_of(path, "sensor") or ""))))
    config.collector = _collector(top.section("collector"), base)
    if config.collector and config.sensor_id is None:
        raise sensor.error("id", "is required when a collector is configured (the id the "
                                 "sensor was registered under: madoc-collector tokens add ID)")
    metrics = top.section("metrics")
    listen = metrics.get("listen", (str, bool), DEFAULT_METRICS, _listen)
    config.metrics_listen = None if listen in ("off", False) else listen    # YAML: off is False
    cert, key = metrics.get("cert_file", str, None), metrics.get("key_file", str, None)
    if bool(cert) != bool(key):
        raise metrics.error("cert_file" if cert is None else "key_file",
                            "cert_file and key_file go together (HTTPS for /metrics)")
    config.metrics_cert_file = _path(base, cert) if cert else None
    config.metrics_key_file = _path(base, key) if key else None
    auth = metrics.get("basic_auth_file", str, None)
    if auth:
        try:    # read now, while root: the file stays 0600 root's
            config.metrics_credentials = read_credentials(_path(base, auth))
        except CredentialsError as err:
            raise metrics.error("basic_auth_file", str(err)) from None
    metrics.finish()
    config.stop_timeout = float(top.get("stop_timeout", (int, float), 10.0, positive))
    top.finish()
    return config


def _listen(value: str | bool) -> str | None:
    if value is False or value == "off":
        return None
    address = host_port(str(value))
    if address and address[0]:
        return None
    return f"must be HOST:PORT (e.g. {DEFAULT_METRICS}) or off"


def _filter(sensor: Section) -> str:
    value = sensor.get("filter", str, "default")
    return FILTERS.get(value, value)


def _gateway(sensor: Section, config: SensorConfig) -> None:
    """Gateway mode captures DNS and the packets names are read from (flows come from
    conntrack): one worker, and the filter is fixed, since wider capture would only cost."""
    if sensor.get("filter", str, "default") != "default":
        raise sensor.error("filter", "cannot be set with mode: gateway (packets are "
                                     "captured for DNS and names only; flows come from "
                                     "conntrack)")
    config.filter = GATEWAY_FILTER if config.app else DNS_FILTER
    config.workers = sensor.get("workers", int, 1,
                                lambda v: None if v == 1 else "must be 1 with mode: gateway "
                                "(one process reads conntrack and the DNS packets)")


def _conntrack(section: Section) -> ConntrackSettings:
    settings = ConntrackSettings(
        accounting=section.get("accounting", bool, True),
        receive_buffer_mib=section.get("receive_buffer_mib", int, 8,
                                       lambda v: None if 1 <= v <= 1024 else "must be 1 … 1024"))
    section.finish()
    return settings


def _networks(sensor: Section) -> list[str] | None:
    value = sensor.get("internal_networks", (str, list), "auto")
    if value == "auto":
        return None
    if isinstance(value, str):
        raise sensor.error("internal_networks", f"must be auto or a list of CIDRs, not {value!r}")
    for cidr in value:
        try:
            ipaddress.ip_network(str(cidr), strict=False)
        except ValueError:
            raise sensor.error("internal_networks", f"{cidr!r} is not a network "
                                                    f"(e.g. 10.1.0.0/16)") from None
    return [str(cidr) for cidr in value]


def _capture(section: Section) -> CaptureSettings:
    settings = CaptureSettings(
        backend=section.choice("backend", BACKENDS, "libpcap"),
        promiscuous=section.get("promiscuous", bool, True),
        snaplen=section.get("snaplen", int, 65535,
                            lambda v: None if 96 <= v <= 262144 else "must be 96 … 262144"),
        buffer_mib=section.get("buffer_mib", int, 64,
                               lambda v: None if 1 <= v <= 4096 else "must be 1 … 4096"),
        batch_packets=section.get("batch_packets", int, 2048, positive),
        ring=_ring(section.section("ring")))
    section.finish()
    return settings


def _ring(section: Section) -> RingSettings:
    def power_of_two(low: int, high: int) -> Callable[[int], str | None]:
        return lambda v: None if low <= v <= high and v & (v - 1) == 0 else (
            f"must be a power of two, {low} … {high}")

    settings = RingSettings(
        block_kib=section.get("block_kib", int, 1024, power_of_two(4, 65536)),
        frame_size=section.get("frame_size", int, 2048, power_of_two(128, 65536)))
    section.finish()
    return settings


def _flows(section: Section) -> FlowTimeouts:
    defaults = FlowTimeouts()
    number = (int, float)
    timeouts = FlowTimeouts(
        tcp_idle=float(section.get("tcp_idle", number, defaults.tcp_idle, positive)),
        udp_idle=float(section.get("udp_idle", number, defaults.udp_idle, positive)),
        active=float(section.get("active", number, defaults.active, positive)),
        max_flows=section.get("max_flows", int, defaults.max_flows, positive),
        emergency_idle=float(section.get("emergency_idle", number, defaults.emergency_idle,
                                         positive)))
    section.finish()
    return timeouts


def _tunnels(section: Section) -> TunnelPorts:
    """The UDP ports read as VXLAN and Geneve (a switch or cloud mirroring to another)."""
    defaults = TunnelPorts()
    ports = TunnelPorts(
        vxlan=section.get("vxlan_port", int, defaults.vxlan, _port),
        geneve=section.get("geneve_port", int, defaults.geneve, _port))
    section.finish()
    return ports


def _port(value: int) -> str | None:
    return None if 1 <= value <= 65535 else "must be a port, 1 … 65535"


def _collector(section: Section, base: Path) -> CollectorSettings | None:
    if not section.mapping:
        return None
    settings = CollectorSettings(
        url=section.get("url", str),
        token_file=_path(base, section.get("token_file", str)),
        ca_file=section.get("ca_file", str, None),
        insecure=section.get("insecure", bool, False),
        batch_seconds=float(section.get("batch_seconds", (int, float), 10.0, positive)),
        retry_max=float(section.get("retry_max", (int, float), 60.0, positive)),
        spool_max_mib=section.get("spool_max_mib", int, 256, positive))
    if settings.ca_file:
        settings.ca_file = str(_path(base, settings.ca_file))
    section.finish()
    return settings


def _path(base: Path, value: str) -> Path:
    return (base / value).resolve()


__all__ = ["ConfigError", "SensorConfig", "load_config", "DEFAULT_FILTER"]
