"""The install guide's example configurations load with the daemons' own loaders."""

from __future__ import annotations

import re
from pathlib import Path

from sensor.collector.config import load_config as load_collector_config
from sensor.config import load_config as load_sensor_config
from tests.conftest import ROOT


def test_the_shipped_configurations_name_the_units_paths() -> None:
    """/etc/madoc's collector.yaml and sensor.yaml, as the package installs them, load
    and name the paths the units give the services, and the users they run as."""
    shipped = ROOT / "deploy" / "etc" / "madoc"
    collector = load_collector_config(shipped / "collector.yaml")
    assert collector.user == "madoc-collector" and collector.tls_cert
    assert collector.database == "sqlite:////var/lib/madoc-collector/collector.db"
    assert collector.admin_token_file == "/var/lib/madoc-collector/admin.token"
    sensor = load_sensor_config(shipped / "sensor.yaml")
    assert sensor.user == "madoc" and str(sensor.state_dir) == "/var/lib/madoc"
    assert str(sensor.eve) == "/var/log/madoc/eve.json"
    assert [str(p) for p in sensor.rules] == ["/etc/madoc/rules.yaml"]


def test_the_guides_sensor_configurations_are_valid(tmp_path: Path) -> None:
    """The first run's, the deployed sensor's and a second instance's sensor.yaml."""
    guide = (ROOT / "deploy" / "README.md").read_text()
    written = re.findall(r"cat > (/etc/madoc/sensor\S*\.yaml) <<'YAML'\n(.*?)YAML\n", guide,
                         re.S)
    deployed = re.findall(r"```yaml\n(sensor:\n.*?)```", guide, re.S)
    configurations = [*written, ("/etc/madoc/sensor.yaml", deployed[0])]
    interfaces = []
    for name, text in configurations:
        (tmp_path / Path(name).name).write_text(text)
        sensor = load_sensor_config(tmp_path / Path(name).name)
        assert sensor.collector is not None and sensor.collector.url.startswith("https://")
        interfaces += sensor.interfaces
    assert interfaces == ["lo", "eth2", "eth1"]


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
