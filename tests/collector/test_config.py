"""collector.yaml: the documented example loads; a mistake is one line naming the
file, the line and the key, and a misspelt key is answered with the key it resembles."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sensor.collector.config import ConfigError, load_config
from tests.conftest import ROOT

DOCUMENTED = re.search(r"```yaml\n(user: madoc-collector .*?)```",
                       (ROOT / "docs" / "collector.md").read_text(), re.S).group(1)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "collector.yaml"
    path.write_text(text)
    return path


def test_the_documented_example_loads(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, DOCUMENTED))
    assert config.user == "madoc-collector" and config.listen == "0.0.0.0:9443"
    assert config.database == "sqlite:////var/lib/madoc-collector/collector.db"
    assert config.upstream is not None and config.upstream.org == "Hải Phòng"
    assert config.upstream.spool == "/var/lib/madoc-collector/upstream-spool.db"


def test_relative_paths_are_read_beside_the_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "tls: {cert: c.pem, key: k.pem}\n"
                                         "admin_token_file: admin.token\n"))
    assert (config.tls_cert, config.admin_token_file) == (
        str(tmp_path / "c.pem"), str(tmp_path / "admin.token"))


@pytest.mark.parametrize(("text", "message"), [
    ("listen: 0.0.0.0:9443\nlisen: 1\n",
     "collector.yaml:2: lisen: unknown setting (did you mean listen?)"),
    ("metrics: {listen: 127.0.0.1:9571, basic_auth: x}\n",
     "collector.yaml:1: metrics.basic_auth: unknown setting (did you mean basic_auth_file?)"),
    ("timezone: Asia/Hanoi\n", "collector.yaml:1: timezone: unknown time zone 'Asia/Hanoi'"),
    ("listen: 9443\n", "collector.yaml:1: listen: must be text, not 9443"),
    ("listen: nowhere\n", "collector.yaml:1: listen: must be HOST:PORT, not 'nowhere'"),
    ("\n\ntls: {cert: c.pem}\n", "collector.yaml:3: tls.key: is required"),
    ("max_body_bytes: -1\n", "collector.yaml:1: max_body_bytes: must be greater than 0"),
    ("upstream:\n  url: https://n.example\n  token_file: t\n",
     "collector.yaml:1: upstream.org: is required"),
    ("upstream:\n  url: https://n.example\n  org: HP\n  token_file: t\n"
     "  share: {adresses: true}\n",
     "collector.yaml:5: upstream.share.adresses: unknown setting (did you mean addresses?)"),
    ("metrics: {cert_file: c.pem}\n", "collector.yaml:1: metrics.cert_file: needs its pair"),
    ("insecure: [1\n", "collector.yaml:2: not valid YAML"),
])
def test_mistakes_name_file_line_and_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert str(caught.value).startswith(str(tmp_path / message.split(":")[0]))
    assert message in str(caught.value), str(caught.value)
