"""Sources → one compiled `Blocklist`, with a report of what loaded and what did not.

This is the edge of the blocklist package: it reads `rules.yaml` and list
files. A bad line is reported as `file:line: reason` and the rest loads; a
source that cannot be read, or yields nothing (unless `allow_empty`), is an
error for that source only. The same indicator from several sources is
merged (all sources kept, highest severity wins), never doubled.

Safety guards, each overridden per source with `force: true`: a name that is
a public suffix (`com`, `gov.vn`; the Public Suffix List shipped by the
publicsuffixlist package) or that an allowlist covers is not loaded, nor an
IPv4 network wider than /8 or an IPv6 one wider than /32. Allowlists load
first so that the second guard can see them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from publicsuffixlist import PublicSuffixList

from sensor.blocklist.formats.common import BadLine, Entry
from sensor.blocklist.formats.registry import FORMATS, detect_format, parser_for
from sensor.blocklist.formats.suricata import DATASET_TYPES
from sensor.blocklist.matcher import Blocklist, Provenance
from sensor.blocklist.remote import DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT, FetchError, fetch
from sensor.support.paths import cache_directory


class RulesError(Exception):
    """A rules file that cannot be used at all (the message names file and key)."""


DEFAULT_CACHE_DIR = cache_directory()


@dataclass(frozen=True)
class Source:
    name: str
    path: Path                          # a local file, or where a remote one is shown from
    format: str
    campaign: str = ""
    severity: int = 2
    allow: bool = False
    resolvers: bool = False             # doh_resolvers: public DoH services, not indicators
    allow_empty: bool = False
    force: bool = False                 # load entries the safety guards would refuse
    dataset_type: str = ""              # suricata-dataset: string | ipv4 | ipv6 | ip
    column: str = ""                    # csv: the indicator column's header
    url: str = ""                       # remote source: https://…
    ca_file: str = ""
    insecure: bool = False
    timeout: float = DEFAULT_TIMEOUT
    max_bytes: int = DEFAULT_MAX_BYTES

    @property
    def options(self) -> dict[str, object]:
        return {"dataset_type": self.dataset_type, "column": self.column}


@dataclass
class SourceReport:
    source: Source
    detected_format: str = ""
    notes: list[str] = field(default_factory=list)        # warnings that are not bad lines
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
            lines += [f"{report.source.path}: {note}" for note in report.notes]
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
    unknown = set(document) - {"sources", "allowlist", "doh_resolvers"}
    if unknown:
        raise RulesError(f"{path}: unknown key(s): {', '.join(sorted(unknown))}")
    sources = []
    for section in ("sources", "allowlist", "doh_resolvers"):
        items = document.get(section) or []
        if not isinstance(items, list):
            raise RulesError(f"{path}: '{section}' must be a list")
        for index, item in enumerate(items):
            source = _source(path, f"{section}[{index}]", item, section == "allowlist")
            sources.append(replace(source, resolvers=section == "doh_resolvers"))
    return sources


def _source(rules_path: Path, where: str, item: object, allow: bool) -> Source:
    def fail(message: str) -> RulesError:
        return RulesError(f"{rules_path}: {where}: {message}")

    if not isinstance(item, dict):
        raise fail("expected a mapping with name, path and format")
    unknown = set(item) - {"name", "path", "url", "format", "campaign", "severity",
                           "allow_empty", "force", "dataset_type", "column", "ca_file",
                           "insecure", "timeout", "max_bytes"}
    if unknown:
        raise fail(f"unknown key(s): {', '.join(sorted(unknown))}")
    if not isinstance(item.get("name"), str) or not item["name"]:
        raise fail("'name' is required and must be a string")
    url = item.get("url", "")
    if bool(url) == bool(item.get("path")) or not isinstance(url or item["path"], str):
        raise fail("give either 'path' (a local file) or 'url' (https://…), as a string")
    if url and not url.startswith(("https://", "http://")):
        raise fail(f"url {url!r} must start with https://")
    for key in ("timeout", "max_bytes"):
        if key in item and (not isinstance(item[key], int | float) or item[key] <= 0):
            raise fail(f"'{key}' must be a positive number")
    format_name = item.get("format", "auto")
    if format_name not in (*FORMATS, "auto"):
        raise fail(f"format {format_name!r} is not one of {', '.join(FORMATS)}, auto")
    severity = item.get("severity", 2)
    if not isinstance(severity, int) or not 1 <= severity <= 3:
        raise fail("'severity' must be 1 (high), 2 or 3 (low)")
    dataset_type = str(item.get("dataset_type", ""))
    if dataset_type and dataset_type not in DATASET_TYPES:
        raise fail(f"dataset_type {dataset_type!r} is not one of {', '.join(DATASET_TYPES)}")
    for key in ("allow_empty", "force", "insecure"):
        if not isinstance(item.get(key, False), bool):
            raise fail(f"'{key}' must be true or false")
    return Source(name=item["name"], path=Path(url) if url else rules_path.parent / item["path"],
                  url=url, ca_file=str(rules_path.parent / item["ca_file"]) if item.get(
                      "ca_file") else "",
                  insecure=item.get("insecure", False),
                  timeout=float(item.get("timeout", DEFAULT_TIMEOUT)),
                  max_bytes=int(item.get("max_bytes", DEFAULT_MAX_BYTES)), format=format_name,
                  campaign=str(item.get("campaign", "")), severity=severity, allow=allow,
                  allow_empty=item.get("allow_empty", False), force=item.get("force", False),
                  dataset_type=dataset_type, column=str(item.get("column", "")))


def load_blocklist(rules_paths: list[Path],
                   cache_dir: Path = DEFAULT_CACHE_DIR) -> tuple[Blocklist, LoadReport]:
    """Compile every source of every rules argument into one `Blocklist`."""
    return load_sources([source for path in rules_paths for source in read_sources(path)],
                        cache_dir)


def load_sources(sources: list[Source], cache_dir: Path) -> tuple[Blocklist, LoadReport]:
    """Compile sources already read from their rules files into one `Blocklist`."""
    blocklist = Blocklist.empty()
    report = LoadReport()
    shared: dict[Provenance, Provenance] = {}
    for source in sorted(sources, key=lambda s: not s.allow):     # allowlists first
        report.sources.append(_load_source(source, blocklist, cache_dir, shared))
    blocklist.compile()
    return blocklist, report


@cache
def public_suffix_test() -> Callable[[str], bool]:
    """`is_public` of the publicsuffixlist package, asked only where a rule could answer
    yes. A name of two labels or more is public only by a rule that names it (`x`,
    `*.x`) or a wildcard over its parent (`*.parent`); any other name is not public and
    is not asked (the package takes ~1.4 µs a name, 1.4 s of a million-name load). The
    rules are the package's own parsed set (`_publicsuffix`, private): without it,
    every name is asked."""
    suffixes = PublicSuffixList()
    rules = getattr(suffixes, "_publicsuffix", None)
    if not isinstance(rules, frozenset | set) or not all(isinstance(r, str) for r in rules):
        return suffixes.is_public
    named = frozenset(rule.removeprefix("!").removeprefix("*.") for rule in rules)
    wildcard_parents = frozenset(rule[2:] for rule in rules if rule.startswith("*."))
    ask = suffixes.is_public

    def is_public(name: str) -> bool:
        parent = name.partition(".")[2]
        return (not parent or name in named or parent in wildcard_parents) and ask(name)

    return is_public


def guard(source: Source, blocklist: Blocklist) -> Callable[[Entry], str]:
    """The safety guards for one source's entries: a function of an entry saying why it
    is refused, or "" to load it. Made once a source, as what it asks is fixed by then
    (allowlists load first)."""
    if source.allow or source.resolvers:
        what = "an allowlist" if source.allow else "a resolver list"
        return lambda entry: "" if entry.kind in ("domain", "ip", "cidr") else \
            f"{entry.value!r}: {what} holds names and addresses, not {entry.kind}s"
    if source.force:
        return lambda entry: ""
    is_public = public_suffix_test()
    allowlisted = blocklist.allow_domains.match if len(blocklist.allow_domains) else None

    def refusal(entry: Entry) -> str:
        if entry.kind == "domain":
            if is_public(entry.value):
                return f"{entry.value!r} is a public suffix: it would match every name " \
                       "under it (force: true to load it anyway)"
            allowed = allowlisted(entry.value) if allowlisted is not None else None
            if allowed is not None:
                return f"{entry.value!r} is allowlisted by {allowed} " \
                       "(force: true to load it anyway)"
            return ""
        if entry.key is None:                           # a URL or a fingerprint
            return ""
        packed, prefixlen = entry.key
        widest = 8 if len(packed) == 4 else 32
        if prefixlen < widest:
            return f"{entry.value} is wider than /{widest} (force: true to load it anyway)"
        return ""

    return refusal


def _read(source: Source, cache_dir: Path, report: SourceReport) -> str | None:
    """The source's text, or None with `report.error` set."""
    if source.url:
        try:
            fetched = fetch(source.url, cache_dir / "lists", source.timeout, source.max_bytes,
                            source.ca_file or None, source.insecure)
        except FetchError as err:
            report.error = f"cannot fetch: {err}"
            return None
        if fetched.warning:
            report.notes.append(fetched.warning)
        return fetched.text
    try:
        return source.path.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        report.error = f"cannot read: {err.strerror or err}"
        return None


def _load_source(source: Source, blocklist: Blocklist, cache_dir: Path,
                 shared: dict[Provenance, Provenance]) -> SourceReport:
    report = SourceReport(source)
    text = _read(source, cache_dir, report)
    if text is None:
        return report
    format_name = detect_format(text) if source.format == "auto" else source.format
    report.detected_format = format_name
    parser = parser_for(format_name)
    assert parser is not None
    plain = Provenance((source.name,), source.campaign, source.severity, "", "")
    plain = shared.setdefault(plain, plain)     # what most entries of a feed carry
    by_kind: Counter[str] = Counter()           # a million lines: counted in locals
    duplicates = 0
    refusal = guard(source, blocklist)
    for item in parser(text, source.options):
        if item.__class__ is BadLine:
            report.rejected.append(f"{source.path}:{item.line}: {item.reason}")
            continue
        refused = refusal(item)
        if refused:
            report.rejected.append(f"{source.path}:{item.line}: {refused}")
        elif _add(blocklist, source, item, shared, plain):
            by_kind[item.kind] += 1
        else:
            duplicates += 1
    report.by_kind.update(by_kind)
    report.entries += by_kind.total()
    report.duplicates += duplicates
    if report.entries == 0 and not source.allow_empty:
        report.error = f"no usable entries in {format_name} format " \
                       "(set allow_empty: true if an empty list is expected)"
    return report


def _add(blocklist: Blocklist, source: Source, entry: Entry,
         shared: dict[Provenance, Provenance], plain: Provenance) -> bool:
    """Add one entry; False when this source already listed it. (Called once a line
    of every list: no closures or objects made here that the common case, a new
    entry, does not need.)"""
    if source.resolvers:
        return _add_resolver(blocklist, source, entry)
    if entry.kind == "domain":
        domains = blocklist.allow_domains if source.allow else blocklist.domains
        existing = domains.get(entry.value, entry.exact)
        value = _listing(source, entry, existing, shared, plain)
        if value is not None:
            domains.add(entry.value, value, entry.exact, entry.subdomains_only)
        elif not (entry.exact or entry.subdomains_only):
            domains.include_name(entry.value)     # listed again, this time with the name
    elif entry.kind == "url":
        prefix = entry.value.endswith("*")
        url = entry.value[:-1] if prefix else entry.value
        value = _listing(source, entry, blocklist.urls.get(url, prefix), shared, plain)
        if value is not None:
            blocklist.urls.add(url, value, prefix)
    elif entry.key is None:                       # ja3, ja4
        value = _listing(source, entry, blocklist.fingerprints.get(entry.value), shared, plain)
        if value is not None:
            blocklist.fingerprints[entry.value] = value
    else:
        assert entry.key is not None, "address entries carry their parsed key"
        packed, prefixlen = entry.key
        addresses = blocklist.allow_addresses if source.allow else blocklist.addresses
        existing = addresses.get_key(packed, prefixlen)
        value = _listing(source, entry, existing, shared, plain)
        if value is not None:
            addresses.add_key(packed, prefixlen, value)
    return value is not None


def _add_resolver(blocklist: Blocklist, source: Source, entry: Entry) -> bool:
    """A DoH resolver's name or address; False when listed before."""
    if entry.kind == "domain":
        if blocklist.resolvers.get(entry.value) is not None:
            return False
        blocklist.resolvers.add(entry.value, source.name)
        return True
    assert entry.key is not None, "address entries carry their parsed key"
    if blocklist.resolver_addresses.get_key(*entry.key) is not None:
        return False
    blocklist.resolver_addresses.add_key(*entry.key, source.name)
    return True


def _listing(source: Source, entry: Entry, existing: Any,
             shared: dict[Provenance, Provenance], plain: Provenance) -> Any:
    """What to store for an entry already stored as `existing` (None: new), or None
    when this source listed it before: the allowlist's source name, or the merged
    provenance, one shared object per distinct story (`plain`: the source's own, for
    an entry that says nothing more about itself)."""
    if source.allow:
        return source.name if existing is None else None
    if existing is None and not (entry.campaign or entry.severity or entry.comment
                                 or entry.first_listed):
        return plain
    if existing is None:
        provenance = Provenance((source.name,), entry.campaign or source.campaign,
                                entry.severity or source.severity, entry.comment,
                                entry.first_listed)
    elif source.name in existing.sources:
        return None
    else:
        provenance = Provenance(
            existing.sources + (source.name,),
            existing.campaign or entry.campaign or source.campaign,
            min(existing.severity, entry.severity or source.severity),
            existing.comment or entry.comment,
            min(filter(None, (existing.first_listed, entry.first_listed)), default=""))
    return shared.setdefault(provenance, provenance)
