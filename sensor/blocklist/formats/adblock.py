"""`adblock`: Adblock-style domain rules as Pi-hole and pfBlockerNG lists ship them.

`||name^` lists the name and its subdomains; options after `$` are ignored.
`!` lines and `[Adblock …]` headers are comments. Exception rules (`@@`) and
cosmetic or URL-path rules are rejected with the reason: they are not
domain indicators.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from sensor.blocklist.formats.common import BadLine, Parsed, domain_entry


def parse(text: str, options: Mapping[str, object]) -> Iterator[Parsed]:
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("!", "[", "#")):
            continue
        if line.startswith("@@"):
            yield BadLine(number, "exception rule (@@): put it in an allowlist source instead")
            continue
        rule = line.split("$", 1)[0]
        if not (rule.startswith("||") and rule.endswith("^")) or "/" in rule:
            yield BadLine(number, "not a ||name^ domain rule")
            continue
        yield domain_entry(number, rule[2:-1])
