"""The campaign's charts: the daily series and their drawing as SVG.

The series, for a period and a scope, per day: the hits; the computers found (a
computer becomes infected) and handled (marked, or quiet for the quiet period), with
those still infected at the day's end; and the units deployed since the campaign began.
Found and handled follow each computer's status timeline (`evidence.status_timeline`),
so the chart tells the same story as the computers' pages. Only hits inside the period
count: a computer infected before it and not hit during it is not drawn.

The drawing is plain SVG text with no scripts and nothing fetched, so the page's
Content-Security-Policy stays `default-src 'none'`; the DOCX report carries the same
SVG rasterised to PNG (`png`, through CairoSVG).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from html import escape

from sensor.collector.evidence import Action, status_timeline
from sensor.collector.store import DailyRows

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 40, 44
COLOURS = {"hits": "#8b1a1a", "found": "#d9822b", "handled": "#2b7a3d",
           "infected": "#1b1b1b", "deployed": "#2b5d8b"}


@dataclass
class DailySeries:
    days: list[date]
    hits: list[int]
    found: list[int]            # computers that became infected that day
    handled: list[int]          # computers that became handled that day
    still_infected: list[int]   # at the day's end, of those found in the period
    units_deployed: list[int]   # units with a sensor that has reported, up to that day


def daily_series(rows: DailyRows, first: date, last: date, tz: tzinfo,
                 quiet_seconds: float) -> DailySeries:
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    index = {day.isoformat(): n for n, day in enumerate(days)}
    hits = [0] * len(days)
    for day, count in rows.hits:
        hits[index[day]] = count
    found, handled = [0] * len(days), [0] * len(days)
    marks: dict[int, list[Action]] = {}
    for host_id, ts, by in rows.marks:
        marks.setdefault(host_id, []).append(Action(ts, "handled", by, ""))
    by_host: dict[int, list[tuple]] = {}
    until: dict[int, float | None] = {}
    for host_id, day, first_ts, last_ts, data_until in rows.host_days:
        by_host.setdefault(host_id, []).append((day, "", "", 0, first_ts, last_ts))
        until[host_id] = data_until
    for host_id, hit_days in by_host.items():
        for change in status_timeline(hit_days, marks.get(host_id, []), until[host_id],
                                      quiet_seconds):
            n = index.get(datetime.fromtimestamp(change.ts, tz).date().isoformat())
            if n is not None:
                (found if change.status == "infected" else handled)[n] += 1
    still, running = [], 0
    for n in range(len(days)):
        running += found[n] - handled[n]
        still.append(running)
    started = sorted(date.fromisoformat(day) for _unit, day in rows.deployed)
    deployed = [sum(1 for s in started if s <= day) for day in days]
    return DailySeries(days, hits, found, handled, still, deployed)


@dataclass
class OrgsDaily:
    """Across the organisations below (the nation's view), per day."""
    days: list[date]
    hits: list[int]
    computers: list[int]        # computers hit that day


def orgs_daily(rows: list[tuple], first: date, last: date) -> OrgsDaily:
    """From (day, hits, computers hit) rows, every day of the period."""
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    by_day = {day: (hits, computers) for day, hits, computers in rows}
    return OrgsDaily(days, [by_day.get(d.isoformat(), (0, 0))[0] for d in days],
                     [by_day.get(d.isoformat(), (0, 0))[1] for d in days])


def _nice_ceiling(value: float) -> tuple[float, float]:
    """A round top for the y axis at or above `value`, and its tick step (4–5 ticks)."""
    if value <= 0:
        return 1.0, 1.0
    raw = value / 4
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    step = max(step, 1.0)
    return step * math.ceil(value / step), step


def svg_chart(title: str, days: list[date], bars: list[tuple[str, list[int], str]],
              lines: list[tuple[str, list[int], str]] = (), chart_id: str = "") -> str:
    """A day-by-day chart as SVG text: grouped bars and lines over the same days, a y
    axis with round ticks, day labels (dd/mm, thinned to fit), a legend."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    series = [values for _, values, _ in (*bars, *lines)]
    top, step = _nice_ceiling(max((max(v, default=0) for v in series), default=0))
    slot = plot_w / max(len(days), 1)

    def y(value: float) -> float:
        return TOP + plot_h - plot_h * value / top
    ident = f' id="{escape(chart_id)}"' if chart_id else ""
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
           f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(title)}"{ident} '
           f'font-family="DejaVu Sans, sans-serif" font-size="11">',
           f"<title>{escape(title)}</title>",
           f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#fff"/>',
           f'<text x="{LEFT}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>']
    tick = 0.0
    while tick <= top + 1e-9:
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" '
                   f'y2="{y(tick):.1f}" stroke="#ddd"/>'
                   f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">'
                   f'{tick:,.0f}</text>')
        tick += step
    every = max(1, math.ceil(len(days) / (plot_w / 42)))
    for n, day in enumerate(days):
        if n % every == 0:
            out.append(f'<text x="{LEFT + slot * (n + 0.5):.1f}" y="{HEIGHT - BOTTOM + 16}" '
                       f'text-anchor="middle">{day.strftime("%d/%m")}</text>')
    width = slot * 0.8 / max(len(bars), 1)
    for k, (name, values, colour) in enumerate(bars):
        for n, value in enumerate(values):
            if value:
                x = LEFT + slot * (n + 0.1) + width * k
                out.append(f'<rect x="{x:.1f}" y="{y(value):.1f}" width="{width:.1f}" '
                           f'height="{TOP + plot_h - y(value):.1f}" fill="{colour}">'
                           f'<title>{escape(name)} {day_label(days[n])}: {value:,}</title>'
                           f'</rect>')
    for name, values, colour in lines:
        points = " ".join(f"{LEFT + slot * (n + 0.5):.1f},{y(v):.1f}"
                          for n, v in enumerate(values))
        out.append(f'<polyline points="{points}" fill="none" stroke="{colour}" '
                   f'stroke-width="2"><title>{escape(name)}</title></polyline>')
    out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + plot_h}" '
               f'y2="{TOP + plot_h}" stroke="#555"/>')
    x = LEFT
    for name, _, colour in (*bars, *lines):
        out.append(f'<rect x="{x}" y="{HEIGHT - 16}" width="10" height="10" fill="{colour}"/>'
                   f'<text x="{x + 14}" y="{HEIGHT - 7}">{escape(name)}</text>')
        x += 24 + 7 * len(name)
    out.append("</svg>")
    return "".join(out)


def day_label(day: date) -> str:
    return day.strftime("%d/%m/%Y")


def orgs_charts(series: OrgsDaily, text: dict[str, str]) -> list[str]:
    """The nation's view: hits and computers hit per day across the organisations below."""
    return [svg_chart(text["chart_orgs"], series.days,
                      [(text["hits"], series.hits, COLOURS["hits"])],
                      [(text["chart_computers_hit"], series.computers, COLOURS["infected"])],
                      chart_id="chart-orgs")]


def campaign_charts(series: DailySeries, text: dict[str, str]) -> list[str]:
    """The three charts of the report, in the language of `text` (forms.LABELS)."""
    return [
        svg_chart(text["chart_hits"], series.days,
                  [(text["hits"], series.hits, COLOURS["hits"])], chart_id="chart-hits"),
        svg_chart(text["chart_computers"], series.days,
                  [(text["chart_found"], series.found, COLOURS["found"]),
                   (text["chart_handled"], series.handled, COLOURS["handled"])],
                  [(text["chart_still"], series.still_infected, COLOURS["infected"])],
                  chart_id="chart-computers"),
        svg_chart(text["chart_units"], series.days, [],
                  [(text["deployed_short"], series.units_deployed, COLOURS["deployed"])],
                  chart_id="chart-units")]


def png(svg: str) -> bytes:
    """The chart rasterised for documents that take no SVG (DOCX), at twice its size."""
    import cairosvg  # only the DOCX report needs it (and Debian's libcairo2)
    return cairosvg.svg2png(bytestring=svg.encode(), scale=2)
