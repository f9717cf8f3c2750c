"""`domains`: one name per line; `=name` lists that exact name only."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from sensor.blocklist.formats import Parsed, content_lines, domain_entry


def parse(lines: Iterable[str]) -> Iterator[Parsed]:
    for number, text in content_lines(lines):
        yield domain_entry(number, text)
