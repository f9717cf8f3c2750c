"""Compiled sets the hot path asks: is this name or address listed, and by what?

`DomainSet` matches at label boundaries by walking the name's suffixes
(`a.b.evil.example`, `b.evil.example`, `evil.example`) against one dict, so
`evil.example` lists every subdomain and never `notevil.example`; entries
written `=name` match that exact name only. `PrefixSet` keeps IPv4/IPv6
networks as integer keys in one dict per prefix length actually present,
asked longest first, with a direct dict for single addresses.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Generic, TypeVar

from sensor.events import Indicator

V = TypeVar("V")


class DomainSet(Generic[V]):
    __slots__ = ("_suffix", "_exact")

    def __init__(self) -> None:
        self._suffix: dict[str, V] = {}
        self._exact: dict[str, V] = {}

    def add(self, name: str, value: V, exact: bool = False) -> None:
        (self._exact if exact else self._suffix)[name] = value

    def get(self, name: str, exact: bool = False) -> V | None:
        """The value stored for this very entry (no suffix walk)."""
        return (self._exact if exact else self._suffix).get(name)

    def __len__(self) -> int:
        return len(self._suffix) + len(self._exact)

    def match(self, name: str) -> V | None:
        """The entry that lists `name` (most specific first), or None."""
        if self._exact:
            value = self._exact.get(name)
            if value is not None:
                return value
        suffix = self._suffix
        while True:
            value = suffix.get(name)
            if value is not None:
                return value
            dot = name.find(".")
            if dot < 0:
                return None
            name = name[dot + 1:]


Network = IPv4Network | IPv6Network


class PrefixSet(Generic[V]):
    """Longest-prefix match over packed addresses (4 or 16 bytes)."""

    __slots__ = ("_hosts", "_nets4", "_nets6", "_order4", "_order6")

    def __init__(self) -> None:
        self._hosts: dict[bytes, V] = {}
        self._nets4: dict[int, dict[int, V]] = {}
        self._nets6: dict[int, dict[int, V]] = {}
        self._order4: tuple[tuple[int, dict[int, V]], ...] = ()
        self._order6: tuple[tuple[int, dict[int, V]], ...] = ()

    def add(self, network: Network, value: V) -> None:
        if network.prefixlen == network.max_prefixlen:
            self._hosts[network.network_address.packed] = value
            return
        nets = self._nets4 if network.version == 4 else self._nets6
        shift = network.max_prefixlen - network.prefixlen
        nets.setdefault(network.prefixlen, {})[int(network.network_address) >> shift] = value
        self._order4 = tuple((32 - p, t) for p, t in sorted(self._nets4.items(), reverse=True))
        self._order6 = tuple((128 - p, t) for p, t in sorted(self._nets6.items(), reverse=True))

    def get(self, network: Network) -> V | None:
        """The value stored for exactly this network."""
        if network.prefixlen == network.max_prefixlen:
            return self._hosts.get(network.network_address.packed)
        nets = self._nets4 if network.version == 4 else self._nets6
        shift = network.max_prefixlen - network.prefixlen
        return nets.get(network.prefixlen, {}).get(int(network.network_address) >> shift)

    def __len__(self) -> int:
        nets = (*self._nets4.values(), *self._nets6.values())
        return len(self._hosts) + sum(len(table) for table in nets)

    def match(self, addr: bytes) -> V | None:
        value = self._hosts.get(addr)
        if value is not None:
            return value
        order = self._order4 if len(addr) == 4 else self._order6
        if order:
            number = int.from_bytes(addr, "big")
            for shift, table in order:
                value = table.get(number >> shift)
                if value is not None:
                    return value
        return None

    @classmethod
    def of(cls, cidrs: list[str], value: V) -> PrefixSet[V]:
        networks = cls()
        for cidr in cidrs:
            networks.add(ip_network(cidr, strict=False), value)
        return networks


@dataclass
class Blocklist:
    """What the detector asks; allowlisted names and addresses always win."""

    domains: DomainSet[Indicator]
    addresses: PrefixSet[Indicator]
    allow_domains: DomainSet[str]
    allow_addresses: PrefixSet[str]

    @classmethod
    def empty(cls) -> Blocklist:
        return cls(DomainSet(), PrefixSet(), DomainSet(), PrefixSet())

    def match_domain(self, name: str) -> Indicator | None:
        indicator = self.domains.match(name)
        if indicator is not None and self.allow_domains.match(name) is None:
            return indicator
        return None

    def match_address(self, addr: bytes) -> Indicator | None:
        indicator = self.addresses.match(addr)
        if indicator is not None and self.allow_addresses.match(addr) is None:
            return indicator
        return None
