"""The pure core: frames in, events out.

Decoding, flow tracking, detection and per-host tallies are plain functions and
classes over bytes and dataclasses. Nothing here opens a socket or a file, or
reads the clock: time is the packet's timestamp, passed in. `pipeline.py` is the
one place the core is assembled; `tests/test_architecture.py` keeps these rules.
"""
