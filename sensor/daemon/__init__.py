"""`madoc-sensor run`: the live daemon (main process, capture workers, metrics,
privileges, the host's networks)."""
