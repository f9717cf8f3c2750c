"""`rpz`: DNS Response Policy Zone files (BIND, Unbound, PowerDNS).

Triggers read: QNAME (`name CNAME .` lists that exact name; `*.name CNAME .`
lists its subdomains but not the name itself, as RPZ's wildcard rule says) and
response IP (`32.7.113.0.203.rpz-ip CNAME .`; IPv6 with `zz` for `::`). Owner
names are relative to the zone, or absolute with the zone's `$ORIGIN`.
`rpz-passthru.` rules are allow rules and are rejected here with that reason (put
them in an allowlist source); NSDNAME, NSIP and client-IP triggers are not
indicators of a contacted address and are rejected.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace

from sensor.blocklist.formats.common import BadLine, Entry, Parsed, address_entry, domain_entry

_SKIPPED_TYPES = frozenset(("SOA", "NS"))
_CLASSES = frozenset(("IN", "CH", "HS"))


def _ip_trigger(number: int, labels: list[str]) -> Parsed:
    """`prefix.reversed-address` labels (RFC draft-vixie-dnsop-dns-rpz §4.2)."""
    try:
        prefix = int(labels[0])
    except (ValueError, IndexError):
        return BadLine(number, "rpz-ip trigger without a prefix length")
    parts = labels[1:][::-1]
    if len(parts) == 4 and all(p.isdigit() for p in parts):
        address = ".".join(parts)
    else:
        address = ":".join("" if p == "zz" else p for p in parts)
        if address.endswith(":") and not address.endswith("::"):
            address += ":"                      # "zz" last: the run of zeros ends the address
        if address.startswith(":") and not address.startswith("::"):
            address = ":" + address
    return address_entry(number, f"{address}/{prefix}")


def parse(text: str, options: Mapping[str, object]) -> Iterator[Parsed]:
    origin = ""
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(";", 1)[0].strip()
        if not line or line.startswith(("$TTL", "$INCLUDE", "(", ")")) or raw[:1].isspace():
            continue
        if line.startswith("$ORIGIN"):
            origin = line.split()[1].lower().rstrip(".") if len(line.split()) > 1 else ""
            continue
        fields = line.split()
        owner, rest = fields[0].lower(), [f for f in fields[1:] if not f.isdigit()]
        rest = [f for f in rest if f.upper() not in _CLASSES]
        if not rest or rest[0].upper() in _SKIPPED_TYPES or owner == "@":
            continue
        action = rest[1].lower() if len(rest) > 1 else ""
        if action == "rpz-passthru.":
            yield BadLine(number, "rpz-passthru rule is an allow rule: use an allowlist source")
            continue
        if owner.endswith("."):
            owner = owner.rstrip(".")
            if origin and owner.endswith("." + origin):
                owner = owner[:-len(origin) - 1]
        labels = owner.split(".")
        if labels[-1] == "rpz-ip":
            yield _ip_trigger(number, labels[:-1])
        elif labels[-1] in ("rpz-nsdname", "rpz-nsip", "rpz-client-ip"):
            yield BadLine(number, f"{labels[-1]} trigger is not supported")
        elif owner.startswith("*."):
            entry = domain_entry(number, owner[2:])
            yield replace(entry, subdomains_only=True) if isinstance(entry, Entry) else entry
        else:
            entry = domain_entry(number, owner)
            yield Entry(entry.line, entry.kind, entry.value, True) \
                if isinstance(entry, Entry) else entry
