"""`domains`: one name per line; `=name` lists that exact name only."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from sensor.blocklist.formats.common import Parsed, content_lines, domain_entry


def parse(text: str, options: Mapping[str, object]) -> Iterator[Parsed]:
    for number, line in content_lines(text.splitlines()):
        yield domain_entry(number, line)
