"""The core never does I/O or reads the clock: a walk over its imports keeps it so."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

CORE = ["sensor/events.py", "sensor/decode", "sensor/flows.py", "sensor/conntrack.py",
        "sensor/blocklist/matcher.py", "sensor/blocklist/formats", "sensor/detect.py",
        "sensor/tally.py", "sensor/pipeline.py", "sensor/uplink/batch.py"]
FORBIDDEN = {"socket", "asyncio", "aiohttp", "pyroute2", "prometheus_client", "yaml", "time",
             "pcapy", "subprocess", "os", "datetime"}
# Address text conversions live in the socket module but touch no socket.
PURE_NAMES = {"socket": {"AF_INET", "AF_INET6", "inet_pton", "inet_ntop"}}


def core_files() -> list[Path]:
    files = []
    for entry in CORE:
        path = ROOT / entry
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return files


@pytest.mark.parametrize("path", core_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_module_imports_nothing_with_side_effects(path: Path) -> None:
    tree = ast.parse(path.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = {alias.name for alias in node.names}
            if not names <= PURE_NAMES.get(node.module, set()):
                imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN, f"{path.name} imports {sorted(imported & FORBIDDEN)}"
