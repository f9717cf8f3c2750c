"""A short fuzzing pass (`make fuzz` runs the long one): mutated packets from every
capture go through the pipeline; nothing raises, and memory stays flat."""

from __future__ import annotations

from tests.fuzz.fuzz_packets import fuzz


def test_mutated_packets_never_raise_and_memory_stays_flat() -> None:
    # A count, not a time: how fast the machine is changes nothing here (rates are in
    # tests/bench and `make fuzz`).
    result = fuzz(packets=1_000_000, seconds=float("inf"), seed=20261204, say=lambda _: None)
    assert result["packets"] >= 1_000_000, result      # whole chunks: a few more
    assert result["seeds"] > 5_000 and result["malformed"] > 0, result
    assert result["rss_max_mib"] - result["rss_after_warmup_mib"] < 16, result
