"""`madoc-collector` command line.

The collector's commands (run, report, units, tokens) land with the collector
itself; until then the command says so instead of pretending.
"""

from __future__ import annotations

import argparse

from sensor import __version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="madoc-collector",
        description="The madoc central collector. Not built yet in this release: "
                    "sensors write EVE JSON locally (madoc-sensor replay --eve).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.parse_args(argv)
    parser.error("the collector is not part of this release yet")
    return 2
