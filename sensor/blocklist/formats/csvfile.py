"""`csv`: a header row naming the indicator column, with optional provenance columns.

The indicator column is `column:` from rules.yaml, else the first header among
indicator, value, ioc, domain, ip, address, host (any case). Optional columns:
`type` (domain, ip, cidr, url: checked against the value), `campaign`,
`severity` (1–3), `comment` (or `description`), `first_listed` (or `date`).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping

from sensor.blocklist.formats.common import (
    CSV_INDICATOR_COLUMNS,
    BadLine,
    Entry,
    Parsed,
    value_entry,
)

_TYPES = {"domain": "domain", "hostname": "domain", "ip": "ip", "ipv4": "ip", "ipv6": "ip",
          "cidr": "cidr", "subnet": "cidr", "url": "url"}


def _column(header: list[str], *names: str) -> int | None:
    lowered = [name.strip().lower() for name in header]
    for name in names:
        if name in lowered:
            return lowered.index(name)
    return None


def parse(text: str, options: Mapping[str, object]) -> Iterator[Parsed]:
    rows = csv.reader(text.splitlines())
    header = next(rows, None)
    if header is None:
        return
    wanted = str(options["column"]).lower() if options.get("column") else None
    value_at = _column(header, wanted) if wanted else _column(header, *CSV_INDICATOR_COLUMNS)
    if value_at is None:
        yield BadLine(1, f"no indicator column in the header (looked for "
                         f"{wanted or ', '.join(CSV_INDICATOR_COLUMNS)})")
        return
    type_at = _column(header, "type", "indicator_type")
    campaign_at = _column(header, "campaign")
    severity_at = _column(header, "severity")
    comment_at = _column(header, "comment", "description")
    listed_at = _column(header, "first_listed", "date", "first_seen")

    def cell(row: list[str], at: int | None) -> str:
        return row[at].strip() if at is not None and at < len(row) else ""

    for number, row in enumerate(rows, 2):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        value = cell(row, value_at)
        if not value:
            yield BadLine(number, "empty indicator cell")
            continue
        severity = cell(row, severity_at)
        if severity and severity not in ("1", "2", "3"):
            yield BadLine(number, f"severity {severity!r} is not 1, 2 or 3")
            continue
        entry = value_entry(number, value, campaign=cell(row, campaign_at),
                            severity=int(severity or 0), comment=cell(row, comment_at),
                            first_listed=cell(row, listed_at))
        declared = _TYPES.get(cell(row, type_at).lower(), "") if type_at is not None else ""
        if isinstance(entry, Entry) and declared and declared != "url" and declared != entry.kind \
                and not (declared == "cidr" and entry.kind == "ip"):
            yield BadLine(number, f"type says {declared} but {value!r} is a {entry.kind}")
            continue
        yield entry
