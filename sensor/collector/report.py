"""The campaign report (Phụ lục): the numbers of Form 1 and Form 2 for a period.

The database counts (`Store.report_rows`); this module only shapes the rows into
the report, its JSON contract and the drafted assessment. No clock inside: the
caller says which day is "today" for the default period.

Definitions (CONTEXT.md): a unit *received the information* when it is in the
directory and marked informed (the default); it *deployed* when one of its
sensors reported during the period (a batch received, or events dated, on a day
of the period); a unit's computers *covered* are the distinct hosts its sensors
saw active in the period, *found* those with at least one hit in the period,
*handled* those of the found whose status is handled now (an admin's mark after
the last hit, or the quiet period passed without one).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from sensor.collector.charts import DailySeries, OrgsDaily, daily_series, orgs_daily
from sensor.collector.store import EVERYTHING, ReportRows, Scope, Store, department_unit

_WEEK = re.compile(r"(\d{4})-?W(\d{2})")


class ReportError(ValueError):
    """A period that cannot be read, or a unit or group the directory lacks."""


@dataclass(frozen=True)
class Period:
    """Whole days, both ends included, in the collector's time zone."""
    first: date
    last: date

    @classmethod
    def week(cls, text: str) -> Period:
        """An ISO week, `2022-W38` (Monday to Sunday)."""
        match = _WEEK.fullmatch(text.strip())
        if not match:
            raise ReportError(f"week {text!r}: expected YYYY-Www, e.g. 2022-W38")
        try:
            monday = date.fromisocalendar(int(match[1]), int(match[2]), 1)
        except ValueError as err:
            raise ReportError(f"week {text!r}: {err}") from err
        return cls(monday, monday + timedelta(days=6))

    @classmethod
    def between(cls, first: str, last: str) -> Period:
        try:
            period = cls(date.fromisoformat(first), date.fromisoformat(last))
        except ValueError as err:
            raise ReportError(f"dates must be YYYY-MM-DD: {err}") from err
        if period.last < period.first:
            raise ReportError(f"--to {last} is before --from {first}")
        return period

    @classmethod
    def last_full_week(cls, today: date) -> Period:
        """The last Monday-to-Sunday week that has ended before today."""
        monday = today - timedelta(days=today.weekday() + 7)
        return cls(monday, monday + timedelta(days=6))

    @property
    def iso_week(self) -> str | None:
        """`2022-W38` when the period is exactly one ISO week."""
        year, week, weekday = self.first.isocalendar()
        if weekday == 1 and self.last == self.first + timedelta(days=6):
            return f"{year}-W{week:02d}"
        return None

    @property
    def name(self) -> str:
        return self.iso_week or f"{self.first.isoformat()}_{self.last.isoformat()}"


def add_period_arguments(parser: Any, zone: str) -> None:
    """--week, --from and --to, read by `period_from` (command lines of both programs)."""
    when = parser.add_argument_group(f"period (days in {zone}; default: the last full "
                                     f"ISO week)")
    when.add_argument("--week", metavar="YYYY-Www", help="an ISO week, e.g. 2022-W38")
    when.add_argument("--from", dest="first", metavar="YYYY-MM-DD", help="first day")
    when.add_argument("--to", dest="last", metavar="YYYY-MM-DD", help="last day (included)")


def period_from(week: str | None, first: str | None, last: str | None, today: date) -> Period:
    """The period a command line or a query names: a week, a range, or by default the
    last full ISO week before today."""
    if week and (first or last):
        raise ReportError("give either a week or --from/--to, not both")
    if week:
        return Period.week(week)
    if first or last:
        if not (first and last):
            raise ReportError("--from and --to go together")
        return Period.between(first, last)
    return Period.last_full_week(today)


@dataclass
class IndicatorFigure:
    indicator: str
    indicator_type: str
    hits: int
    hosts: int
    matches: list[str]          # the match points its hits were seen at


@dataclass
class InfectedHost:
    id: int
    ip: str
    mac: str | None
    sensor: str
    last_hit: str | None
    hits: int


@dataclass
class EncryptedDnsHost:
    """A computer that resolved names where the sensor cannot read them."""
    id: int
    ip: str
    mac: str | None
    sensor: str
    kinds: list[str]            # dot, doq, doh
    servers: list[str]          # the resolvers' names or addresses
    flows: int


@dataclass
class HandledNote:
    """A computer marked handled in the period: who, when, and what they did (the
    audit log)."""
    id: int
    ip: str
    mac: str | None
    at: str
    by: str
    note: str


MAX_LISTED_HOSTS = 1000         # per annex list of the report
DAILY_SERIES = ("hits", "found", "handled", "still_infected", "units_deployed")


@dataclass
class Subtotal:
    """A unit's Form 2 figures with those of its sub-units (the directory's `parent`),
    all the way down."""
    sensors: int = 0
    sensors_reporting: int = 0
    computers_covered: int = 0
    computers_found: int = 0
    computers_handled: int = 0


SUBTOTALS = tuple(f.name for f in fields(Subtotal))


@dataclass
class UnitFigures:
    """Form 2 for one unit, with what the annex lists. The figures are the unit's own;
    a unit with sub-units also has them summed with theirs (`with_subunits`)."""
    unit: str
    group: str
    informed: bool
    deployed: bool
    parent: str | None = None
    with_subunits: Subtotal | None = None
    department: str | None = None   # the department below whose collector sent its figures
    sensors: int = 0
    sensors_reporting: int = 0
    computers_covered: int = 0
    computers_found: int = 0
    computers_handled: int = 0
    computers_encrypted_dns: int = 0    # not Form 2: the sensor cannot see their DNS
    top_indicators: list[IndicatorFigure] = field(default_factory=list)
    hosts_still_infected: list[InfectedHost] = field(default_factory=list)
    hosts_encrypted_dns: list[EncryptedDnsHost] = field(default_factory=list)
    handled_log: list[HandledNote] = field(default_factory=list)


@dataclass
class SilentSensor:
    id: str
    unit: str
    last_seen: str | None


@dataclass
class OrgFigures:
    """An organisation below this collector (a province seen from the nation), as its
    own report counts it from what it sent."""
    org: str
    informed: int
    deployed: int
    computers_covered: int
    computers_found: int
    computers_handled: int
    silent: bool                # sent nothing for any day of the period


@dataclass
class OrgIndicator:
    """A campaign address hit below: in how many organisations, on how many computers."""
    indicator: str
    indicator_type: str
    orgs: int
    computers: int
    hits: int


@dataclass
class Report:
    period: Period
    unit: str | None
    group: str | None
    units: list[UnitFigures]
    silent_sensors: list[SilentSensor]
    daily: DailySeries | None   # None for an organisation below (its hosts' history stays there)
    org: str | None = None      # the report of an organisation below
    orgs: list[OrgFigures] = field(default_factory=list)
    org_indicators: list[OrgIndicator] = field(default_factory=list)
    orgs_daily: OrgsDaily | None = None

    # -- Form 1 --------------------------------------------------------------------------
    def by_group(self) -> dict[str, dict[str, int]]:
        groups: dict[str, dict[str, int]] = {}
        for unit in self.units:
            counts = groups.setdefault(unit.group, {"informed": 0, "deployed": 0})
            counts["informed"] += unit.informed
            counts["deployed"] += unit.deployed
        return groups

    @property
    def informed(self) -> int:
        return sum(unit.informed for unit in self.units)

    @property
    def deployed(self) -> int:
        return sum(unit.deployed for unit in self.units)

    # -- Form 2 summed over the scope ------------------------------------------------------
    def total(self, name: str) -> int:
        return sum(getattr(unit, name) for unit in self.units)

    def to_json(self, lang: str = "vi") -> dict[str, Any]:
        """The contract other tools read (docs/report.md)."""
        return {
            "period": {"from": self.period.first.isoformat(),
                       "to": self.period.last.isoformat(), "week": self.period.iso_week},
            "scope": {"unit": self.unit, "group": self.group, "org": self.org},
            "form1": {"informed": self.informed, "deployed": self.deployed,
                      "by_group": self.by_group()},
            "form2": [asdict(unit) for unit in self.units],
            "totals": {name: self.total(name) for name in
                       ("computers_covered", "computers_found", "computers_handled",
                        "computers_encrypted_dns")},
            "silent_sensors": [asdict(sensor) for sensor in self.silent_sensors],
            "daily": None if self.daily is None else {
                "days": [day.isoformat() for day in self.daily.days],
                **{name: getattr(self.daily, name) for name in DAILY_SERIES}},
            "assessment": assessment(self, lang),
        } | ({"orgs": [asdict(org) for org in self.orgs],
              "org_indicators": [asdict(i) for i in self.org_indicators]}
             if self.orgs else {})


def _iso(epoch: float | None, tz: tzinfo) -> str | None:
    """A moment as the JSON contract gives it: ISO 8601 in the collector's time zone,
    with its offset."""
    return None if epoch is None else datetime.fromtimestamp(epoch, tz).isoformat(
        timespec="seconds")


def readable_time(iso: str | None) -> str:
    """An ISO 8601 moment as people read it on the forms: `dd/mm/yyyy HH:MM`, in the
    zone it was written in (the collector's)."""
    return datetime.fromisoformat(iso).strftime("%d/%m/%Y %H:%M") if iso else ""


def campaign_report(store: Store, period: Period, unit: str | None = None,
                    group: str | None = None, scope: Scope = EVERYTHING,
                    org: str | None = None) -> Report:
    """The report for a period and a unit or group, counted by the store's database,
    within a staff account's scope: a unit outside it answers as one the directory
    lacks, and the report of an account's whole scope is named after its unit or block.
    With `org`, the report of an organisation below, from what it sent. The whole
    report of a collector with organisations below lists their figures (`orgs`)."""
    if unit is not None and group is not None:
        raise ReportError("give either a unit or a group, not both")
    first, last = period.first.isoformat(), period.last.isoformat()
    if org is not None:
        if not scope.everything or org not in store.orgs():
            raise ReportError(f"organisation {org!r} reports nothing to this collector "
                              f"(see `tokens list`)")
        report = build_report(store.org_report_rows(org, first, last), period, None, None,
                              store.tz, None)
        report.org = org
        return report
    rows = store.report_rows(period.first.isoformat(), period.last.isoformat(),
                             scope.narrow(unit, group))
    if not rows.units and (unit is not None or group is not None):
        what = f"unit {unit!r}" if unit is not None else f"group {group!r}"
        raise ReportError(f"{what} is not in the unit directory (see `units list`)")
    if unit is None and group is None:
        unit = scope.units[0] if scope.units else None
        group = scope.groups[0] if scope.groups and unit is None else None
    daily = daily_series(store.daily_rows(period.first.isoformat(), period.last.isoformat(),
                                          scope.narrow(unit, group)),
                         period.first, period.last, store.tz, store.quiet_seconds)
    report = build_report(rows, period, unit, group, store.tz, daily)
    add_departments(store, report)
    if scope.everything and unit is None and group is None and store.orgs():
        report.orgs = [org_figures(store, name, period) for name in store.orgs()]
        report.org_indicators = [OrgIndicator(*row) for row in store.org_indicators(first, last)]
        report.orgs_daily = orgs_daily(store.org_daily(first, last), period.first, period.last)
    return report


def add_departments(store: Store, report: Report) -> None:
    """A department that runs its own collector and reports here (an organisation below
    named as a unit of this directory): its units join the report as sub-units of that
    unit, named `Sở Y tế / Bệnh viện A`, each under its parent there or else under the
    department, counted from what the department sent."""
    listed = {figures.unit: figures for figures in report.units}
    departments = [name for name in store.departments() if name in listed]
    for department in departments:
        below = build_report(store.org_report_rows(department, report.period.first.isoformat(),
                                                   report.period.last.isoformat()),
                             report.period, None, None, store.tz, None)
        names = {figures.unit: department_unit(department, figures.unit)
                 for figures in below.units}
        for figures in below.units:
            figures.parent = names.get(figures.parent or "", department)
            figures.unit = names[figures.unit]
            figures.group = listed[department].group
            figures.with_subunits = None
            figures.department = department
        report.units.extend(below.units)
        report.silent_sensors += [SilentSensor(f"{department}/{sensor.id}", names[sensor.unit],
                                               sensor.last_seen)
                                  for sensor in below.silent_sensors]
    if departments:
        report.units = roll_up(report.units)


def org_figures(store: Store, org: str, period: Period) -> OrgFigures:
    report = build_report(store.org_report_rows(org, period.first.isoformat(),
                                                period.last.isoformat()),
                          period, None, None, store.tz, None)
    return OrgFigures(org, report.informed, report.deployed,
                      report.total("computers_covered"), report.total("computers_found"),
                      report.total("computers_handled"), report.deployed == 0)


def build_report(rows: ReportRows, period: Period, unit: str | None, group: str | None,
                 tz: tzinfo, daily: DailySeries) -> Report:
    units = {name: UnitFigures(name, grp, bool(informed), bool(deployed), parent)
             for name, grp, informed, deployed, parent in rows.units}

    def unit_of(name: str) -> UnitFigures:
        """A unit's figures; one the data names but the directory lacks (an organisation
        below whose directory has not arrived yet) is added, not informed."""
        figures = units.get(name)
        if figures is None:
            figures = units[name] = UnitFigures(name, "", False, False)
            unlisted.add(name)
        return figures

    unlisted: set[str] = set()
    silent = []
    for sensor_id, unit_name, last_seen, reported in rows.sensors:
        figures = unit_of(unit_name)
        if unit_name in unlisted and reported:
            figures.deployed = True     # what the directory's query says of listed units
        figures.sensors += 1
        figures.sensors_reporting += bool(reported)
        if not reported:
            silent.append(SilentSensor(sensor_id, unit_name, _iso(last_seen, tz)))
    for unit_name, hosts in rows.covered:
        unit_of(unit_name).computers_covered = hosts
    for unit_name, hosts, handled in rows.found:
        figures = unit_of(unit_name)
        figures.computers_found, figures.computers_handled = hosts, handled
    for unit_name, host_id, ip, mac, sensor, last_hit, hits in rows.infected:
        unit_of(unit_name).hosts_still_infected.append(
            InfectedHost(host_id, ip, mac, sensor, _iso(last_hit, tz), hits))
    matches: dict[tuple[str, str], list[str]] = {}
    for unit_name, indicator, match in rows.matches:
        matches.setdefault((unit_name, indicator), []).append(match)
    for unit_name, indicator, kind, hits, hosts in rows.indicators:
        unit_of(unit_name).top_indicators.append(IndicatorFigure(
            indicator, kind, hits, hosts, matches.get((unit_name, indicator), [])))
    for unit_name, host_id, ip, mac, ts, action, by, note in rows.actions:
        if action == "handled":
            unit_of(unit_name).handled_log.append(
                HandledNote(host_id, ip, mac, _iso(ts, tz) or "", by, note))
    listed: dict[int, EncryptedDnsHost] = {}
    for unit_name, host_id, ip, mac, sensor, kind, server, flows in rows.encrypted_dns:
        host = listed.get(host_id)
        if host is None:
            figures = unit_of(unit_name)
            figures.computers_encrypted_dns += 1
            if len(listed) >= MAX_LISTED_HOSTS:
                continue
            host = listed[host_id] = EncryptedDnsHost(host_id, ip, mac, sensor, [], [], 0)
            figures.hosts_encrypted_dns.append(host)
        if kind not in host.kinds:
            host.kinds.append(kind)
        if server not in host.servers:
            host.servers.append(server)
        host.flows += flows
    return Report(period, unit, group, roll_up(list(units.values())), silent, daily)


def roll_up(units: list[UnitFigures]) -> list[UnitFigures]:
    """The units in the forms' order, each sub-unit right after its parent (depth first),
    and every unit with sub-units given `with_subunits`. A parent outside the list (not
    in the directory, or outside the report's scope) leaves its sub-unit a unit of its
    own; a loop of parents is cut where it closes."""
    by_name = {unit.unit: unit for unit in units}
    children: dict[str, list[UnitFigures]] = {}
    for unit in units:
        if unit.parent in by_name:
            children.setdefault(unit.parent, []).append(unit)
    ordered: list[UnitFigures] = []
    placed: set[str] = set()

    def visit(unit: UnitFigures) -> Subtotal:
        ordered.append(unit)
        placed.add(unit.unit)
        total = Subtotal(*(getattr(unit, name) for name in SUBTOTALS))
        below = [child for child in children.get(unit.unit, []) if child.unit not in placed]
        for child in below:
            child_total = visit(child)
            for name in SUBTOTALS:
                setattr(total, name, getattr(total, name) + getattr(child_total, name))
        if below:
            unit.with_subunits = total
        return total

    for unit in units:
        if unit.parent not in by_name:
            visit(unit)
    for unit in units:                  # what is left sits on a loop of parents
        if unit.unit not in placed:
            unit.parent = None
            visit(unit)
    return ordered


def _day(day: date) -> str:
    return day.strftime("%d/%m/%Y")


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "0%"


def assessment(report: Report, lang: str = "vi") -> str:
    """A draft of "Đánh giá kết quả thực hiện chiến dịch" from the numbers, for staff
    to edit: deployment, coverage, found, handled, still infected, silent sensors."""
    covered, found = report.total("computers_covered"), report.total("computers_found")
    handled = report.total("computers_handled")
    pending = found - handled
    first, last = _day(report.period.first), _day(report.period.last)
    silent = len(report.silent_sensors)
    if lang == "en":
        text = (f"From {first} to {last}, {report.deployed} of {report.informed} units that "
                f"received the campaign information ({_percent(report.deployed, report.informed)})"
                f" had a sensor reporting. The sensors monitored {covered} computers and found "
                f"{found} connecting to the campaign's malicious addresses; {handled} of them "
                f"have been handled")
        text += f", {pending} are still being handled." if pending else "."
        if silent:
            text += f" {silent} sensor(s) sent nothing in the period and should be checked."
        return text
    text = (f"Từ ngày {first} đến ngày {last}, {report.deployed}/{report.informed} cơ quan, tổ "
            f"chức nhận được thông tin về chiến dịch đã triển khai giám sát "
            f"({_percent(report.deployed, report.informed)}). Hệ thống giám sát {covered} máy "
            f"tính, phát hiện {found} máy tính có kết nối đến địa chỉ độc hại của chiến dịch; "
            f"đã xử lý {handled} máy tính")
    text += f", còn {pending} máy tính đang được xử lý." if pending else "."
    if silent:
        text += (f" Có {silent} thiết bị giám sát không gửi dữ liệu trong kỳ, cần kiểm tra "
                 f"lại.")
    return text
