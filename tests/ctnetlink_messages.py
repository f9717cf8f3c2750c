"""ctnetlink messages as the kernel multicasts them, encoded with pyroute2, for the
conntrack tests and benchmark."""

from __future__ import annotations

import socket

from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple, nfct_msg

NEW, DESTROY = 0x0100, 0x0102       # ctnetlink subsystem << 8 | IPCTNL_MSG_CT_NEW / DELETE


def message(kind: int, ct_id: int, src: str, dst: str, sport: int, dport: int,
            proto: int = 6, reply_src: str | None = None, reply_dst: str | None = None,
            counters: tuple[int, int, int, int] | None = None, status: int = 8,
            timestamps: tuple[int, int] | None = None) -> bytes:
    """One ctnetlink message as the kernel multicasts it (reply tuple reversed, or
    rewritten by NAT); timestamps in nanoseconds."""
    family = socket.AF_INET6 if ":" in src else socket.AF_INET
    attrs = {
        "tuple_orig": NFCTAttrTuple(family, saddr=src, daddr=dst, proto=proto, sport=sport,
                                    dport=dport),
        "tuple_reply": NFCTAttrTuple(family, saddr=reply_src or dst, daddr=reply_dst or src,
                                     proto=proto, sport=dport, dport=sport),
        "id": ct_id, "status": status}
    if counters:
        attrs["counters_orig"] = {"attrs": [("CTA_COUNTERS_PACKETS", counters[0]),
                                            ("CTA_COUNTERS_BYTES", counters[1])]}
        attrs["counters_reply"] = {"attrs": [("CTA_COUNTERS_PACKETS", counters[2]),
                                             ("CTA_COUNTERS_BYTES", counters[3])]}
    if timestamps:
        attrs["timestamp"] = {"attrs": [("CTA_TIMESTAMP_START", timestamps[0]),
                                        ("CTA_TIMESTAMP_STOP", timestamps[1])]}
    msg = nfct_msg.create_from(**attrs)
    msg["header"]["type"] = kind
    msg["nfgen_family"] = family
    msg.encode()
    return bytes(msg.data)
