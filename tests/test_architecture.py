"""The tree keeps the shape docs/architecture.md draws: the core does no I/O and reads no
clock, no module imports one that imports it back, `sensor/` itself holds only the
entry points, and the document's module map names every module there is."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "sensor"
CORE = ["sensor/core", "sensor/blocklist/matcher.py", "sensor/blocklist/formats",
        "sensor/uplink/batch.py"]
FORBIDDEN = {"socket", "asyncio", "aiohttp", "pyroute2", "prometheus_client", "yaml", "time",
             "pcapy", "subprocess", "os", "datetime"}
# Address text conversions live in the socket module but touch no socket.
PURE_NAMES = {"socket": {"AF_INET", "AF_INET6", "inet_pton", "inet_ntop"}}
MOST_TOP_LEVEL_MODULES = 12


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(path: Path) -> Iterator[tuple[str, set[str]]]:
    """(top-level name, names imported from it) of each import in the file, anywhere in
    it (a function's import counts as much as the module's); relative ones resolved."""
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, set()
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            yield module, {alias.name for alias in node.names}


def sensor_imports(path: Path) -> set[str]:
    """The modules of this package that a file imports (`from a import b` names module
    a.b when b is one)."""
    found = set()
    for module, names in imported_modules(path):
        targets = [f"{module}.{name}" for name in names if f"{module}.{name}" in MODULES]
        found.update(targets or [module])
    return {name for name in found if name in MODULES and name != module_name(path)}


def core_files() -> list[Path]:
    files = []
    for entry in CORE:
        path = ROOT / entry
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return files


@pytest.mark.parametrize("path", core_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_module_imports_nothing_with_side_effects(path: Path) -> None:
    imported = set()
    for module, names in imported_modules(path):
        if not (names and names <= PURE_NAMES.get(module, set())):
            imported.add(module.split(".")[0])
    assert not imported & FORBIDDEN, f"{path.name} imports {sorted(imported & FORBIDDEN)}"


def test_core_imports_no_edge() -> None:
    core = {module_name(path) for path in core_files()}
    for path in core_files():
        edges = sensor_imports(path) - core
        assert not edges, f"{path.relative_to(ROOT)} (core) imports {sorted(edges)}"


def test_no_module_imports_one_that_imports_it_back() -> None:
    graph = {name: sensor_imports(path) for name, path in MODULES.items()}
    cycles = []

    def walk(name: str, trail: list[str], done: set[str]) -> None:
        for target in sorted(graph[name]):
            if target in trail:
                cycles.append(" → ".join([*trail[trail.index(target):], target]))
            elif target not in done:
                walk(target, [*trail, target], done)
        done.add(name)

    done: set[str] = set()
    for name in sorted(graph):
        if name not in done:
            walk(name, [name], done)
    assert not cycles, "import cycles:\n" + "\n".join(sorted(set(cycles)))


def test_the_package_top_holds_only_the_entry_points() -> None:
    top = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(top) <= MOST_TOP_LEVEL_MODULES, top


def test_no_two_modules_share_a_name_for_different_things() -> None:
    """Parallel modules of the two programs (cli, config, metrics, __main__) and a package's
    own parts may share a name; anything else named twice is a clash to rename."""
    parallel = {"__init__", "__main__", "cli", "config", "metrics", "live"}
    seen: dict[str, str] = {}
    for name in MODULES:
        stem = name.rsplit(".", 1)[-1]
        if stem in parallel:
            continue
        assert stem not in seen, f"{seen[stem]} and {name} share a name"
        seen[stem] = name


def test_the_module_map_names_every_module_and_only_those() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("## Module map", 1)[1].split("\n## ", 1)[0]
    mapped = set(re.findall(r"`(sensor/[\w/]+\.py)`", section))
    actual = {str(path.relative_to(ROOT)) for path in MODULES.values()
              if path.name != "__init__.py"}
    assert not actual - mapped, f"missing from the module map: {sorted(actual - mapped)}"
    assert not mapped - actual, f"in the module map but not in the tree: {sorted(mapped - actual)}"
