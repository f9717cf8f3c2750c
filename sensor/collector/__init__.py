"""The central collector: receives alerts and per-host counts from sensors."""
