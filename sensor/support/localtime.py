"""The machine's time zone: the collector's default for days and times shown, and the
zone of the sensor's EVE timestamps and of its own summary store."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo


def local_timezone() -> tzinfo:
    return datetime.now(UTC).astimezone().tzinfo or UTC
