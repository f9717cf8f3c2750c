"""`hosts`: hosts-file lines (`0.0.0.0 name [name…]`); the address is ignored."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from sensor.blocklist.formats.common import BadLine, Parsed, content_lines, domain_entry, is_address

# Names every hosts file carries for the machine itself, never indicators.
_LOCAL_NAMES = frozenset(("localhost", "localhost.localdomain", "local", "broadcasthost",
                          "ip6-localhost", "ip6-loopback", "ip6-localnet", "ip6-mcastprefix",
                          "ip6-allnodes", "ip6-allrouters", "ip6-allhosts", "0.0.0.0"))


def parse(text: str, options: Mapping[str, object]) -> Iterator[Parsed]:
    for number, line in content_lines(text.splitlines()):
        fields = line.split()
        if len(fields) < 2 or not is_address(fields[0]):
            yield BadLine(number, "expected an address followed by one or more names")
            continue
        for name in fields[1:]:
            if name.lower() not in _LOCAL_NAMES:
                yield domain_entry(number, name)
