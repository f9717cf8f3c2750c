"""The install guide's example configurations load with the daemons' own loaders."""

from __future__ import annotations

import re
from pathlib import Path

from sensor.collector.config import load_config as load_collector_config
from sensor.config import load_config as load_sensor_config
from tests.conftest import ROOT


def test_the_guides_configurations_are_valid(tmp_path: Path) -> None:
    guide = (ROOT / "deploy" / "README.md").read_text()
    collector_yaml, sensor_yaml = re.findall(r"<<'YAML'\n(.*?)YAML\n", guide, re.S)
    (tmp_path / "collector.yaml").write_text(collector_yaml)
    (tmp_path / "sensor.yaml").write_text(sensor_yaml)
    collector = load_collector_config(tmp_path / "collector.yaml")
    assert collector.tls_cert and collector.metrics_listen == "127.0.0.1:9571"
    sensor = load_sensor_config(tmp_path / "sensor.yaml")
    assert sensor.collector is not None and sensor.collector.url.startswith("https://")
    assert sensor.interfaces == ["eth1"] and sensor.metrics_listen == "127.0.0.1:9570"


def test_the_guides_key_by_key_reference_loads(tmp_path: Path) -> None:
    guide = (ROOT / "deploy" / "README.md").read_text()
    (reference,) = re.findall(r"```yaml\n(# /etc/madoc/sensor.yaml\n.*?)```", guide, re.S)
    (tmp_path / "sensor.yaml").write_text(reference)
    sensor = load_sensor_config(tmp_path / "sensor.yaml")
    assert (sensor.tunnels.vxlan, sensor.tunnels.geneve) == (4789, 6081)
    assert sensor.flows.max_flows == 500_000 and sensor.unit == "Sở Tài chính"


def test_the_readmes_sensor_configuration_is_valid(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    (sensor_yaml,) = re.findall(r"```yaml\n(# /etc/madoc/sensor.yaml\n.*?)```", readme, re.S)
    (tmp_path / "sensor.yaml").write_text(sensor_yaml)
    sensor = load_sensor_config(tmp_path / "sensor.yaml")
    assert sensor.unit == "Sở Tài chính" and sensor.interfaces == ["eth1"]
    assert sensor.collector is not None and sensor.collector.url.startswith("https://")
