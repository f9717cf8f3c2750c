"""`stix`: STIX 2.1 bundles; indicators whose pattern compares a domain, address or URL.

Patterns read: `[domain-name:value = '…']`, `[ipv4-addr:value = '…']`,
`[ipv6-addr:value = '…']`, `[url:value = '…']` (its host), also several joined
by OR. Any other pattern is rejected as unsupported. The "line" of an entry is
the indicator's position in the bundle; its `name`/`description` becomes the
comment and `valid_from` the first-listed date.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from sensor.blocklist.formats.common import BadLine, Parsed, json_document, value_entry

_COMPARISON = re.compile(r"(domain-name|ipv4-addr|ipv6-addr|url):value\s*=\s*'((?:[^'\\]|\\.)*)'")
_ANY_COMPARISON = re.compile(r"[\w-]+:[\w.\[\]*'-]+\s*(=|!=|<|>|LIKE|MATCHES|IN)")


def parse(text: str, options: Mapping[str, object]) -> Iterator[Parsed]:
    document = json_document(text)
    if isinstance(document, BadLine):
        yield document
        return
    objects = document.get("objects", []) if isinstance(document, dict) else document
    if not isinstance(objects, list):
        yield BadLine(1, "no list of STIX objects (a bundle's \"objects\")")
        return
    indicators = [o for o in objects if isinstance(o, dict) and o.get("type") == "indicator"]
    for number, indicator in enumerate(indicators, 1):
        pattern = str(indicator.get("pattern", ""))
        found = _COMPARISON.findall(pattern)
        if not found or len(found) != len(_ANY_COMPARISON.findall(pattern)) \
                or " AND " in pattern:
            yield BadLine(number, f"pattern not supported: {pattern[:80]}")
            continue
        comment = str(indicator.get("name") or indicator.get("description") or "")
        for _, value in found:
            yield value_entry(number, value.replace("\\'", "'"), comment=comment,
                              first_listed=str(indicator.get("valid_from", ""))[:10])
