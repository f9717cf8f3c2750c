"""One small parser per feed format: text lines in, entries and bad lines out.

Parsers are pure (they take lines, never open files) so that a local file, a
cached download and a test string all go through the same code. Each yields
`Entry` for a usable line and `BadLine` (with the reason) for one it rejects;
comments and blank lines yield nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from ipaddress import ip_address, ip_network


@dataclass(frozen=True, slots=True)
class Entry:
    line: int
    kind: str           # domain | ip | cidr
    value: str          # normalised: lowercase punycode name, or ipaddress text
    exact: bool = False


@dataclass(frozen=True, slots=True)
class BadLine:
    line: int
    reason: str


Parsed = Entry | BadLine
Parser = Callable[[Iterable[str]], Iterator[Parsed]]

_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)\Z")


def content_lines(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """(line number, text) for each line that is not blank or a `#` comment."""
    for number, raw in enumerate(lines, 1):
        text = raw.split("#", 1)[0].strip()
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
    labels = name.split(".")
    if len(labels) < 2:
        raise ValueError(f"{name!r} is a single label: it would match a whole top-level domain")
    for label in labels:
        if not _LABEL.match(label):
            raise ValueError(f"bad label {label!r}")
    return name


def domain_entry(number: int, text: str) -> Parsed:
    exact = text.startswith("=")
    try:
        return Entry(number, "domain", normalise_domain(text[1:] if exact else text), exact)
    except ValueError as err:
        return BadLine(number, str(err))


def address_entry(number: int, text: str) -> Parsed:
    try:
        network = ip_network(text, strict=False)
    except ValueError:
        return BadLine(number, f"{text!r} is not an IP address or CIDR")
    if network.prefixlen == network.max_prefixlen:
        return Entry(number, "ip", str(network.network_address))
    return Entry(number, "cidr", str(network))


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


def detect_format(lines: list[str]) -> str:
    """Guess `hosts`, `ips` or `domains` from the first content lines."""
    sample = [text for _, text in content_lines(lines[:200])][:50]
    if not sample:
        return "domains"
    split = [text.split() for text in sample]
    if sum(len(t) >= 2 and is_address(t[0]) for t in split) * 2 > len(sample):
        return "hosts"
    if sum(looks_like_network(t[0]) for t in split) * 2 > len(sample):
        return "ips"
    return "domains"


def parser_for(format_name: str) -> Parser | None:
    from sensor.blocklist.formats import domains, hosts, ips

    return {"domains": domains.parse, "ips": ips.parse, "hosts": hosts.parse}.get(format_name)


FORMATS = ("domains", "ips", "hosts")
