"""Sources → one compiled `Blocklist`, with a report of what loaded and what did not.

This is the edge of the blocklist package: it reads `rules.yaml` and list
files. A bad line is reported as `file:line: reason` and the rest loads; a
source that cannot be read, or yields nothing, is an error for that source
only. The same indicator from several sources is merged (all sources kept,
highest severity wins), never doubled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import ip_network
from pathlib import Path

import yaml

from sensor.blocklist.formats import FORMATS, BadLine, Entry, detect_format, parser_for
from sensor.blocklist.matcher import Blocklist
from sensor.events import Indicator


class RulesError(Exception):
    """A rules file that cannot be used at all (the message names file and key)."""


@dataclass(frozen=True)
class Source:
    name: str
    path: Path
    format: str
    campaign: str = ""
    severity: int = 2
    allow: bool = False


@dataclass
class SourceReport:
    source: Source
    entries: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    rejected: list[str] = field(default_factory=list)   # "file:line: reason"
    error: str = ""


@dataclass
class LoadReport:
    sources: list[SourceReport] = field(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        lines = []
        for report in self.sources:
            lines += report.rejected
            if report.error:
                lines.append(f"{report.source.path}: {report.error}")
        return lines

    @property
    def failed(self) -> bool:
        return any(report.error for report in self.sources)


def read_sources(path: Path) -> list[Source]:
    """The sources a rules argument names: a `rules.yaml`, or one list file."""
    if path.suffix.lower() not in (".yaml", ".yml"):
        return [Source(name=path.stem, path=path, format="auto")]
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError) as err:
        raise RulesError(f"{path}: cannot read: {err}") from None
    except yaml.YAMLError as err:
        raise RulesError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(document, dict):
        raise RulesError(f"{path}: expected a mapping with 'sources' and 'allowlist'")
    unknown = set(document) - {"sources", "allowlist"}
    if unknown:
        raise RulesError(f"{path}: unknown key(s): {', '.join(sorted(unknown))}")
    sources = []
    for section, allow in (("sources", False), ("allowlist", True)):
        items = document.get(section) or []
        if not isinstance(items, list):
            raise RulesError(f"{path}: '{section}' must be a list")
        for index, item in enumerate(items):
            sources.append(_source(path, f"{section}[{index}]", item, allow))
    return sources


def _source(rules_path: Path, where: str, item: object, allow: bool) -> Source:
    def fail(message: str) -> RulesError:
        return RulesError(f"{rules_path}: {where}: {message}")

    if not isinstance(item, dict):
        raise fail("expected a mapping with name, path and format")
    unknown = set(item) - {"name", "path", "format", "campaign", "severity"}
    if unknown:
        raise fail(f"unknown key(s): {', '.join(sorted(unknown))}")
    for key in ("name", "path"):
        if not isinstance(item.get(key), str) or not item[key]:
            raise fail(f"'{key}' is required and must be a string")
    format_name = item.get("format", "auto")
    if format_name not in (*FORMATS, "auto"):
        raise fail(f"format {format_name!r} is not one of {', '.join(FORMATS)}, auto")
    severity = item.get("severity", 2)
    if not isinstance(severity, int) or not 1 <= severity <= 3:
        raise fail("'severity' must be 1 (high), 2 or 3 (low)")
    return Source(name=item["name"], path=rules_path.parent / item["path"], format=format_name,
                  campaign=str(item.get("campaign", "")), severity=severity, allow=allow)


def load_blocklist(rules_paths: list[Path]) -> tuple[Blocklist, LoadReport]:
    """Compile every source of every rules argument into one `Blocklist`."""
    blocklist = Blocklist.empty()
    report = LoadReport()
    for rules_path in rules_paths:
        for source in read_sources(rules_path):
            report.sources.append(_load_source(source, blocklist))
    return blocklist, report


def _load_source(source: Source, blocklist: Blocklist) -> SourceReport:
    report = SourceReport(source)
    try:
        lines = source.path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as err:
        report.error = f"cannot read: {err.strerror or err}"
        return report
    format_name = detect_format(lines) if source.format == "auto" else source.format
    parser = parser_for(format_name)
    assert parser is not None
    for item in parser(lines):
        if isinstance(item, BadLine):
            report.rejected.append(f"{source.path}:{item.line}: {item.reason}")
            continue
        if _add(blocklist, source, item):
            report.entries += 1
            report.by_kind[item.kind] = report.by_kind.get(item.kind, 0) + 1
        else:
            report.duplicates += 1
    if report.entries == 0:
        report.error = f"no usable entries in {format_name} format"
    return report


def _add(blocklist: Blocklist, source: Source, entry: Entry) -> bool:
    """Add one entry; False when this source already listed it."""
    if entry.kind == "domain":
        table, key = (blocklist.allow_domains if source.allow else blocklist.domains), entry.value
        existing = table.get(key, entry.exact)
        store = lambda value: table.add(key, value, entry.exact)  # noqa: E731
    else:
        network = ip_network(entry.value)
        table = blocklist.allow_addresses if source.allow else blocklist.addresses
        existing = table.get(network)
        store = lambda value: table.add(network, value)  # noqa: E731
    if source.allow:
        if existing is not None:
            return False
        store(source.name)
        return True
    value = ("=" if entry.exact else "") + entry.value
    if existing is None:
        store(Indicator(value, entry.kind, (source.name,), source.campaign, source.severity))
        return True
    if source.name in existing.sources:
        return False
    store(Indicator(value, entry.kind, existing.sources + (source.name,),
                    existing.campaign or source.campaign, min(existing.severity, source.severity)))
    return True
