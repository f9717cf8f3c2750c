"""The host-keyed fanout program sends every frame of an internal host to one worker:
its DNS (whatever its own port, 5353 included, when it asks a resolver's 53), its
connections and the answers to both. The program is run here by a small classic BPF
interpreter that follows the kernel's semantics for the instructions it uses; the live
tests with two workers run it in the kernel."""

from __future__ import annotations

import struct

import pytest
from scapy.all import DNS, DNSQR, IP, TCP, UDP, Ether, IPv6

from sensor.sources.fanout import host_fanout_program

_NET, _AD_PROTOCOL = 0xFFF00000, 0xFFFFF000     # SKF_NET_OFF, SKF_AD_OFF + SKF_AD_PROTOCOL
INTERNAL = ["192.168.0.0/16", "fd00::/8"]


def run(program: bytes, frame: bytes) -> int:
    """The program's return value for an Ethernet frame (0 where the kernel would stop
    on a load out of the packet)."""
    net, ethertype = 14, struct.unpack_from("!H", frame, 12)[0]
    insns = [struct.unpack_from("=HBBI", program, at) for at in range(0, len(program), 8)]
    a = x = pc = 0
    memory = [0] * 16

    def load(k: int, size: int) -> int | None:
        if k == _AD_PROTOCOL:
            return ethertype
        at = net + k - _NET if k >= _NET else k
        if at < 0 or at + size > len(frame):
            return None
        return int.from_bytes(frame[at:at + size], "big")

    while True:
        code, jt, jf, k = insns[pc]
        pc += 1
        if code in (0x20, 0x28, 0x30, 0x48):           # LD W/H/B ABS, LD H IND
            size = {0x20: 4, 0x28: 2, 0x30: 1, 0x48: 2}[code]
            value = load((k + x) & 0xFFFFFFFF if code == 0x48 else k, size)
            if value is None:
                return 0
            a = value
        elif code == 0xB1:                             # LDX B MSH: 4 × (IHL)
            value = load(k, 1)
            if value is None:
                return 0
            x = (value & 0xF) * 4
        elif code == 0x00:
            a = k
        elif code == 0x60:
            a = memory[k]
        elif code == 0x02:
            memory[k] = a
        elif code == 0x54:
            a &= k
        elif code == 0xAC:
            a ^= x
        elif code == 0x24:
            a = (a * k) & 0xFFFFFFFF
        elif code == 0x74:
            a >>= k
        elif code == 0x87:
            x = a
        elif code == 0x05:
            pc += k
        elif code == 0x15:
            pc += jt if a == k else jf
        elif code == 0x45:
            pc += jt if a & k else jf
        elif code == 0x16:
            return a
        elif code == 0x06:
            return k
        else:
            raise AssertionError(f"instruction {code:#x} not interpreted here")


def frames_of(client: str, resolver: str, server: str, ip: type) -> list[bytes]:
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    query = DNS(qd=DNSQR(qname="malhost.example"))
    return [bytes(eth / ip(src=a, dst=b) / layer) for a, b, layer in [
        (client, resolver, UDP(sport=5353, dport=53) / query),
        (resolver, client, UDP(sport=53, dport=5353) / DNS(qr=1, qd=query.qd)),
        (client, resolver, UDP(sport=40000, dport=53) / query),
        (resolver, client, UDP(sport=53, dport=40000) / DNS(qr=1, qd=query.qd)),
        (client, resolver, TCP(sport=40001, dport=53, flags="S")),
        (client, server, TCP(sport=40002, dport=443, flags="S")),
        (server, client, TCP(sport=443, dport=40002, flags="SA")),
        (server, client, UDP(sport=5353, dport=40003)),
    ]]


@pytest.mark.parametrize("client, resolver, server, ip", [
    ("192.168.1.10", "192.0.2.53", "203.0.113.80", IP),
    ("fd00::10", "2001:db8::53", "2001:db8::80", IPv6),
])
def test_every_frame_of_a_host_gets_the_hosts_key(client: str, resolver: str, server: str,
                                                  ip: type) -> None:
    program = host_fanout_program(INTERNAL)
    keys = [run(program, frame) for frame in frames_of(client, resolver, server, ip)]
    other = [run(program, frame) for frame in frames_of(
        client.replace("10", "11"), resolver, server, ip)]
    assert len(set(keys)) == 1 and keys[0] != 0, keys
    assert len(set(other)) == 1 and other[0] != keys[0]
