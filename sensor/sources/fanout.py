"""PACKET_FANOUT by internal host: a classic BPF program that picks each frame's worker.

The kernel's hash fanout keeps the two directions of a flow together, but the
sensor needs more: a host's DNS answer and the connection it then opens to the
answered address are two flows, and the connection is flagged (`resolved_from`)
only if the worker that sees it has seen the answer. So frames are spread by
the host they belong to, which every worker agrees on without talking:

- DNS (port 53 on one side, else 5353): the other side, the client;
- else the side that is in the internal networks, when exactly one is;
- else both addresses mixed (symmetric, so a flow's directions stay together).

The program reads addresses relative to the network header (SKF_NET_OFF), which
is where it is whether the frame was received or sent, tagged or not. IPv6 is
keyed on the last 32 bits of the address and has ports only without extension
headers. The key is scrambled by a multiplicative hash; the kernel takes it
modulo the number of workers.
"""

from __future__ import annotations

import ctypes
import ipaddress
import socket
import struct

SOL_PACKET, PACKET_FANOUT, PACKET_FANOUT_DATA = 263, 18, 22
PACKET_FANOUT_CBPF = 6
_NET = -0x100000            # SKF_NET_OFF: offsets from the network header
_AD_PROTOCOL = -0x1000      # SKF_AD_OFF + SKF_AD_PROTOCOL: the frame's ethertype
DNS_PORTS = (53, 5353)

# classic BPF opcodes
LD_W_ABS, LD_H_ABS, LD_B_ABS, LD_H_IND = 0x20, 0x28, 0x30, 0x48
LDX_B_MSH, LD_IMM, LD_MEM, ST = 0xB1, 0x00, 0x60, 0x02
AND_K, XOR_X, MUL_K, RSH_K, TAX = 0x54, 0xAC, 0x24, 0x74, 0x87
JA, JEQ_K, JSET_K, RET_A, RET_K = 0x05, 0x15, 0x45, 0x16, 0x06
# scratch memory: source key, destination key, source internal, destination internal
M_SRC, M_DST, M_SRC_IN, M_DST_IN = 0, 1, 2, 3


class _Assembler:
    """Instructions with symbolic jump targets, resolved at the end."""

    def __init__(self) -> None:
        self.code: list[tuple[int, object, object, int]] = []
        self.labels: dict[str, int] = {}

    def op(self, code: int, k: int = 0) -> None:
        self.code.append((code, 0, 0, k & 0xFFFFFFFF))

    def jump(self, code: int, k: int, true: str | int, false: str | int) -> None:
        self.code.append((code, true, false, k & 0xFFFFFFFF))

    def goto(self, label: str) -> None:
        self.code.append((JA, 0, 0, label))  # type: ignore[arg-type]

    def label(self, name: str) -> None:
        self.labels[name] = len(self.code)

    def assemble(self) -> bytes:
        out = bytearray()
        for index, (code, true, false, k) in enumerate(self.code):
            if code == JA:
                k = self.labels[k] - index - 1 if isinstance(k, str) else k
                out += struct.pack("=HBBI", code, 0, 0, k)
                continue
            offsets = [self.labels[t] - index - 1 if isinstance(t, str) else t
                       for t in (true, false)]
            if any(not 0 <= o <= 255 for o in offsets):
                raise ValueError("fanout program too long for a conditional jump")
            out += struct.pack("=HBBI", code, offsets[0], offsets[1], k)
        return bytes(out)


def _internal_tests(asm: _Assembler, networks: list[ipaddress._BaseNetwork], addr_at: int,
                    words: int, flag: int, name: str) -> None:
    """Set M[flag] to 1 when the address at `addr_at` is in one of `networks`."""
    asm.op(LD_IMM, 0)
    asm.op(ST, flag)
    for n, network in enumerate(networks):
        fail = f"{name}_{n}_no"
        prefix = int(network.network_address)
        for word in range(words):
            bits = max(0, min(32, network.prefixlen - 32 * word))
            if bits == 0:
                break
            mask = (0xFFFFFFFF << (32 - bits)) & 0xFFFFFFFF
            value = (prefix >> (32 * (words - 1 - word))) & mask
            asm.op(LD_W_ABS, _NET + addr_at + 4 * word)
            asm.op(AND_K, mask)
            asm.jump(JEQ_K, value, 0, fail)
        asm.op(LD_IMM, 1)
        asm.op(ST, flag)
        asm.goto(f"{name}_done")
        asm.label(fail)
    asm.label(f"{name}_done")


def _port_tests(asm: _Assembler, sport_at: int, indexed: bool) -> None:
    """Jump to key_dst when the source port is DNS's, key_src when the destination's:
    port 53 on either side first, then 5353, as the pipeline tells DNS from mDNS (a
    client whose own port is 5353 asking a resolver's 53 is a DNS client)."""
    load = LD_H_IND if indexed else LD_H_ABS
    for port in DNS_PORTS:
        asm.op(load, _NET + sport_at)
        asm.jump(JEQ_K, port, "key_dst", 0)
        asm.op(load, _NET + sport_at + 2)
        asm.jump(JEQ_K, port, "key_src", 0)
    asm.goto("decide")


def _family(asm: _Assembler, family: str, networks: list[ipaddress._BaseNetwork], words: int,
            src_at: int, proto_at: int) -> None:
    """Keys (last address words) and internal flags of one IP version; then on to the
    ports (label `ports{family}`, next) for TCP and UDP, else to `decide`."""
    dst_at = src_at + 4 * words
    asm.label(f"v{family}")
    asm.op(LD_W_ABS, _NET + dst_at - 4)
    asm.op(ST, M_SRC)
    asm.op(LD_W_ABS, _NET + dst_at + 4 * words - 4)
    asm.op(ST, M_DST)
    _internal_tests(asm, networks, src_at, words, M_SRC_IN, f"s{family}")
    _internal_tests(asm, networks, dst_at, words, M_DST_IN, f"d{family}")
    asm.op(LD_B_ABS, _NET + proto_at)
    asm.jump(JEQ_K, 6, f"ports{family}", 0)
    asm.jump(JEQ_K, 17, f"ports{family}", "decide")
    asm.label(f"ports{family}")


def host_fanout_program(internal: list[str]) -> bytes:
    """The classic BPF program (struct sock_filter array) for `internal` networks."""
    networks = [ipaddress.ip_network(cidr, strict=False) for cidr in internal]
    v4 = [n for n in networks if n.version == 4]
    v6 = [n for n in networks if n.version == 6]
    asm = _Assembler()
    asm.op(LD_H_ABS, _AD_PROTOCOL)
    asm.jump(JEQ_K, 0x0800, "v4", 0)
    asm.jump(JEQ_K, 0x86DD, "v6", 0)
    asm.op(RET_K, 0)

    _family(asm, "4", v4, words=1, src_at=12, proto_at=9)
    asm.op(LD_H_ABS, _NET + 6)
    asm.jump(JSET_K, 0x1FFF, "decide", 0)      # a later fragment: no ports
    asm.op(LDX_B_MSH, _NET + 0)
    _port_tests(asm, 0, indexed=True)
    _family(asm, "6", v6, words=4, src_at=8, proto_at=6)
    _port_tests(asm, 40, indexed=False)

    asm.label("decide")
    asm.op(LD_MEM, M_SRC_IN)
    asm.jump(JEQ_K, 0, "src_out", 0)
    asm.op(LD_MEM, M_DST_IN)
    asm.jump(JEQ_K, 0, "key_src", "mix")
    asm.label("src_out")
    asm.op(LD_MEM, M_DST_IN)
    asm.jump(JEQ_K, 0, "mix", "key_dst")
    asm.label("key_src")
    asm.op(LD_MEM, M_SRC)
    asm.goto("hash")
    asm.label("key_dst")
    asm.op(LD_MEM, M_DST)
    asm.goto("hash")
    asm.label("mix")
    asm.op(LD_MEM, M_DST)
    asm.op(TAX)
    asm.op(LD_MEM, M_SRC)
    asm.op(XOR_X)
    asm.label("hash")
    asm.op(MUL_K, 0x9E3779B1)
    asm.op(RSH_K, 16)
    asm.op(RET_A)
    return asm.assemble()


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def attach_program(sock: socket.socket, level: int, option: int, program: bytes) -> None:
    """setsockopt with a `struct sock_fprog` pointing at `program` (8-byte instructions)."""
    code = ctypes.create_string_buffer(program, len(program))
    sock.setsockopt(level, option, bytes(_SockFprog(len(program) // 8, ctypes.addressof(code))))


def join_host_fanout(fd: int, group: int, program: bytes) -> None:
    """Join fanout `group` in CBPF mode and give the group its program."""
    sock = socket.socket(fileno=socket.dup(fd))
    try:
        sock.setsockopt(SOL_PACKET, PACKET_FANOUT, group | (PACKET_FANOUT_CBPF << 16))
        attach_program(sock, SOL_PACKET, PACKET_FANOUT_DATA, program)
    finally:
        sock.close()
