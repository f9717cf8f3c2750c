"""Sinks: the edges that take events out of the core (EVE JSON, summaries …)."""
