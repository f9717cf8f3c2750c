"""`madoc-collector` command line: run, doctor, tokens, units, report, upstream."""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from sensor import __version__, documents_epilog
from sensor.collector.config import CollectorConfig, ConfigError, load_config
from sensor.collector.forms import FORMATS as REPORT_FORMATS
from sensor.collector.forms import LANGS, render, report_file_name
from sensor.collector.report import (
    Report,
    ReportError,
    add_period_arguments,
    campaign_report,
    period_from,
)
from sensor.collector.store import Store, StoreError
from sensor.collector.upstream import Upstream
from sensor.daemon.privileges import PrivilegeError, drop_privileges
from sensor.support.accounts import AccountError, act_as, as_invoker
from sensor.support.logs import FORMATS, setup_logging

DESCRIPTION = """\
The madoc central collector: receives alerts and per-host hit counts from
sensors (authenticated per sensor, stored exactly once) and answers the
provincial staff's questions: which hosts are infected, which are handled.
It can report upward (a province to the nation) and receive from organisations
below, as the campaign's reports travel."""


def _error(message: str) -> None:
    print(f"madoc-collector: {message}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="madoc-collector", description=DESCRIPTION,
                                     epilog=documents_epilog())
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _where_arguments(parser, before_command=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="serve the API until SIGTERM",
                         description="Apply database migrations, then serve /api/v1/.")
    _where_arguments(run)
    run.add_argument("--log-format", choices=FORMATS, default="text",
                     help="log lines as text (default) or one JSON object per line")
    doctor = sub.add_parser(
        "doctor", help="check this host against the configuration, changing nothing",
        description="Check, as the service will run (as the configuration's user), what the "
                    "collector needs: the TLS certificate and key, the database, the "
                    "upstream token and secret, the listening addresses, and the systemd "
                    "unit's state. One line per check; FAIL lines say what to do. Exit "
                    "status 1 when a check failed, 2 when the configuration is wrong.")
    tokens = sub.add_parser("tokens", help="issue, revoke and list sensor and admin tokens")
    tokens_sub = tokens.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    add = tokens_sub.add_parser(
        "add", help="register a sensor and print its new token (only the token, on stdout)",
        description="SENSOR_ID --unit UNIT registers a sensor (a unit missing from the "
                    "directory is added, with a warning) and prints a new token; "
                    "--admin NAME prints a new staff (admin) token: for the whole province, "
                    "or with --unit UNIT or --group BLOCK for that unit's or block's staff, "
                    "who then see and change only their own computers, sensors and report. "
                    "Tokens are stored hashed: this is the only time they are shown.")
    add.add_argument("sensor_id", nargs="?", metavar="SENSOR_ID")
    add.add_argument("--unit", help="the sensor's unit, or the unit an admin token is limited "
                                    "to (as in the unit directory)")
    add.add_argument("--admin", metavar="NAME", help="issue an admin token for NAME instead")
    add.add_argument("--group", metavar="BLOCK", help="with --admin: limit the token to the "
                                                      "units of this block (khối)")
    add.add_argument("--org", metavar="NAME", help="issue a token for an organisation that "
                                                   "reports to this collector (a province to "
                                                   "the nation: its upstream.org)")
    revoke = tokens_sub.add_parser("revoke", help="revoke a sensor's or admin's tokens, or one "
                                                  "token by the id `tokens list` shows")
    revoke.add_argument("name_or_id", metavar="NAME|TOKEN_ID")
    listing = tokens_sub.add_parser("list", help="tokens (id, kind, name, the sensor's unit or "
                                                 "the admin's unit or block, created, revoked)")
    units = sub.add_parser("units", help="the unit directory")
    units_sub = units.add_subparsers(dest="units_command", required=True, metavar="ACTION")
    load = units_sub.add_parser("import", help="add or update units from a TSV file with "
                                               "columns group, unit[, code, parent, informed]")
    load.add_argument("file", type=Path, metavar="FILE.tsv")
    units_list = units_sub.add_parser("list", help="units by group, with their sensor counts")
    upstream = sub.add_parser("upstream", help="report to the level above (collector.yaml's "
                                                "upstream)")
    upstream_sub = upstream.add_subparsers(dest="upstream_command", required=True,
                                           metavar="ACTION")
    send = upstream_sub.add_parser(
        "send", help="send what changed now and wait for the answer",
        description="Spool the days whose data changed since they were last sent, and the "
                    "hosts' statuses that changed, then send the spool to upstream.url and "
                    "wait until the level above has stored all of it (exit 0) or --timeout "
                    "passes (exit 1; what is unsent stays spooled). The running collector "
                    "does the same every upstream.interval_seconds.")
    send.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                      help="give up waiting after this long (default 60)")
    for leaf in (doctor, add, revoke, listing, load, units_list, send, _report_parser(sub)):
        _where_arguments(leaf)
    return parser


def _where_arguments(parser: argparse.ArgumentParser, before_command: bool = False) -> None:
    """-c and --database, before the command or after it (`madoc-collector run -c FILE`):
    after it they take effect only when given, so they never undo what came before."""
    default = None if before_command else argparse.SUPPRESS
    parser.add_argument("-c", "--config", type=Path, metavar="FILE", default=default,
                        help="collector.yaml (default /etc/madoc/collector.yaml when present)")
    parser.add_argument("--database", metavar="URL", default=default,
                        help="sqlite:///PATH or postgresql://… (overrides the config's)")


def _report_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    report = sub.add_parser(
        "report", help="the campaign report (Phụ lục forms 1 and 2) for a period",
        description="Count, in the database, the numbers of the campaign's forms for a period\n"
                    "(default: the last full ISO week): units informed and deployed (form 1,\n"
                    "by block), and per unit the computers covered, found with hits and\n"
                    "handled now (form 2), with the top indicators, the hosts still infected\n"
                    "and a drafted assessment. Markdown goes to stdout unless -o or --out-dir\n"
                    "is given; --out-dir writes one file per format, named by the period\n"
                    "(what the weekly madoc-report.timer runs).",
        epilog="examples:  madoc-collector report --week 2022-W38 --format docx -o w38.docx\n"
               "           madoc-collector report --from 2022-08-26 --to 2022-09-28 "
               "--group 'Tổ chức chính trị, xã hội'\n"
               "           madoc-collector report --format all --out-dir /srv/reports",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_period_arguments(report, "the collector's time zone")
    scope = report.add_mutually_exclusive_group()
    scope.add_argument("--unit", help="only this unit (form 2 for it, form 1 counts it)")
    scope.add_argument("--group", help="only the units of this block")
    scope.add_argument("--org", help="the report of an organisation below, from what it sent")
    report.add_argument("-f", "--format", default="md", metavar="FMT",
                        help=f"{', '.join(REPORT_FORMATS)}, several separated by commas, or all "
                             f"(default md)")
    report.add_argument("--lang", choices=LANGS, default="vi",
                        help="labels in Vietnamese as in the forms (default) or English")
    report.add_argument("--organisation", default="", metavar="NAME",
                        help="the reporting body's name for \"Tên đơn vị\" (default: left "
                             "for staff to fill)")
    out = report.add_mutually_exclusive_group()
    out.add_argument("-o", "--output", type=Path, metavar="FILE",
                     help="write the (single) format to FILE")
    out.add_argument("--out-dir", type=Path, metavar="DIR",
                     help="write each format to DIR/madoc-report-PERIOD[-SCOPE].EXT")
    return report


def _when(epoch: float | None) -> str:
    return "-" if epoch is None else datetime.fromtimestamp(epoch, UTC).strftime(
        "%Y-%m-%d %H:%M:%SZ")


def tokens_command(store: Store, args: argparse.Namespace) -> int:
    now = time.time()
    if args.tokens_command == "add":
        if args.org:
            if args.sensor_id or args.admin or args.unit or args.group:
                _error("tokens add: --org NAME stands alone")
                return 2
            print(store.add_org_token(args.org, now))
            return 0
        if args.admin:
            if args.sensor_id:
                _error("tokens add: give either SENSOR_ID --unit UNIT or --admin NAME")
                return 2
            try:
                print(store.add_admin_token(args.admin, now, unit=args.unit, group=args.group))
            except StoreError as err:
                _error(f"tokens add: {err}")
                return 2
            return 0
        if args.group:
            _error("tokens add: --group limits an admin token (--admin NAME)")
            return 2
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
    print(f"{'id':<12}  {'kind':<6}  {'name':<28}  {'unit or block':<28}  {'created':<20}  "
          f"revoked")
    for row in store.tokens():
        scope = row["unit"] or (f"block: {row['group']}" if row["group"] else "-")
        print(f"{row['id']:<12}  {row['kind']:<6}  {row['name']:<28}  {scope:<28}  "
              f"{_when(row['created']):<20}  {_when(row['revoked'])}")
    return 0


_YES, _NO = frozenset({"1", "yes", "true", "có", "x"}), frozenset({"0", "no", "false", "không"})


class UnitsFileError(ValueError):
    pass


def add_units(store: Store, path: Path, now: float) -> tuple[list[str], int, int]:
    """Add or update the units of a directory file (TSV: group, unit[, code, parent,
    informed]; informed 0/no/không marks a unit that did not get the campaign letter);
    (units in file order, added, updated). A line without a unit name is reported
    on stderr and skipped (listed as "")."""
    try:
        with as_invoker(), path.open(encoding="utf-8-sig", newline="") as handle:
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
        mark = (row.get("informed") or "").strip().lower()
        if mark and mark not in _YES | _NO:
            _error(f"{path}:{line}: informed {mark!r}: expected 1/0, yes/no or có/không; "
                   f"left as it was")
        new = store.add_unit(unit, group, (row.get("code") or "").strip() or None,
                             (row.get("parent") or "").strip() or None, now,
                             True if mark in _YES else False if mark in _NO else None)
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


def _formats(text: str) -> list[str]:
    names = (list(REPORT_FORMATS) if text == "all"
             else [f.strip() for f in text.split(",") if f.strip()])
    if not names or any(name not in REPORT_FORMATS for name in names):
        raise ReportError(f"format {text!r}: choose from {', '.join(REPORT_FORMATS)} or all")
    return names


def report_command(store: Store, config: CollectorConfig, args: argparse.Namespace) -> int:
    try:
        formats = _formats(args.format)
        if len(formats) > 1 and not args.out_dir:
            raise ReportError("several formats need --out-dir")
        period = period_from(args.week, args.first, args.last, datetime.now(config.tz).date())
        report = campaign_report(store, period, args.unit, args.group, org=args.org)
    except ReportError as err:
        _error(f"report: {err}")
        return 2
    for fmt in formats:
        data = render(report, fmt, args.lang, args.organisation)
        with as_invoker():
            written = _write_report(data, fmt, report, args)
        if written is not None:
            return written
    return 0


def _write_report(data: bytes, fmt: str, report: Report,
                  args: argparse.Namespace) -> int | None:
    """One format where the command line says; an exit status when it cannot be."""
    if args.out_dir:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        path = args.out_dir / report_file_name(report, fmt)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_bytes(data)
        temporary.replace(path)         # a reader never sees half a report
        print(path)
    elif args.output:
        args.output.write_bytes(data)
    elif fmt in ("docx", "xlsx") and sys.stdout.isatty():
        _error(f"report: {fmt} is binary; give -o FILE or --out-dir DIR")
        return 2
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return None


def upstream_send(store: Store, config: CollectorConfig, timeout: float) -> int:
    if config.upstream is None:
        _error(f"upstream send: {config.source} has no upstream: {{url, org, token_file}}")
        return 2
    upstream = Upstream(config.upstream, store)
    spooled = upstream.spool_pending()
    sent = asyncio.run(upstream.uplink.drain(time.monotonic() + timeout))
    stats = upstream.uplink.stats
    print(f"{spooled} batch(es) spooled; {stats.sent} sent ({stats.duplicates} already "
          f"stored), {upstream.spool.waiting()} waiting"
          + (f"; last error: {stats.last_error}" if not sent and stats.last_error else ""))
    return 0 if sent else 1


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

            if config.user is not None:
                drop_privileges(config.user, keep=())
            return run(config)
        if args.command == "doctor":
            from sensor.collector.readiness import doctor

            return doctor(config)
        act_as(config.user)
        store = Store(config.database, config.tz, config.quiet_period_days)
        store.migrate()
        if args.command == "tokens":
            return tokens_command(store, args)
        if args.command == "report":
            return report_command(store, config, args)
        if args.command == "upstream":
            return upstream_send(store, config, args.timeout)
        if args.units_command == "import":
            return import_units(store, args.file)
        for row in store.units():
            print(f"{row['group'] or '-'}\t{row['unit']}\t{row['code'] or ''}\t"
                  f"{row['sensors']} sensor(s)")
        return 0
    except (ConfigError, StoreError, AccountError, PrivilegeError) as err:
        _error(str(err))
        return 2


if __name__ == "__main__":
    sys.exit(main())
