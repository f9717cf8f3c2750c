"""Sinks: the edges that take events out of the core (EVE JSON, event counts, the
local summary store)."""
