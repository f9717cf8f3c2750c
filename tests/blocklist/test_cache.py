"""The compiled-blocklist cache: used when nothing changed, rebuilt when anything did."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sensor.blocklist import cache as cache_module
from sensor.blocklist.cache import load_cached


def rules(tmp_path: Path) -> Path:
    (tmp_path / "d.txt").write_text("evil.example\n=exact.example\n")
    (tmp_path / "i.txt").write_text("203.0.113.7\n198.51.100.0/24\n")
    path = tmp_path / "rules.yaml"
    path.write_text("sources:\n  - {name: d, path: d.txt, format: domains}\n"
                    "  - {name: i, path: i.txt, format: ips}\n")
    return path


def test_second_load_comes_from_the_cache_and_matches_the_same(tmp_path: Path) -> None:
    path, cache = rules(tmp_path), tmp_path / "cache"
    fresh, _, from_cache = load_cached([path], cache)
    assert not from_cache
    cached, report, from_cache = load_cached([path], cache)
    assert from_cache and report.sources[0].entries == 2
    for name in ("a.evil.example", "exact.example", "x.exact.example"):
        assert cached.match_domain(name) == fresh.match_domain(name)
    assert cached.match_address(bytes((198, 51, 100, 9))).value == "198.51.100.0/24"
    assert len(list(cache.glob("blocklist-*.pickle"))) == 1


def test_any_change_rebuilds(tmp_path: Path) -> None:
    path, cache = rules(tmp_path), tmp_path / "cache"
    load_cached([path], cache)
    (tmp_path / "d.txt").write_text("evil.example\nother.example\n")
    blocklist, _, from_cache = load_cached([path], cache)
    assert not from_cache and blocklist.match_domain("other.example") is not None
    assert len(list(cache.glob("blocklist-*.pickle"))) == 1        # the old one is removed


def test_a_cache_others_can_write_is_not_trusted(tmp_path: Path) -> None:
    path, cache = rules(tmp_path), tmp_path / "cache"
    load_cached([path], cache)
    [cached] = cache.glob("blocklist-*.pickle")
    os.chmod(cached, 0o666)
    assert load_cached([path], cache)[2] is False


def test_failed_sources_are_not_cached(tmp_path: Path) -> None:
    path, cache = rules(tmp_path), tmp_path / "cache"
    (tmp_path / "i.txt").write_text("# nothing\n")
    assert load_cached([path], cache)[1].failed
    assert not list(cache.glob("blocklist-*.pickle"))


def test_changed_matcher_code_never_meets_an_old_pickle(tmp_path: Path, monkeypatch) -> None:
    path, cache = rules(tmp_path), tmp_path / "cache"
    load_cached([path], cache)
    monkeypatch.setattr(cache_module, "_code_stamp", lambda: "another build")
    assert load_cached([path], cache)[2] is False


CHECK_IN_ANOTHER_PROCESS = r'''
import sys
from pathlib import Path
from sensor.blocklist.cache import load_cached
rules, cache = Path(sys.argv[1]), Path(sys.argv[2])
blocklist, _, from_cache = load_cached([rules], cache)
names = (rules.parent / "d.txt").read_text().split()
missed = [n for n in names if blocklist.match_domain("www." + n) is None]
others = [n for n in names if blocklist.match_domain("www." + n + "x") is not None]
print(from_cache, len(missed), len(others))
'''


def test_a_large_set_from_the_cache_of_a_process_with_another_hash_seed(tmp_path: Path) -> None:
    """A compiled name set filters on `hash()`, which each process salts differently:
    loaded from a cache another process wrote, it still finds every entry."""
    (tmp_path / "d.txt").write_text("".join(f"host{n}.evil{n % 97}.example\n"
                                            for n in range(12_000)))
    path = tmp_path / "rules.yaml"
    path.write_text("sources:\n  - {name: d, path: d.txt, format: domains}\n")
    runs = []
    for seed in ("1", "2"):
        done = subprocess.run([sys.executable, "-c", CHECK_IN_ANOTHER_PROCESS, str(path),
                               str(tmp_path / "cache")], capture_output=True, text=True,
                              env={**os.environ, "PYTHONHASHSEED": seed}, check=True)
        runs.append(done.stdout.split())
    assert runs == [["False", "0", "0"], ["True", "0", "0"]]
