"""What every feed parser shares: `Entry`, `BadLine`, and the checks that turn a
line's text into a normalised name, address or network."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from ipaddress import ip_address, ip_network
from socket import AF_INET, AF_INET6, inet_pton
from urllib.parse import urlsplit

from sensor.core.decode.http1 import normalise_url
from sensor.core.events import packed_text


@dataclass(slots=True)      # not frozen: a frozen dataclass's __init__ costs twice as much,
class Entry:                # and a million entries are made per load
    line: int
    kind: str           # domain | ip | cidr | url | ja3 | ja4
    value: str          # normalised: lowercase punycode name, ipaddress text, a URL as
                        # `normalise_url` gives it (ending in `*`: a prefix), a fingerprint
    exact: bool = False
    campaign: str = ""  # per-entry provenance where the format carries it
    severity: int = 0   # 0: the source's
    comment: str = ""
    first_listed: str = ""
    key: tuple[bytes, int] | None = None   # ip and cidr: (packed network address, length)
    subdomains_only: bool = False   # domain: its subdomains, not the name (RPZ's `*.name`)


@dataclass(frozen=True, slots=True)
class BadLine:
    line: int
    reason: str


Parsed = Entry | BadLine
Parser = Callable[[str, Mapping[str, object]], Iterator[Parsed]]

_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)\Z")
_NAME = re.compile(r"(?:(?!-)[a-z0-9_-]{1,63}(?<!-)\.)+(?!-)[a-z0-9_-]{1,63}(?<!-)\Z")
ADDRESS_LIKE = re.compile(r"(?=.*[.:])[0-9.]+(/\d+)?\Z|(?=.*:)[0-9a-fA-F:.]+(/\d+)?\Z")


def content_lines(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """(line number, text) for each line that is not blank or a `#` comment."""
    for number, raw in enumerate(lines, 1):
        text = (raw.split("#", 1)[0] if "#" in raw else raw).strip()
        if text:
            yield number, text


def normalise_domain(text: str) -> str:
    """A listed name in the form the decoder produces, or raise ValueError why not."""
    name = text.strip().lower().rstrip(".")
    if name.startswith("*."):
        name = name[2:]                     # "*.evil.example" means what "evil.example" means
    if not name:
        raise ValueError("empty name")
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError as err:
            raise ValueError(f"not a valid internationalised name ({err})") from None
    if len(name) > 253:
        raise ValueError("name longer than 253 characters")
    if _NAME.match(name):       # the whole name at once; label by label only to say why
        return name
    labels = name.split(".")
    if len(labels) < 2:
        raise ValueError(f"{name!r} is a single label: it would match a whole top-level domain")
    for label in labels:
        if not _LABEL.match(label):
            raise ValueError(f"bad label {label!r}")
    raise AssertionError(f"{name!r}: _NAME and _LABEL disagree")


def domain_entry(number: int, text: str) -> Parsed:
    # An address or network ends in a digit or has a colon: a name ending in a letter
    # (nearly every name) skips the pattern, a fifth of this function's time.
    if (text[-1:].isdigit() or ":" in text) and ADDRESS_LIKE.match(text) \
            and looks_like_network(text):
        return BadLine(number, f"{text!r} is an address: list it in an ips (or mixed) source")
    exact = text.startswith("=")
    try:
        return Entry(number, "domain", normalise_domain(text[1:] if exact else text), exact)
    except ValueError as err:
        return BadLine(number, str(err))


def url_entry(number: int, text: str) -> Parsed:
    """A URL indicator, normalised as requests are; one that names nothing but a host
    (an empty path or `/`, no query) is that host's domain (or address) entry. A closing
    `*` makes it a prefix."""
    prefix = text.endswith("*")
    try:
        url = normalise_url(text[:-1] if prefix else text)
    except ValueError as err:
        return BadLine(number, str(err))
    parts = urlsplit(url)
    if parts.path == "/" and not parts.query and not parts.port and not (
            prefix and text[:-1].rstrip("/").count("/") > 2):
        host = parts.hostname or ""
        return address_entry(number, host) if ADDRESS_LIKE.match(host) \
            else domain_entry(number, host)
    return Entry(number, "url", url + "*" if prefix else url)


def value_entry(number: int, text: str, **provenance: object) -> Parsed:
    """An address/CIDR, a name or a URL, whichever `text` is."""
    text = text.strip()
    if "://" in text:
        parsed = url_entry(number, text)
    elif ADDRESS_LIKE.match(text):
        parsed = address_entry(number, text)
    else:
        parsed = domain_entry(number, text)
    if isinstance(parsed, Entry) and provenance:
        return replace(parsed, **provenance)
    return parsed


def network_key(text: str) -> tuple[bytes, int] | None:
    """(packed network address with host bits cleared, prefix length) of an address or
    CIDR in its usual notation, or None. `inet_pton` is strict (four decimal parts, no
    leading zeros, no zone) and a hundred times cheaper than an ipaddress object, which
    matters at a million lines; anything it refuses goes to `ip_network` instead."""
    address, slash, bits = text.partition("/")
    family = AF_INET6 if ":" in address else AF_INET
    try:
        packed = inet_pton(family, address)
    except OSError:
        return None
    width = len(packed) * 8
    if not slash:
        return packed, width
    if not (bits.isascii() and bits.isdigit() and len(bits) <= 3) or int(bits) > width:
        return None
    host_bits = width - int(bits)
    number = int.from_bytes(packed, "big") >> host_bits << host_bits
    return number.to_bytes(len(packed), "big"), int(bits)


def address_entry(number: int, text: str) -> Parsed:
    key = network_key(text)
    if key is None:
        try:
            network = ip_network(text, strict=False)
        except ValueError:
            return BadLine(number, f"{text!r} is not an IP address or CIDR")
        key = (network.network_address.packed, network.prefixlen)
    packed, prefixlen = key
    address = packed_text(packed)              # as alerts print it
    if prefixlen == len(packed) * 8:
        return Entry(number, "ip", address, key=key)
    return Entry(number, "cidr", f"{address}/{prefixlen}", key=key)


def json_document(text: str) -> object | BadLine:
    """The parsed JSON of a feed, or one BadLine naming where it breaks."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        return BadLine(err.lineno, f"not valid JSON: {err.msg}")
    except RecursionError:
        return BadLine(1, "JSON nested too deeply")


def is_address(text: str) -> bool:
    try:
        ip_address(text)
    except ValueError:
        return False
    return True


def looks_like_network(text: str) -> bool:
    try:
        ip_network(text, strict=False)
    except ValueError:
        return False
    return True


CSV_INDICATOR_COLUMNS = ("indicator", "value", "ioc", "domain", "ip", "address", "host", "url")
