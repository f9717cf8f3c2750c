"""The hot-path modules setup.py compiles run compiled, and from their current source:
a test run of the slower Python modules, or of C built from an older source, would
measure and test something other than what the code says."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from tests.conftest import ROOT


def compiled_sources() -> list[str]:
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "COMPILED":
            return ast.literal_eval(node.value)
    raise AssertionError("setup.py names no COMPILED modules")


@pytest.mark.parametrize("source", compiled_sources())
def test_each_compiled_module_runs_as_c_built_from_its_source(source: str) -> None:
    module = importlib.import_module(source.removesuffix(".py").replace("/", "."))
    built = Path(module.__file__)
    assert built.suffix == ".so", (
        f"{source} runs as Python: the C build was skipped (is gcc installed?); "
        "`pip install -e .` says why")
    assert built.stat().st_mtime >= (ROOT / source).stat().st_mtime, (
        f"{built.name} was compiled from an older {source}: `make test` rebuilds it")
