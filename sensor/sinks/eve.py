"""EVE JSON lines in Suricata 8's layout (dns version 3), plus madoc's `madoc` object.

Field names follow `../shared/REFERENCE.md` so Filebeat's Suricata module,
EveBox and Logstash read the file unchanged. Names from the wire are already
escaped by the decoder; JSON encoding escapes the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo
from functools import lru_cache
from typing import Any, BinaryIO

import orjson

from sensor.core.decode.dns import rcode_name, rrtype_name
from sensor.core.events import (
    QR_RESPONSE,
    RCODE_MASK,
    ClientHello,
    DnsEvent,
    DnsMessage,
    Endpoints,
    FlowEnd,
    Hit,
    HttpEvent,
    HttpRequest,
    QuicEvent,
    TlsEvent,
    Tunnel,
    addr_text,
)
from sensor.support.localtime import local_timezone

PROTO_NAMES = {6: "TCP", 17: "UDP"}
TUNNEL_PROTO_NAMES = {4: "IPIP", 17: "UDP", 41: "IPv6", 47: "GRE"}
SIGNATURES = {   # match point → (signature id, signature text)
    "dns.query": (9_000_001, "MADOC listed domain queried"),
    "dns.cname": (9_000_002, "MADOC listed domain in DNS CNAME answer"),
    "dns.answer": (9_000_003, "MADOC listed address in DNS answer"),
    "flow.dest_ip": (9_000_004, "MADOC connection to listed address"),
    "flow.src_ip": (9_000_005, "MADOC connection from listed address"),
    "tls.sni": (9_000_006, "MADOC listed domain in TLS server name"),
    "quic.sni": (9_000_007, "MADOC listed domain in QUIC server name"),
    "http.host": (9_000_008, "MADOC listed domain in HTTP Host"),
    "http.url": (9_000_009, "MADOC listed URL requested"),
    "tls.ja3": (9_000_010, "MADOC listed JA3 client fingerprint"),
    "tls.ja4": (9_000_011, "MADOC listed JA4 client fingerprint"),
}
QUIC_VERSIONS = {1: "1", 0x6B3343CF: "2"}
EXTENSION_ALPN = 16
TLS_VERSIONS = {0x0300: "SSLv3", 0x0301: "TLS 1.0", 0x0302: "TLS 1.1", 0x0303: "TLS 1.2",
                0x0304: "TLS 1.3"}
CATEGORY = "Malware Command and Control Activity Detected"
# Suricata's flow.reason has three values; a FIN/RST-closed flow ends on the closed
# timeout there. madoc.end_reason keeps the precise reason.
_EVE_FLOW_REASONS = {"fin": "timeout", "rst": "timeout", "idle_timeout": "timeout",
                     "active_timeout": "timeout", "table_full": "forced",
                     "conntrack": "timeout", "end_of_input": "shutdown"}


class Timestamps:
    """Event time → `2022-09-12T08:14:03.512233+0700`: microseconds and a numeric offset.

    The date, time and offset are formatted once per second (events come many to a
    second); only the microseconds are formatted per event."""

    MAX_SECONDS = 4096

    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz
        self._seconds: dict[int, tuple[str, str]] = {}

    def text(self, ts: float) -> str:
        second = int(ts)
        micros = round((ts - second) * 1e6)
        if micros == 1_000_000:
            second, micros = second + 1, 0
        parts = self._seconds.get(second)
        if parts is None:
            if len(self._seconds) >= self.MAX_SECONDS:
                self._seconds.clear()
            moment = datetime.fromtimestamp(second, self.tz)
            parts = self._seconds[second] = (moment.strftime("%Y-%m-%dT%H:%M:%S."),
                                             moment.strftime("%z"))
        return f"{parts[0]}{micros:06d}{parts[1]}"


Stamp = Callable[[float], str]


def _common(ts: float, flow_id: int, event_type: str, ep: Endpoints, vlan: tuple[int, ...],
            tunnel: Tunnel | None, stamp: Stamp) -> dict:
    event = {"timestamp": stamp(ts), "flow_id": flow_id, "event_type": event_type,
             "src_ip": addr_text(ep.src), "src_port": ep.sport,
             "dest_ip": addr_text(ep.dst), "dest_port": ep.dport,
             "proto": PROTO_NAMES.get(ep.proto) or str(ep.proto)}
    if vlan:
        event["vlan"] = list(vlan)
    if tunnel is not None:
        event["tunnel"] = tunnel_object(tunnel)
    return event


def tunnel_object(tunnel: Tunnel) -> dict:
    """Suricata's `tunnel`: the outermost packet of a tunnelled one, and the depth."""
    obj: dict = {"src_ip": addr_text(tunnel.src), "dest_ip": addr_text(tunnel.dst),
                 "proto": TUNNEL_PROTO_NAMES.get(tunnel.proto) or str(tunnel.proto),
                 "depth": tunnel.depth}
    if tunnel.dport:
        obj["src_port"], obj["dest_port"] = tunnel.sport, tunnel.dport
    return obj


@lru_cache(maxsize=1024)
def _header_fields(flags: int) -> dict:
    """The `dns` fields that follow from the header's flags word (few values recur)."""
    return {"flags": f"{flags:x}", "qr": bool(flags & QR_RESPONSE), "aa": bool(flags & 0x0400),
            "tc": bool(flags & 0x0200), "rd": bool(flags & 0x0100), "ra": bool(flags & 0x0080),
            "opcode": (flags >> 11) & 0x0F, "rcode": rcode_name(flags & RCODE_MASK)}


def dns_object(msg: DnsMessage) -> dict:
    response = msg.flags & QR_RESPONSE
    obj = {"version": 3, "type": "response" if response else "request", "id": msg.id,
           **_header_fields(msg.flags),
           "queries": [{"rrname": q.name, "rrtype": rrtype_name(q.rrtype)}
                       for q in msg.questions]}
    if response and msg.answers:
        obj["answers"] = [{"rrname": a.name, "rrtype": rrtype_name(a.rrtype), "ttl": a.ttl,
                           "rdata": a.data} for a in msg.answers]
    return obj


def dns_event(event: DnsEvent, stamp: Stamp) -> dict:
    record = _common(event.ts, event.flow_id, "dns", event.endpoints, event.vlan, event.tunnel,
                     stamp)
    record["dns"] = dns_object(event.message)
    if event.mdns:
        record["app_proto"] = "mdns"
    return record


def tls_object(hello: ClientHello) -> dict:
    """Suricata's `tls` object, from the ClientHello alone."""
    obj: dict = {"version": TLS_VERSIONS.get(hello.version, "UNDETERMINED"),
                 "ja3": {"hash": hello.ja3_hash, "string": hello.ja3}, "ja4": hello.ja4}
    if hello.sni:
        obj["sni"] = hello.sni
    if hello.alpn:
        obj["client_alpns"] = list(hello.alpn)
    return obj


def quic_object(hello: ClientHello, version: int) -> dict:
    """Suricata's `quic` object: version, server name, the client's JA3 and JA4, and its
    ALPN as Suricata's quic logs it, an entry of `extensions`."""
    obj: dict = {"ja4": hello.ja4, "ja3": {"hash": hello.ja3_hash, "string": hello.ja3}}
    if version:                         # an alert's hello does not say its version
        obj["version"] = QUIC_VERSIONS.get(version, f"{version:x}")
    if hello.sni:
        obj["sni"] = hello.sni
    if hello.alpn:
        obj["extensions"] = [{"name": "alpn", "type": EXTENSION_ALPN,
                              "values": list(hello.alpn)}]
    return obj


def http_object(request: HttpRequest) -> dict:
    """Suricata's `http` object, from the request alone."""
    obj: dict = {"url": request.target, "http_method": request.method,
                 "protocol": request.protocol}
    if request.host:
        obj["hostname"] = request.host
    if request.port:
        obj["http_port"] = request.port
    if request.user_agent:
        obj["http_user_agent"] = request.user_agent
    return obj


def _app_event(event: TlsEvent | QuicEvent | HttpEvent, proto: str, obj: dict,
               stamp: Stamp) -> dict:
    """A `tls`, `quic` or `http` event: the flow's fields, `app_proto` and the object."""
    record = _common(event.ts, event.flow_id, proto, event.endpoints, event.vlan, event.tunnel,
                     stamp)
    record["app_proto"] = proto
    record[proto] = obj
    return record


def tls_event(event: TlsEvent, stamp: Stamp) -> dict:
    return _app_event(event, "tls", tls_object(event.hello), stamp)


def quic_event(event: QuicEvent, stamp: Stamp) -> dict:
    return _app_event(event, "quic", quic_object(event.hello, event.version), stamp)


def http_event(event: HttpEvent, stamp: Stamp) -> dict:
    return _app_event(event, "http", http_object(event.request), stamp)


def flow_event(flow: FlowEnd, stamp: Stamp) -> dict:
    ep = flow.endpoints
    record = _common(flow.last_ts, flow.flow_id, "flow", ep, flow.vlan, flow.tunnel, stamp)
    record["flow"] = {
        "pkts_toserver": flow.pkts_toserver, "pkts_toclient": flow.pkts_toclient,
        "bytes_toserver": flow.bytes_toserver, "bytes_toclient": flow.bytes_toclient,
        "start": stamp(flow.first_ts), "end": record["timestamp"],
        "age": int(flow.last_ts - flow.first_ts), "state": flow.state,
        "reason": _EVE_FLOW_REASONS[flow.reason],
        "alerted": flow.alerted,
    }
    if ep.proto == 6:
        record["tcp"] = {"tcp_flags": f"{flow.tcp_flags:02x}"}
    record["madoc"] = {"end_reason": flow.reason}
    return record


def alert_event(hit: Hit, stamp: Stamp) -> dict:
    ep = hit.endpoints
    record = _common(hit.ts, hit.flow_id, "alert", ep, hit.vlan, hit.tunnel, stamp)
    indicator = hit.indicator
    signature_id, signature = SIGNATURES[hit.match]
    metadata = {"campaign": [indicator.campaign] if indicator.campaign else [],
                "source": list(indicator.sources), "list": list(indicator.sources),
                "indicator": [indicator.value], "match": [hit.match]}
    record["alert"] = {"action": "allowed", "gid": 1, "signature_id": signature_id, "rev": 1,
                       "signature": f"{signature}: {hit.seen}", "category": CATEGORY,
                       "severity": indicator.severity if hit.outbound else 3,
                       "metadata": metadata}
    if hit.dns is not None:
        record["dns"] = dns_object(hit.dns)
    if hit.tls is not None:
        if hit.tls.ja4[:1] == "q":
            record["app_proto"] = "quic"
            record["quic"] = quic_object(hit.tls, 0)
        else:
            record["app_proto"] = "tls"
            record["tls"] = tls_object(hit.tls)
    if hit.http is not None:
        record["app_proto"] = "http"
        record["http"] = http_object(hit.http)
    madoc = {"indicator": indicator.value, "indicator_type": indicator.kind, "match": hit.match,
             "host": addr_text(hit.host), "sources": list(indicator.sources),
             "campaign": indicator.campaign, "seen": hit.seen, "outbound": hit.outbound}
    if hit.resolved_from:
        madoc["resolved_from"] = hit.resolved_from
    if indicator.comment:
        madoc["comment"] = indicator.comment
    if indicator.first_listed:
        madoc["first_listed"] = indicator.first_listed
    record["madoc"] = madoc
    return record


APP_EVENTS: dict[type, Callable[[Any, Stamp], dict]] = {
    TlsEvent: tls_event, QuicEvent: quic_event, HttpEvent: http_event}


class EveWriter:
    """Writes events as one JSON object per line (UTF-8); `dns`/`flows` off skip those types.

    orjson encodes: about five times faster than the standard library's json, and
    this runs for every DNS message and flow."""

    def __init__(self, stream: BinaryIO, dns: bool = True, flows: bool = True,
                 tz: tzinfo | None = None, app: bool = True) -> None:
        self.stream = stream
        self.dns = dns
        self.flows = flows
        self.app = app
        self.stamp = Timestamps(tz or local_timezone()).text
        self.written = 0

    def write(self, events: list) -> None:
        stamp = self.stamp
        dumps = orjson.dumps
        lines: list[bytes] = []
        for event in events:
            if event.__class__ is Hit:
                record = alert_event(event, stamp)
            elif event.__class__ is DnsEvent:
                if not self.dns:
                    continue
                record = dns_event(event, stamp)
            elif event.__class__ is FlowEnd:
                if not self.flows:
                    continue
                record = flow_event(event, stamp)
            else:
                app_event = APP_EVENTS.get(event.__class__) if self.app else None
                if app_event is None:
                    continue                # the encrypted-DNS count has no EVE event
                record = app_event(event, stamp)
            lines.append(dumps(record))
        if lines:
            lines.append(b"")
            self.stream.write(b"\n".join(lines))
            self.written += len(lines) - 1
