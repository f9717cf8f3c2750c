"""Builds the packet path's hottest modules to C with mypyc, when a C compiler is at hand.

The modules stay plain, typed Python (what is read, reviewed and tested); mypyc
compiles the same source, so each runs without the interpreter's per-operation
dispatch. Without a compiler (or with MADOC_PURE_PYTHON=1) the extensions are
skipped with a warning and the same modules run as Python, slower
(docs/performance.md); with MADOC_REQUIRE_COMPILED=1 (the Debian package's build) a
module that does not compile fails the build instead. `tests/test_build.py` holds a test run to the compiled modules.
"""

import os

from setuptools import setup

COMPILED = [
    "sensor/blocklist/matcher.py",
    "sensor/core/app_layer.py",
    "sensor/core/decode/dns.py",
    "sensor/core/decode/http1.py",
    "sensor/core/decode/ip.py",
    "sensor/core/decode/link.py",
    "sensor/core/decode/quic.py",
    "sensor/core/decode/segments.py",
    "sensor/core/decode/tcpdns.py",
    "sensor/core/decode/tls.py",
    "sensor/core/decode/tunnel.py",
    "sensor/core/detect.py",
    "sensor/core/flows.py",
    "sensor/core/pipeline.py",
    "sensor/core/tally.py",
    "sensor/sinks/counts.py",
    "sensor/sinks/eve.py",
]


def compiled_modules() -> list:
    if os.environ.get("MADOC_PURE_PYTHON"):
        return []
    from mypyc.build import mypycify

    extensions = mypycify(["--ignore-missing-imports", *COMPILED], opt_level="3")
    required = bool(os.environ.get("MADOC_REQUIRE_COMPILED"))
    for extension in extensions:
        extension.optional = not required   # no compiler: a warning, and the Python modules
    return extensions


setup(ext_modules=compiled_modules())
