"""How the packet loop's process sets Python's cyclic garbage collector.

The packet path allocates a great many small containers that die young (events,
tuples) and keeps many that live long (flows, the compiled rules). CPython's
default gen-0 threshold of 700 allocations starts a collection every few hundred
packets, and the older generations then walk every live flow and rule object
again and again, to find nothing: no packet-path object is part of a reference
cycle, so plain reference counting frees them all. On the benchmark capture
that walking cost about a fifth of the pipeline's CPU time (`make bench`).

So, once the long-lived state is built: collect once, move everything alive
out of the collector's sight (`gc.freeze`; frozen objects are still freed by
reference counting when dropped), and collect far less often. Cyclic garbage
that does appear is still found, a little later.
"""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 20_000     # container allocations between gen-0 collections (default 700)


def settle(collect: bool = True) -> None:
    """Call when the long-lived state (modules, rules, tables) is in place: at start, and
    with `collect` off after a rules reload is swapped in (a full collection then would
    walk every open flow while the capture ring fills)."""
    if collect:
        gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
