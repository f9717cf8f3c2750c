"""`make mutate`: the mutation score of the modules whose mistakes cost most.

mutmut (from PyPI) changes one thing at a time in these modules (an operator, a
constant, a comparison, a returned value) and runs the tests that reach the changed
function; a change that no test notices (a survivor) is a mistake the suite would let
through. It runs in pure Python: the tree is copied without mypyc's compiled modules,
which would otherwise be loaded instead of the changed source.

Prints, per module, the mutants killed of those tested and the score, then each
survivor not listed in tests/mutation/equivalent.txt (a mutant that cannot change
behaviour, with why). Exit 1 when a module scores under the target.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "build" / "mutate"
TARGET = 85.0
MUTMUT = Path(sys.executable).with_name("mutmut")

# module → the tests that exercise it (mutmut runs, per mutant, those of them that reach
# the changed function).
DNS_TESTS = ["tests/core/decode/test_dns.py", "tests/core/decode/test_tcpdns.py"]
UPLINK_TESTS = ["tests/uplink/test_batch.py", "tests/uplink/test_spool.py"]
MODULES: dict[str, list[str]] = {
    "sensor/core/decode/dns.py": DNS_TESTS,
    "sensor/core/decode/tcpdns.py": DNS_TESTS,
    "sensor/core/decode/tls.py": ["tests/core/decode/test_tls.py"],
    "sensor/core/decode/quic.py": ["tests/core/decode/test_quic.py"],
    "sensor/core/decode/http1.py": ["tests/core/decode/test_http.py"],
    "sensor/core/decode/tunnel.py": ["tests/core/decode/test_tunnels.py"],
    "sensor/blocklist/matcher.py": ["tests/blocklist/test_matcher.py",
                                    "tests/blocklist/test_domainset.py",
                                    "tests/blocklist/test_prefixset.py",
                                    "tests/blocklist/test_formats.py",
                                    "tests/blocklist/test_reference.py",
                                    "tests/core/test_detect.py"],
    "sensor/core/detect.py": ["tests/core/test_detect.py", "tests/core/test_app_layer.py",
                              "tests/core/test_dns_ports.py"],
    "sensor/uplink/batch.py": UPLINK_TESTS,
    "sensor/uplink/spool.py": UPLINK_TESTS,
    "sensor/collector/report.py": ["tests/collector/test_report.py"],
}
# What the tests read from the checkout besides tests/ (mutmut runs them in a copy).
ALSO_COPY = ["pcaps", "rules", "deploy", "docs", "README.md"]
# SQLite only: PostgreSQL would be started again for each mutant.
PYTEST_ARGS = ["-p", "no:cacheprovider", "-x", "-q", "-m", "not slow", "-k", "not postgres"]


def export_tree() -> None:
    """The checkout as it is (tracked and new files), without compiled modules."""
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    files = subprocess.run(["git", "-c", "safe.directory=*", "ls-files", "-z", "--cached",
                            "--others", "--exclude-standard"], cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file() and not name.endswith(".so"):
            target = WORK / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def configure(modules: list[str]) -> None:
    """mutmut's settings, in the copy's setup.cfg (mutmut reads them from there)."""
    tests = sorted({test for module in modules for test in MODULES[module]})
    lines = ["", "[mutmut]", "source_paths = sensor",
             "only_mutate =", *(f"    {module}" for module in modules),
             "also_copy =", *(f"    {path}" for path in ALSO_COPY),
             "pytest_add_cli_args =", *(f"    {arg}" for arg in PYTEST_ARGS),
             "pytest_add_cli_args_test_selection =", *(f"    {test}" for test in tests),
             # an endless loop is a kill; no need to wait 15 times a test's time for it
             "timeout_multiplier = 4"]
    with (WORK / "setup.cfg").open("a") as config:
        config.write("\n".join(lines) + "\n")


def equivalent() -> dict[str, str]:
    """Survivors judged equivalent: mutant name → why."""
    listed = {}
    for line in (ROOT / "tests" / "mutation" / "equivalent.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, why = line.partition(" ")
            listed[name] = why.strip()
    return listed


def scores(modules: list[str]) -> tuple[dict[str, tuple[int, int]], dict[str, list[str]]]:
    """Per module: (killed, tested) and the survivors' names, from mutmut's own verdicts
    (`mutmut results`); a timeout (an endless loop) is a kill, as mutmut scores it."""
    listed = equivalent()
    shown = subprocess.run([str(MUTMUT), "results", "--all", "true"], cwd=WORK, check=True,
                           capture_output=True, text=True).stdout
    verdicts = dict(line.strip().rsplit(": ", 1) for line in shown.splitlines() if ": " in line)
    counted: dict[str, tuple[int, int]] = {}
    survivors: dict[str, list[str]] = {}
    for module in modules:
        prefix = module.removesuffix(".py").replace("/", ".") + "."
        tested = [(name, verdict) for name, verdict in verdicts.items()
                  if name.startswith(prefix) and name not in listed]
        killed = sum(verdict in ("killed", "timeout") for _, verdict in tested)
        counted[module] = (killed, len(tested))
        survivors[module] = [name for name, verdict in tested
                             if verdict not in ("killed", "timeout")]
    return counted, survivors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="*", default=list(MODULES),
                        help="modules to mutate (default: all of them)")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--diffs", action="store_true",
                        help="print each survivor's change, not only its name")
    args = parser.parse_args()
    unknown = set(args.modules) - set(MODULES)
    if unknown:
        parser.error(f"not a module of the score: {', '.join(sorted(unknown))}")
    export_tree()
    configure(args.modules)
    run = subprocess.run([str(MUTMUT), "run", "--max-children", str(args.max_children)],
                         cwd=WORK, env={**os.environ, "MADOC_MUTATION": "1"})
    if run.returncode:
        print(f"mutmut run failed (exit {run.returncode})", file=sys.stderr)
        return run.returncode
    counted, survivors = scores(args.modules)
    print(f"\n{'module':44} {'killed':>7} {'tested':>7} {'score':>7}")
    for module, (killed, tested) in counted.items():
        print(f"{module:44} {killed:7} {tested:7} {100 * killed / max(tested, 1):6.1f}%")
    for module, names in survivors.items():
        if not names:
            continue
        print(f"\nsurvivors in {module} (mutmut show NAME, in {WORK}):")
        for name in names:
            print(f"  {name}")
            if args.diffs:
                shown = subprocess.run([str(MUTMUT), "show", name], cwd=WORK,
                                       capture_output=True, text=True).stdout
                print("\n".join(f"    {line}" for line in shown.splitlines()
                                if line[:1] in "+-" and line[:3] not in ("+++", "---")))
    low = [m for m, (killed, tested) in counted.items() if 100 * killed < TARGET * tested]
    if low:
        print(f"\nunder {TARGET:.0f} %: {', '.join(low)}")
    return 1 if low else 0


if __name__ == "__main__":
    sys.exit(main())
