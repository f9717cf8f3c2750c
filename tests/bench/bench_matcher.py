#!/usr/bin/env python3
"""Blocklist matcher at national scale, beside a plain Python `set`.

Generates 1,000,000 domains and 1,000,000 IPv4/IPv6 entries (50,000 of them
CIDRs) as list files, then measures, each in a fresh process: cold load from
text, resident memory of the loaded matcher (RSS after minus before), and
lookups per second on a realistic mix (99% misses, names of 2–6 labels;
addresses 80% IPv4). The baseline is the same entries in plain `set`s with
the same suffix walk for names and exact lookups for addresses (no CIDRs).
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / "matcher"
DOMAINS, ADDRESSES, CIDRS = 1_000_000, 950_000, 50_000
LOOKUPS = 1_000_000

MEASURE = r'''
import os, random, sys, time
from pathlib import Path

def rss():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

work, kind = Path(sys.argv[1]), sys.argv[2]
names = (work / "names.txt").read_text().split()
addresses = [bytes.fromhex(h) for h in (work / "addresses.txt").read_text().split()]
before = rss()
started = time.perf_counter()
if kind in ("madoc", "warm"):
    from sensor.blocklist.cache import load_cached
    from sensor.blocklist.loader import load_blocklist
    if kind == "madoc":
        blocklist, report = load_blocklist([work / "rules.yaml"])
    else:
        blocklist, report, from_cache = load_cached([work / "rules.yaml"], work / "cache")
        assert from_cache
    assert not report.failed, report.warnings[:3]
    match_name, match_address = blocklist.match_domain, blocklist.match_address
else:
    listed = set()
    for line in (work / "domains.txt").read_text().split():
        listed.add(line)
    hosts = set()
    import ipaddress
    for line in (work / "ips.txt").read_text().split():
        if "/" not in line:
            hosts.add(ipaddress.ip_address(line).packed)
    def match_name(name):
        while True:
            if name in listed:
                return name
            dot = name.find(".")
            if dot < 0:
                return None
            name = name[dot + 1:]
    match_address = hosts.__contains__
load = time.perf_counter() - started
memory = rss() - before
started = time.perf_counter()
hits = sum(match_name(n) is not None for n in names)
name_rate = len(names) / (time.perf_counter() - started)
started = time.perf_counter()
hits += sum(bool(match_address(a)) for a in addresses)
address_rate = len(addresses) / (time.perf_counter() - started)
print(f"{load:.2f} {memory / 2**20:.0f} {name_rate:.0f} {address_rate:.0f} {hits}")
'''


def label(rng: random.Random) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(3, 12)))


def generate() -> None:
    rng = random.Random(7)
    WORK.mkdir(exist_ok=True)
    tlds = ["com", "net", "org", "vn", "com.vn", "info", "xyz", "ru", "cn", "top"]
    domains = [f"{label(rng)}.{rng.choice(tlds)}" if rng.random() < 0.7
               else f"{label(rng)}.{label(rng)}.{rng.choice(tlds)}" for _ in range(DOMAINS)]
    (WORK / "domains.txt").write_text("\n".join(domains) + "\n")
    ips = []
    for _ in range(ADDRESSES):
        if rng.random() < 0.8:
            ips.append(f"{rng.randint(1, 223)}.{rng.randrange(256)}.{rng.randrange(256)}."
                       f"{rng.randrange(256)}")
        else:
            ips.append(f"2001:db8:{rng.randrange(65536):x}:{rng.randrange(65536):x}::"
                       f"{rng.randrange(65536):x}")
    for _ in range(CIDRS):
        plen = rng.choice((20, 22, 24, 24, 24, 28))      # covers about 1% of IPv4
        base = rng.randrange(1 << 32) >> (32 - plen) << (32 - plen)
        ips.append(f"{base >> 24 & 255}.{base >> 16 & 255}.{base >> 8 & 255}.{base & 255}/{plen}")
    (WORK / "ips.txt").write_text("\n".join(ips) + "\n")
    (WORK / "rules.yaml").write_text(
        "sources:\n  - {name: domains, path: domains.txt, format: domains}\n"
        "  - {name: ips, path: ips.txt, format: ips}\n")
    names, addresses = [], []
    for _ in range(LOOKUPS):                       # 1% hits: a subdomain of a listed name
        if rng.random() < 0.01:
            names.append(f"{label(rng)}.{rng.choice(domains)}")
        else:
            names.append(".".join(label(rng) for _ in range(rng.randint(1, 5)))
                         + "." + rng.choice(tlds))
        if rng.random() < 0.8:
            addresses.append(rng.randrange(1 << 32).to_bytes(4, "big").hex())
        else:
            addresses.append((0x20010DB8 << 96 | rng.randrange(1 << 96)).to_bytes(16, "big").hex())
    (WORK / "names.txt").write_text("\n".join(names) + "\n")
    (WORK / "addresses.txt").write_text("\n".join(addresses) + "\n")


def main() -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    if not (WORK / "names.txt").exists():
        generate()
    print(f"{DOMAINS:,} domains, {ADDRESSES + CIDRS:,} addresses ({CIDRS:,} CIDRs); "
          f"{LOOKUPS:,} lookups each of names and addresses, 99% misses")
    print(f"{'matcher':<34} {'load s':>11} {'memory MiB':>11} {'names/s':>12} "
          f"{'addresses/s':>12}")
    subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                    "from sensor.blocklist.cache import load_cached; "
                    "load_cached([Path(sys.argv[1]) / 'rules.yaml'], Path(sys.argv[1]) / 'cache')",
                    str(WORK)], check=True, cwd=HERE.parent.parent)      # fills the cache
    for kind, title in (("madoc", "madoc, cold (from the list files)"),
                        ("warm", "madoc, warm (compiled cache)"),
                        ("set", "plain set (no CIDRs, no provenance)")):
        out = subprocess.run([sys.executable, "-c", MEASURE, str(WORK), kind], check=True,
                             capture_output=True, text=True, cwd=HERE.parent.parent).stdout
        load, memory, names, addresses, _ = out.split()
        print(f"{title:<34} {float(load):>11.2f} {int(memory):>11,} {int(names):>12,} "
              f"{int(addresses):>12,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
