"""Suricata 8's EVE layout, as a JSON Schema, for the event types madoc-sensor writes.

The field names and JSON types of each object come from Suricata 8's own EVE schema
(`etc/schema.json` in OISF/suricata, shown in its user guide's generated EVE index),
written out here for the objects the sensor emits: `alert`, `dns` (version 3), `flow`,
`tcp`, `tls`, `quic`, `http` and `tunnel`, and the top-level fields. Each object is
closed as Suricata's schema closes it, so a field Suricata does not know, or a value of
the wrong type, fails.

Two parts are not Suricata's:
- the top-level `madoc` object, madoc-sensor's own, which the test removes first;
- `alert.metadata`: Suricata's schema lists the keys Emerging Threats' rules use
  (`malware_family`, `signature_severity`…), but a rule's `metadata` keyword is free
  text and Suricata writes whatever keys a rule gives, each an array of strings. madoc's
  alerts carry `campaign`, `source`, `list`, `indicator` and `match` there, so this
  schema checks the shape (an object of string arrays), not the key names.
"""

from __future__ import annotations

from typing import Any

STR, INT, BOOL = "string", "integer", "boolean"
Fields = dict[str, Any]


class Schema(dict):
    """A field's JSON Schema written out, where a type name or object will not do."""


def _schema(spec: Any) -> dict:
    """A field's schema from its spec: a JSON type name, `[spec]` for an array of it, a
    dict of fields for a closed object, or a `Schema`."""
    if isinstance(spec, Schema):
        return spec
    if isinstance(spec, str):
        return {"type": spec}
    if isinstance(spec, list):
        return {"type": "array", "items": _schema(spec[0])}
    return closed(spec)


def closed(fields: Fields) -> dict:
    return {"type": "object", "properties": {name: _schema(spec) for name, spec in
                                             fields.items()},
            "additionalProperties": False}


JA3 = {"hash": STR, "string": STR}
DNS_RECORD = {"rdata": STR, "rrname": STR, "rrtype": STR, "ttl": INT,
              "srv": {"name": STR, "port": INT, "priority": INT, "weight": INT}}
DNS_QUERY = {"id": INT, "rrname": STR, "rrtype": STR, "tx_id": INT, "type": STR, "z": BOOL,
             "opcode": INT}
RULE_METADATA = Schema(type="object", additionalProperties={"type": "array",
                                                            "items": {"type": "string"}})

OBJECTS: dict[str, Fields] = {
    "alert": {"action": STR, "category": STR, "gid": INT, "rev": INT, "rule": STR,
              "severity": INT, "signature": STR, "signature_id": INT, "xff": STR,
              "metadata": RULE_METADATA, "references": [STR],
              "source": {"ip": STR, "port": INT}, "target": {"ip": STR, "port": INT}},
    "dns": {"aa": BOOL, "flags": STR, "id": INT, "qr": BOOL, "ra": BOOL, "rcode": STR,
            "rd": BOOL, "rrname": STR, "rrtype": STR, "tx_id": INT, "type": STR,
            "version": INT, "opcode": INT, "tc": BOOL, "z": BOOL, "answers": [DNS_RECORD],
            "authorities": [DNS_RECORD], "additionals": [DNS_RECORD], "query": [DNS_QUERY],
            "queries": [DNS_QUERY]},
    "flow": {"action": STR, "age": INT, "alerted": BOOL, "bypass": STR, "bytes_toclient": INT,
             "bytes_toserver": INT, "dest_ip": STR, "dest_port": INT, "emergency": BOOL,
             "end": STR, "pkts_toclient": INT, "pkts_toserver": INT, "reason": STR,
             "src_ip": STR, "src_port": INT, "start": STR, "state": STR, "wrong_thread": BOOL},
    "tcp": {"ack": BOOL, "cwr": BOOL, "ecn": BOOL, "fin": BOOL, "psh": BOOL, "rst": BOOL,
            "state": STR, "syn": BOOL, "tcp_flags": STR, "tcp_flags_tc": STR,
            "tcp_flags_ts": STR, "urg": BOOL},
    "tls": {"client_alpns": [STR], "server_alpns": [STR], "fingerprint": STR,
            "from_proto": STR, "issuerdn": STR, "subjectaltname": [STR], "notafter": STR,
            "notbefore": STR, "serial": STR, "session_resumed": BOOL, "sni": STR,
            "subject": STR, "version": STR, "ja3": JA3, "ja3s": JA3, "ja4": STR},
    "quic": {"cyu": [JA3], "extensions": [{"name": STR, "type": INT, "values": [STR]}],
             "ja3": JA3, "ja3s": JA3, "ja4": STR, "sni": STR, "ua": STR, "version": STR},
    "http": {"hostname": STR, "http_content_type": STR, "http_method": STR, "http_port": INT,
             "http_refer": STR, "http_user_agent": STR, "length": INT, "protocol": STR,
             "redirect": STR, "status": INT, "url": STR, "version": STR, "xff": STR},
    "tunnel": {"depth": INT, "dest_ip": STR, "dest_port": INT, "pcap_cnt": INT, "pkt_src": STR,
               "proto": STR, "src_ip": STR, "src_port": INT},
}
TOP_LEVEL: Fields = {
    "app_proto": STR, "community_id": STR, "dest_ip": STR, "dest_port": INT, "event_type": STR,
    "flow_id": INT, "host": STR, "in_iface": STR, "pcap_cnt": INT, "pcap_filename": STR,
    "proto": STR, "src_ip": STR, "src_port": INT, "tx_id": INT, "vlan": ["number"],
    "timestamp": Schema(type="string",
                        pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d+[+\-]\d+$"),
    **OBJECTS,
}
EVE_SCHEMA = {**closed(TOP_LEVEL), "required": ["timestamp", "event_type"]}
