"""`madoc-sensor rules check` and `rules lookup` as an admin runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import RULES


def rules(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sensor", "rules", *args],
                          capture_output=True, text=True, check=False)


def test_check_reports_each_source_and_succeeds() -> None:
    result = rules("check", "--rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("ncsc-2022-ips (blocklist, ips, ") and "cidr 2, ip 2" in line
               for line in lines)
    assert lines[-1].startswith("loaded 8 names, 4 addresses, 0 URLs and 0 fingerprints in ")


def test_check_fails_when_a_source_fails_and_shows_rejected_lines(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("".join(f"bad_{n}-.example\n" for n in range(25)))
    result = rules("check", "--rules", str(bad))
    assert result.returncode == 1
    assert f"  {bad}:1: bad label 'bad_0-'" in result.stdout
    assert "  … and 5 more" in result.stdout and "ERROR: no usable entries" in result.stdout


def test_lookup_says_which_entry_and_source() -> None:
    result = rules("lookup", "--rules", str(RULES), "a.b.c2-panel.example", "safe.malhost.example",
                   "203.0.113.77", "example.org", "not a.name")
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        "a.b.c2-panel.example: MATCH c2-panel.example (domain) from ncsc-2022-domains, abuse-hosts "
        "campaign 2022 severity 1",
        "safe.malhost.example: listed as malhost.example by ncsc-2022-domains, but allowed by "
        "local-allow",
        "203.0.113.77: MATCH 203.0.113.77 (ip) from ncsc-2022-ips campaign 2022 severity 1",
        "example.org: not listed",
        "not a.name: not a name, address, URL or fingerprint (bad label 'not a')"]


def test_url_indicators_stay_urls(tmp_path: Path) -> None:
    """A feed's URL on shared hosting names that URL, not the whole host."""
    (tmp_path / "urls.csv").write_text(
        "url,threat\n"
        "https://github.com/evil/repo/raw/main/payload.exe,malware_download\n"
        "http://Files.Example:80/dl/%7Ex/payload.exe#part,malware_download\n"
        "http://files.example/kits/*,malware_download\n"
        "http://whole-host.example/,malware_download\n")
    result = rules("check", "--rules", str(tmp_path / "urls.csv"))
    assert result.returncode == 0, result.stdout
    assert "domain 1, url 3;" in result.stdout
    assert "  1 https URLs: only their server name is on the wire" in result.stdout
    result = rules("lookup", "--rules", str(tmp_path / "urls.csv"), "www.github.com",
                   "github.com", "http://files.example/dl/~x/payload.exe",
                   "http://files.example/kits/a/b.zip", "http://files.example/other",
                   "whole-host.example", "https://github.com/evil/repo/raw/main/payload.exe")
    assert result.stdout.splitlines() == [
        "www.github.com: not listed",
        "github.com: not listed",
        "http://files.example/dl/~x/payload.exe: MATCH http://files.example/dl/~x/payload.exe "
        "(url) from urls campaign - severity 2",
        "http://files.example/kits/a/b.zip: MATCH http://files.example/kits/* (url) from urls "
        "campaign - severity 2",
        "http://files.example/other: not listed",
        "whole-host.example: MATCH whole-host.example (domain) from urls campaign - severity 2",
        "https://github.com/evil/repo/raw/main/payload.exe: listed as "
        "https://github.com/evil/repo/raw/main/payload.exe by urls, but an https URL is never "
        "seen on the wire (only its server name is)"]
