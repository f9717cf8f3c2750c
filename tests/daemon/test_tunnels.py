"""A sensor whose interface receives a VXLAN tunnel (a mirror session or an overlay
delivered to it): real kernel VXLAN between two namespaces, real tools inside the
tunnel, the daemon on the underlay. It alerts on the host inside with the tunnel named,
gives the alerts replay gives for the same frames captured by tcpdump, and reads them as
tshark does."""

from __future__ import annotations

import json
from pathlib import Path

from tests.daemon.netns import SensorProcess, VxlanWire
from tests.daemon.test_daemon import alerts, replay_alerts, write_config
from tests.test_golden_tshark import _ours, _theirs


def test_a_sensor_on_a_vxlan_underlay_sees_the_hosts_inside(tmp_path: Path) -> None:
    capture = tmp_path / "underlay.pcap"
    with VxlanWire() as wire:
        sensor = SensorProcess(wire.b, write_config(tmp_path, wire))
        try:
            sensor.wait_for("READY=1")
            with wire.recording(capture):
                wire.infected_host()
        finally:
            assert sensor.stop() == 0, sensor.output
    events = [json.loads(line) for line in (tmp_path / "eve.json").read_text().splitlines()]
    found = {(e["alert"]["metadata"]["match"][0], e["madoc"]["host"], e["madoc"]["indicator"])
             for e in events if e["event_type"] == "alert"}
    assert found == {("dns.query", wire.HOST, "malhost.example"),
                     ("flow.dest_ip", wire.HOST, "203.0.113.9")}, sensor.output
    tunnels = {(e["tunnel"]["src_ip"], e["tunnel"]["dest_ip"], e["tunnel"]["proto"],
                e["tunnel"]["dest_port"], e["tunnel"]["depth"])
               for e in events if e["src_ip"] == wire.HOST}
    assert tunnels == {(*wire.UNDERLAY, "UDP", 4789, 1)}
    live = alerts(tmp_path / "eve.json")
    assert live and live == replay_alerts(tmp_path, [capture])
    assert _ours(capture) == _theirs(capture)             # tshark reads the same
