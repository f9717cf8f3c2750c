"""What tshark makes of a capture: the independent reading our decoders are held to.

Addresses and ports are the innermost ones of a tunnelled packet (the last network
and transport layers in `frame.protocols`), as the sensor reports them. `decode_as`
passes tshark's `-d` options where a capture needs them (an MPLS pseudowire's
payload cannot be told from the bytes alone)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

# Only what we analyse: DNS on 53 (UDP/TCP) and mDNS; nothing quoted inside ICMP errors.
DNS_FILTER = "dns && (udp.port==53 || tcp.port==53 || udp.port==5353) && !icmp && !icmpv6"
FLOW_FILTER = "(tcp || udp) && !icmp && !icmpv6"
# A tunnel whose frame holds no TCP or UDP (ARP in VXLAN, say) is no flow to the sensor:
# its flows are those inside, never the carrier's.
TUNNEL_LAYERS = frozenset(("gre", "erspan", "vxlan", "geneve"))


def innermost(protocols: str, *names: str) -> str:
    """Which of `names` comes last in a `frame.protocols` chain ("" if none does)."""
    chain = protocols.split(":")
    return max(names, key=lambda name: max((i for i, p in enumerate(chain) if p == name),
                                           default=-1)) if set(names) & set(chain) else ""


def tshark(path: Path, *args: str) -> str:
    if shutil.which("tshark") is None:
        pytest.fail("tshark is not installed (CI installs it with apt: see .ci/run)")
    result = subprocess.run(["tshark", "-r", str(path), "-o", "ip.defragment:FALSE",
                             "-o", "ipv6.defragment:FALSE", *args],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:      # an empty reading must never pass for an agreeing one
        pytest.fail(f"tshark failed on {path} (exit {result.returncode}): "
                    f"{result.stderr.strip()}")
    return result.stdout


def _listify(value) -> list:
    return value if isinstance(value, list) else [value]


def _records(section, key: str) -> list[dict]:
    """Every record dict (one holding `key`) anywhere under a JSON section."""
    if isinstance(section, dict):
        if key in section:
            return [section]
        return [r for value in section.values() for r in _records(value, key)]
    if isinstance(section, list):
        return [r for value in section for r in _records(value, key)]
    return []


def _name(text: str) -> str:
    return "" if text == "<Root>" else text.lower().rstrip(".")


def dns_messages(path: Path, decode_as: tuple[str, ...] = ()) -> list[dict]:
    """Per DNS message: client address, direction, questions, answer records."""
    out = tshark(path, *decode_as, "-Y", DNS_FILTER, "-T", "json", "--no-duplicate-keys",
                 "-J", "frame ip ipv6 dns")
    messages = []
    for packet in json.loads(out or "[]"):
        layers = packet["_source"]["layers"]
        network = innermost(layers["frame"]["frame.protocols"], "ip", "ipv6")
        ip = _listify(layers[network])[-1]
        src = ip.get("ip.src") or ip.get("ipv6.src")
        dst = ip.get("ip.dst") or ip.get("ipv6.dst")
        for dns in _listify(layers["dns"]):
            response = dns.get("dns.flags_tree", {}).get("dns.flags.response") == "1"
            questions = [(_name(q["dns.qry.name"]), int(q.get("dns.qry.type", -1)))
                         for q in _records(dns.get("Queries"), "dns.qry.name")]
            answers = []
            for record in _records(dns.get("Answers"), "dns.resp.type"):
                rrtype = int(record["dns.resp.type"])
                data = record.get("dns.a") or record.get("dns.aaaa") or record.get("dns.cname")
                answers.append((_name(record.get("dns.resp.name", "")), rrtype,
                                _name(data) if rrtype == 5 and data else data))
            messages.append({"client": dst if response else src, "response": response,
                             "questions": questions, "answers": answers})
    return messages


def flow_tuples(path: Path, decode_as: tuple[str, ...] = ()) -> set[tuple]:
    """Direction-free (proto, address, port, address, port) of every TCP/UDP packet."""
    out = tshark(path, *decode_as, "-Y", FLOW_FILTER, "-T", "fields", "-E", "occurrence=l",
                 "-e", "frame.protocols",
                 "-e", "ip.src", "-e", "ipv6.src", "-e", "ip.dst", "-e", "ipv6.dst",
                 "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "udp.srcport", "-e", "udp.dstport")
    tuples = set()
    for line in out.splitlines():
        protocols, src4, src6, dst4, dst6, tsp, tdp, usp, udp = (line.split("\t") + [""] * 9)[:9]
        six = innermost(protocols, "ip", "ipv6") == "ipv6"
        src, dst = (src6, dst6) if six else (src4, dst4)
        transport = innermost(protocols, "tcp", "udp")
        chain = protocols.split(":")
        if not transport or TUNNEL_LAYERS & set(chain[len(chain) - chain[::-1].index(transport):]):
            continue                               # a carrier with no TCP/UDP inside
        if transport == "tcp" and tsp:
            proto, sport, dport = 6, int(tsp), int(tdp)
        elif transport == "udp" and usp:
            proto, sport, dport = 17, int(usp), int(udp)
        else:
            continue
        tuples.add(canonical(proto, src, sport, dst, dport))
    return tuples


def canonical(proto: int, src: str, sport: int, dst: str, dport: int) -> tuple:
    a, b = (src, sport), (dst, dport)
    return (proto, *min(a, b), *max(a, b))
