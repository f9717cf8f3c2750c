"""`madoc-collector` command line: run, tokens, units."""

from __future__ import annotations

import argparse
import csv
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from sensor import __version__
from sensor.collector.config import ConfigError, load_config
from sensor.collector.store import Store, StoreError
from sensor.logs import FORMATS, setup_logging

DESCRIPTION = """\
The madoc central collector: receives alerts and per-host hit counts from
sensors (authenticated per sensor, stored exactly once) and answers the
provincial staff's questions: which hosts are infected, which are handled."""


def _error(message: str) -> None:
    print(f"madoc-collector: {message}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="madoc-collector", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-c", "--config", type=Path, metavar="FILE",
                        help="collector.yaml (default /etc/madoc/collector.yaml when present)")
    parser.add_argument("--database", metavar="URL",
                        help="sqlite:///PATH or postgresql://… (overrides the config's)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="serve the API until SIGTERM",
                         description="Apply database migrations, then serve /api/v1/.")
    run.add_argument("--log-format", choices=FORMATS, default="text",
                     help="log lines as text (default) or one JSON object per line")
    tokens = sub.add_parser("tokens", help="issue, revoke and list sensor and admin tokens")
    tokens_sub = tokens.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    add = tokens_sub.add_parser(
        "add", help="register a sensor and print its new token (only the token, on stdout)",
        description="SENSOR_ID --unit UNIT registers a sensor (a unit missing from the "
                    "directory is added, with a warning) and prints a new token; "
                    "--admin NAME prints a new admin token. Tokens are stored hashed: "
                    "this is the only time they are shown.")
    add.add_argument("sensor_id", nargs="?", metavar="SENSOR_ID")
    add.add_argument("--unit", help="the sensor's unit, as in the unit directory")
    add.add_argument("--admin", metavar="NAME", help="issue an admin token for NAME instead")
    revoke = tokens_sub.add_parser("revoke", help="revoke a sensor's or admin's tokens, or one "
                                                  "token by the id `tokens list` shows")
    revoke.add_argument("name_or_id", metavar="NAME|TOKEN_ID")
    tokens_sub.add_parser("list", help="tokens (id, kind, name, unit, created, revoked)")
    units = sub.add_parser("units", help="the unit directory")
    units_sub = units.add_subparsers(dest="units_command", required=True, metavar="ACTION")
    load = units_sub.add_parser("import", help="add or update units from a TSV file with "
                                               "columns group, unit[, code, parent]")
    load.add_argument("file", type=Path, metavar="FILE.tsv")
    units_sub.add_parser("list", help="units by group, with their sensor counts")
    return parser


def _when(epoch: float | None) -> str:
    return "-" if epoch is None else datetime.fromtimestamp(epoch, UTC).strftime(
        "%Y-%m-%d %H:%M:%SZ")


def tokens_command(store: Store, args: argparse.Namespace) -> int:
    now = time.time()
    if args.tokens_command == "add":
        if args.admin:
            if args.sensor_id or args.unit:
                _error("tokens add: give either SENSOR_ID --unit UNIT or --admin NAME")
                return 2
            print(store.add_admin_token(args.admin, now))
            return 0
        if not args.sensor_id or not args.unit:
            _error("tokens add: SENSOR_ID and --unit UNIT are needed (or --admin NAME)")
            return 2
        if store.add_unit(args.unit, now=now):
            _error(f"warning: unit {args.unit!r} was not in the directory; added "
                   f"(no group: import the directory with `units import`)")
        print(store.add_sensor_token(args.sensor_id, args.unit, now))
        return 0
    if args.tokens_command == "revoke":
        revoked = store.revoke(args.name_or_id, now)
        if not revoked:
            _error(f"no active token for {args.name_or_id!r}")
            return 1
        print(f"revoked {revoked} token(s)")
        return 0
    print(f"{'id':<12}  {'kind':<6}  {'name':<28}  {'unit':<28}  {'created':<20}  revoked")
    for row in store.tokens():
        print(f"{row['id']:<12}  {row['kind']:<6}  {row['name']:<28}  {row['unit'] or '-':<28}  "
              f"{_when(row['created']):<20}  {_when(row['revoked'])}")
    return 0


class UnitsFileError(ValueError):
    pass


def add_units(store: Store, path: Path, now: float) -> tuple[list[str], int, int]:
    """Add or update the units of a directory file (TSV: group, unit[, code, parent]);
    (units in file order, added, updated). A line without a unit name is reported
    on stderr and skipped (listed as "")."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
    except OSError as err:
        raise UnitsFileError(f"cannot read {path}: {err.strerror}") from err
    if not rows or not {"group", "unit"} <= set(rows[0]):
        raise UnitsFileError(f"{path}: expected a header line with the columns group and unit "
                             f"(optional: code, parent), tab-separated")
    units: list[str] = []
    added = updated = 0
    for line, row in enumerate(rows, start=2):
        unit, group = (row.get("unit") or "").strip(), (row.get("group") or "").strip()
        units.append(unit)
        if not unit:
            _error(f"{path}:{line}: no unit name; skipped")
            continue
        new = store.add_unit(unit, group, (row.get("code") or "").strip() or None,
                             (row.get("parent") or "").strip() or None, now)
        added += new
        updated += not new
    return units, added, updated


def import_units(store: Store, path: Path) -> int:
    try:
        units, added, updated = add_units(store, path, time.time())
    except UnitsFileError as err:
        _error(str(err))
        return 2
    bad = units.count("")
    print(f"{path}: {added} units added, {updated} updated, {bad} lines skipped")
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging("madoc-collector", getattr(args, "log_format", "text"),
                  "madoc-collector: %(message)s")
    try:
        config = load_config(args.config)
        if args.database:
            config.database = args.database
        if args.command == "run":
            from sensor.collector.app import run

            return run(config)
        store = Store(config.database, config.tz, config.quiet_period_days)
        store.migrate()
        if args.command == "tokens":
            return tokens_command(store, args)
        if args.units_command == "import":
            return import_units(store, args.file)
        for row in store.units():
            print(f"{row['group'] or '-'}\t{row['unit']}\t{row['code'] or ''}\t"
                  f"{row['sensors']} sensor(s)")
        return 0
    except (ConfigError, StoreError) as err:
        _error(str(err))
        return 2


if __name__ == "__main__":
    sys.exit(main())
