"""`madoc-sensor summary`: the Form 2 figures of the sensor's own summary store
(`sinks/summary_store.py`), for a unit without a collector."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

from sensor.collector.store import StoreError
from sensor.sinks.summary_store import open_summary
from sensor.support.localtime import local_timezone


def summary_command(args: Any) -> int:
    """`madoc-sensor summary`: the store named by --db or the configuration, a period,
    the report rendered to stdout."""
    from sensor.collector.forms import render
    from sensor.collector.report import ReportError, campaign_report, period_from
    from sensor.config import DEFAULT_STATE_DIR, ConfigError, load_config

    path = args.db or DEFAULT_STATE_DIR / "summary.db"
    try:
        if args.config:
            path = load_config(args.config).summary_path
        if not path.exists():
            raise StoreError(f"no summary store at {path} (the daemon keeps one in its "
                             f"state_dir; replay writes one with --summary-db)")
        tz = local_timezone()
        period = period_from(args.week, args.first, args.last, datetime.now(tz).date())
        report = campaign_report(open_summary(path, tz), period)
    except (ConfigError, StoreError, ReportError) as err:
        print(f"madoc-sensor: summary: {err}", file=sys.stderr)
        return 2
    sys.stdout.buffer.write(render(report, args.format, args.lang))
    return 0
