"""`misp`: MISP event / feed JSON.

Reads attributes of an event (`{"Event": {...}}`), of a list of events, or of
a `{"response": [...]}` search result, including attributes inside objects.
Types read: domain, hostname, ip-dst, ip-src, ip-dst|port, ip-src|port,
domain|ip. Attributes with `to_ids` false are skipped (counted as rejected with
that reason), as MISP intends them for context, not detection. The "line" of
an entry is the attribute's position in the document.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace

from sensor.blocklist.formats.common import (
    BadLine,
    Entry,
    Parsed,
    address_entry,
    domain_entry,
    json_document,
)

_DOMAIN_TYPES = frozenset(("domain", "hostname"))
_ADDRESS_TYPES = frozenset(("ip-dst", "ip-src"))
_PORT_TYPES = frozenset(("ip-dst|port", "ip-src|port"))


def _events(document: object, depth: int = 0) -> list[dict]:
    """The events of a document: an event, a list of them, or a search result (nothing
    deeper is a MISP shape, so deeper nesting is not walked)."""
    if isinstance(document, list) and depth < 3:
        return [e for item in document for e in _events(item, depth + 1)]
    if isinstance(document, dict):
        if "response" in document:
            return _events(document["response"], depth + 1)
        if "Event" in document:
            return _dicts([document["Event"]])
        if "Attribute" in document:
            return [document]
    return []


def _dicts(items: object) -> list[dict]:
    """The objects of a JSON list (anything else in a feed is not an event or attribute)."""
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _attributes(event: dict) -> list[dict]:
    attributes = _dicts(event.get("Attribute"))
    for obj in _dicts(event.get("Object")):
        attributes += _dicts(obj.get("Attribute"))
    return attributes


def parse(text: str, options: Mapping[str, object]) -> Iterator[Parsed]:
    document = json_document(text)
    if isinstance(document, BadLine):
        yield document
        return
    number = 0
    for event in _events(document):
        comment = str(event.get("info") or "")
        listed = str(event.get("date") or "")
        for attribute in _attributes(event):
            number += 1
            kind, value = str(attribute.get("type", "")), str(attribute.get("value", ""))
            if not attribute.get("to_ids", False):
                yield BadLine(number, f"attribute {value!r}: to_ids is false")
                continue
            if kind in _DOMAIN_TYPES:
                parsed = [domain_entry(number, value)]
            elif kind in _ADDRESS_TYPES:
                parsed = [address_entry(number, value)]
            elif kind in _PORT_TYPES:
                parsed = [address_entry(number, value.split("|", 1)[0])]
            elif kind == "domain|ip" and "|" in value:
                name, address = value.split("|", 1)
                parsed = [domain_entry(number, name), address_entry(number, address)]
            else:
                yield BadLine(number, f"attribute type {kind!r} is not supported")
                continue
            for entry in parsed:
                if isinstance(entry, Entry):
                    entry = replace(entry, comment=str(attribute.get("comment") or comment),
                                    first_listed=listed)
                yield entry
