"""TLS client fingerprints: `sslbl-ja3`, abuse.ch SSLBL's JA3 CSV (`ja3_md5,Firstseen,
Lastseen,Listingreason`), and `ja4`, one FoxIO JA4 fingerprint per line. They match
the `tls.ja3` and `tls.ja4` points; the reason SSLBL gives (a malware family) becomes
the entry's comment and its first-seen date its first_listed."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from sensor.blocklist.formats.common import BadLine, Entry, Parsed, content_lines

JA3_MD5 = re.compile(r"[0-9a-f]{32}\Z")
JA4 = re.compile(r"[tqd](?:1[0-3]|s[1-3]|00)[di]\d{4}[0-9a-z]{2}_[0-9a-f]{12}_[0-9a-f]{12}\Z")


def parse_ja3(text: str, options: Mapping[str, object]) -> Iterator[Parsed]:
    for number, line in content_lines(text.splitlines()):
        value, _, rest = line.partition(",")
        value = value.strip().lower()
        if not JA3_MD5.match(value):
            yield BadLine(number, f"{value[:60]!r} is not a JA3 MD5 (32 hex digits)")
            continue
        cells = [cell.strip() for cell in rest.split(",")]
        first_seen = cells[0].split()[0] if cells and cells[0] else ""
        yield Entry(number, "ja3", value, first_listed=first_seen,
                    comment=cells[2] if len(cells) > 2 else "")


def parse_ja4(text: str, options: Mapping[str, object]) -> Iterator[Parsed]:
    for number, line in content_lines(text.splitlines()):
        value = line.split()[0].lower()
        if not JA4.match(value):
            yield BadLine(number, f"{value[:60]!r} is not a JA4 fingerprint "
                          "(like t13d1516h2_8daaf6152771_e5627efa2ab1)")
            continue
        yield Entry(number, "ja4", value, comment=" ".join(line.split()[1:]))
