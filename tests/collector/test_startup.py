"""A collector that cannot start as configured says why in one line, never a traceback:
two collectors on one address, and the two set-up mistakes that would cost the national
figures: two collectors on one upstream spool, and a lost secret silently replaced (by
`upstream send` as by `run`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.collector.harness import free_port
from tests.conftest import ROOT

NOWHERE = "https://127.0.0.1:1"     # refused at once: nothing is sent in these tests


def collector(tmp_path: Path, name: str, org: str, spool: Path) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "upstream.token").write_text("t" * 43 + "\n")
    config = folder / "collector.yaml"
    config.write_text(f"database: sqlite:///{folder / 'collector.db'}\n"
                      f"upstream: {{url: {NOWHERE}, org: {org}, token_file: upstream.token,\n"
                      f"           secret_file: upstream.secret, spool: {spool}}}\n")
    return config


def send(config: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sensor.collector", "-c", str(config),
                           "upstream", "send", "--timeout", "0.5"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_a_second_collector_on_the_same_spool_is_refused_in_one_line(tmp_path: Path) -> None:
    spool = tmp_path / "upstream-spool.db"
    first = send(collector(tmp_path, "province", "Hải Phòng", spool))
    assert first.returncode == 1 and "waiting" in first.stdout, first.stderr
    second = send(collector(tmp_path, "department", "Sở Y tế", spool))
    assert second.returncode == 2 and second.stdout == ""
    assert second.stderr.count("\n") == 1 and "Traceback" not in second.stderr
    assert second.stderr.startswith(f"madoc-collector: upstream.spool: {spool} is the spool "
                                    f"of organisation 'Hải Phòng', not 'Sở Y tế'")


def test_a_lost_secret_is_not_replaced_once_the_database_has_reported(tmp_path: Path) -> None:
    config = collector(tmp_path, "province", "Hải Phòng", tmp_path / "spool.db")
    secret = config.parent / "upstream.secret"
    assert send(config).returncode == 1 and secret.exists()
    secret.unlink()
    refused = send(config)
    assert refused.returncode == 2 and not secret.exists()
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert f"upstream.secret_file {secret} is missing, but this database has already " \
           f"reported upward" in refused.stderr


def test_a_second_collector_on_a_taken_address_says_which_in_one_line(tmp_path: Path) -> None:
    api, metrics, other = free_port(), free_port(), free_port()
    configs = []
    for name, listen, scrape in (("first", api, metrics), ("api", api, other),
                                 ("metrics", other, metrics)):
        config = tmp_path / f"{name}.yaml"
        config.write_text(f"database: sqlite:///{tmp_path / name}.db\n"
                          f"listen: 127.0.0.1:{listen}\nmetrics: {{listen: 127.0.0.1:{scrape}}}\n")
        configs.append(config)
    first = subprocess.Popen([sys.executable, "-m", "sensor.collector", "-c", str(configs[0]),
                              "run"], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        line = first.stderr.readline()
        assert "listening on" in line, line
        for config, key, port in ((configs[1], "listen", api), (configs[2], "metrics.listen",
                                                                 metrics)):
            done = subprocess.run([sys.executable, "-m", "sensor.collector", "-c", str(config),
                                   "run"], cwd=ROOT, capture_output=True, text=True, timeout=60)
            assert done.returncode == 2 and "Traceback" not in done.stderr
            assert done.stderr.count("\n") == 1, done.stderr
            assert done.stderr.startswith(f"madoc-collector: {config}: {key}: cannot listen on "
                                          f"127.0.0.1:{port}"), done.stderr
    finally:
        first.terminate()
        first.wait(30)
