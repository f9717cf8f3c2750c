"""The central collector (issue 4): receives alerts and per-host counts from sensors."""
