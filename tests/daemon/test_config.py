"""sensor.yaml: the documented shape loads; every mistake names the file, line and key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sensor.config import DEFAULT_FILTER, DNS_FILTER, GATEWAY_FILTER, load_config
from sensor.support.yamlconf import ConfigError
from tests.conftest import ROOT

DOCUMENTED = """\
sensor:
  id: haiphong-stc-gw1
  interfaces: [eth1]
  mode: capture
  filter: default
  workers: 1
  internal_networks: auto
rules: /etc/madoc/rules.yaml
eve: /var/log/madoc/eve.json
collector: {url: https://collector.example:8443, token_file: /etc/madoc/token, ca_file: null}
state_dir: /var/lib/madoc
metrics: {listen: 127.0.0.1:9570}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sensor.yaml"
    path.write_text(text)
    return path


def test_the_documented_example_loads(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, DOCUMENTED))
    assert config.sensor_id == "haiphong-stc-gw1" and config.interfaces == ["eth1"]
    assert config.filter == DEFAULT_FILTER and config.workers == 1
    assert config.internal_networks is None                    # auto
    assert config.collector.url == "https://collector.example:8443"
    assert config.collector.token_file == Path("/etc/madoc/token")
    assert config.spool_path == Path("/var/lib/madoc/spool-haiphong-stc-gw1.db")


@pytest.mark.parametrize(("change", "message"), [
    (("workers: 1", "workers: two"), "sensor.yaml:6: sensor.workers: must be an integer"),
    (("workers: 1", "workers: 0"), "sensor.yaml:6: sensor.workers: must be greater than 0"),
    (("mode: capture", "mode: bridge"), "sensor.yaml:4: sensor.mode: must be one of capture, "
                                        "gateway, not 'bridge'"),
    (("internal_networks: auto", "internal_networks: [10.0.0.0/33]"),
     "sensor.yaml:7: sensor.internal_networks: '10.0.0.0/33' is not a network"),
    (("  filter: default\n", "  filter: default\n  workrs: 2\n"),
     "sensor.yaml:6: sensor.workrs: unknown setting"),
    (("interfaces: [eth1]", "interfaces: []"), "sensor.yaml:3: sensor.interfaces: must not be "
                                               "empty"),
    (("  id: haiphong-stc-gw1\n", ""), "sensor.yaml:1: sensor.id: is required when a collector"),
    (("token_file: /etc/madoc/token, ", ""), "sensor.yaml:10: collector.token_file: is required"),
    (("metrics: {listen: 127.0.0.1:9570}", "metrics: [9570]"), "sensor.yaml:12: metrics: must "
                                                                "be a mapping"),
    (("state_dir: /var/lib/madoc", "state_dir: [1, 2"), "sensor.yaml:12: not valid YAML"),
    (("mode: capture\n  filter: default", "mode: gateway\n  filter: all"),
     "sensor.yaml:5: sensor.filter: cannot be set with mode: gateway"),
    (("mode: capture\n  filter: default\n  workers: 1", "mode: gateway\n  workers: 2"),
     "sensor.yaml:5: sensor.workers: must be 1 with mode: gateway"),
    (("  workers: 1\n", "  workers: 1\n  capture: {backend: ring, ring: {block_kib: 1000}}\n"),
     "sensor.yaml:7: sensor.capture.ring.block_kib: must be a power of two, 4 … 65536, "
     "not 1000"),
    (("  workers: 1\n", "  workers: 1\n  conntrack: {receive_buffer_mib: 0}\n"),
     "sensor.yaml:7: sensor.conntrack.receive_buffer_mib: must be 1 … 1024, not 0"),
    (("  workers: 1\n", "  workers: 1\n  tunnels: {vxlan_port: 70000}\n"),
     "sensor.yaml:7: sensor.tunnels.vxlan_port: must be a port, 1 … 65535"),
])
def test_mistakes_name_file_line_and_key(tmp_path: Path, change: tuple[str, str],
                                         message: str) -> None:
    assert change[0] in DOCUMENTED
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, DOCUMENTED.replace(*change)))
    assert message in str(caught.value)
    assert str(tmp_path) in str(caught.value)


def test_metrics_off(tmp_path: Path) -> None:
    text = DOCUMENTED.replace("metrics: {listen: 127.0.0.1:9570}", "metrics: {listen: off}")
    assert load_config(write(tmp_path, text)).metrics_listen is None
    assert load_config(write(tmp_path, DOCUMENTED)).metrics_listen == "127.0.0.1:9570"


def test_gateway_mode_captures_dns_and_names_with_one_worker(tmp_path: Path) -> None:
    text = DOCUMENTED.replace("mode: capture\n  filter: default\n  workers: 1\n",
                              "mode: gateway\n  conntrack: {accounting: false}\n")
    config = load_config(write(tmp_path, text))
    assert (config.mode, config.workers, config.conntrack.accounting) == ("gateway", 1, False)
    assert config.filter == GATEWAY_FILTER
    without_names = text.replace("mode: gateway\n", "mode: gateway\n  app: false\n")
    assert load_config(write(tmp_path, without_names)).filter == DNS_FILTER


def test_run_refuses_a_bad_config_with_status_2(tmp_path: Path) -> None:
    path = write(tmp_path, DOCUMENTED.replace("workers: 1", "workers: -3"))
    result = subprocess.run([sys.executable, "-m", "sensor", "run", "-c", str(path)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2
    assert "sensor.yaml:6: sensor.workers: must be greater than 0, not -3" in result.stderr


def test_an_interface_that_does_not_exist_is_named(tmp_path: Path) -> None:
    text = DOCUMENTED.replace("[eth1]", "[no-such-if0]").replace(
        "collector: {url: https://collector.example:8443, token_file: /etc/madoc/token, "
        "ca_file: null}\n", "").replace("/var/lib/madoc", str(tmp_path / "state")).replace(
        "/var/log/madoc", str(tmp_path)).replace("/etc/madoc/rules.yaml",
                                                 str(ROOT / "rules" / "rules.yaml")).replace(
        "  internal_networks: auto\n",       # an existing user: only the interface is wrong
        "  internal_networks: auto\n  user: nobody\n")
    result = subprocess.run([sys.executable, "-m", "sensor", "run", "-c",
                             str(write(tmp_path, text))], capture_output=True, text=True,
                            cwd=ROOT)
    assert result.returncode == 2, result.stderr
    assert "no-such-if0" in result.stderr


def test_metrics_credentials_are_read_at_load_and_a_bad_file_names_its_line(
        tmp_path: Path) -> None:
    good = tmp_path / "metrics.auth"
    good.write_text("prometheus:pa:ss\n")
    config = load_config(write(tmp_path, DOCUMENTED.replace(
        "metrics: {listen: 127.0.0.1:9570}",
        "metrics: {listen: 127.0.0.1:9570, basic_auth_file: metrics.auth}")))
    assert config.metrics_credentials == ("prometheus", "pa:ss")
    good.write_text("just-a-password\n")
    with pytest.raises(ConfigError, match=r"sensor\.yaml:12: .*basic_auth_file.*USER:PASSWORD"):
        load_config(tmp_path / "sensor.yaml")
