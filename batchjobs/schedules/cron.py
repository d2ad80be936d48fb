"""Cron expressions, time zones and output-name templates: plain functions, no database.

A due time is an aware datetime in the schedule's time zone (croniter computes in that zone, so
"0 2 * * *" in Europe/Paris is 02:00 Paris time whatever the season).

Clock changes (CLOCK_CHANGES says it on the schedule page): a wall-clock time that occurs twice
(autumn) runs once, at its first occurrence, unless the hour field is * (then the rule runs by the
clock through both hours: every 15 minutes stays every 15 minutes); a time that does not exist
(spring) runs when the clock jumps forward (01:30 in London runs at 02:00 BST), as croniter gives it.
"""

from __future__ import annotations

import calendar
import string
import zoneinfo
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from cron_descriptor import get_description
from croniter import croniter

PLACEHOLDERS = {
    "date": "the due date, YYYY_MM_DD",
    "datetime": "the due date and time, YYYY_MM_DD_HHMM",
    "run": "the run's number: 1, 2, …",
}
CLOCK_CHANGES = (
    "When the clocks go back, a time that occurs twice runs once, at its first occurrence "
    "(a rule whose hour field is * runs through both hours); when they go forward, a time that does "
    "not exist runs at the moment the clock jumps."
)


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def cron_error(expr: str) -> str:
    """Why `expr` is not a five-field cron expression croniter accepts ("" when it is)."""
    fields = str(expr or "").split()
    if len(fields) != 5:
        return (
            f"A cron expression has five fields (minute hour day-of-month month day-of-week), "
            f"like 0 2 * * *; this one has {len(fields)}."
        )
    try:
        croniter(" ".join(fields))
    except (ValueError, KeyError) as exc:  # CroniterBadCronError and friends are ValueErrors
        return f"Not a valid cron expression: {exc}."
    try:
        croniter(" ".join(fields), datetime.now(UTC)).get_next(datetime)
    except ValueError:  # CroniterBadDateError: no date matches
        return f"{' '.join(fields)} never comes: {_no_such_day(fields)}."
    return ""


def _no_such_day(fields: list[str]) -> str:
    day, month = fields[2], fields[3]
    if day.isdigit() and month.isdigit() and 1 <= int(month) <= 12:
        return f"{calendar.month_name[int(month)]} has no {_ordinal(int(day))}"
    return f"no month has day {day} in months {month}"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def timezone_error(name: str) -> str:
    if name not in _zones():
        return f"{str(name)[:64]!r} is not a time zone name; use one like UTC, Europe/Paris or America/New_York."
    return ""


def describe(expr: str) -> str:
    """The expression in words ("At 02:00"), or "" when it is not valid."""
    if cron_error(expr):
        return ""
    try:
        return get_description(" ".join(expr.split()))
    except Exception:  # noqa: BLE001 - words are a courtesy; a valid cron they cannot say gets none
        return ""


def _zone(tz: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(tz)


def due_after(expr: str, tz: str, after: datetime) -> Iterator[datetime]:
    """The due times strictly after `after`, in order, as aware datetimes in `tz`: croniter's, less
    the second occurrence of a repeated wall-clock time when the hour field is not * (see above)."""
    fields = expr.split()
    zone = _zone(tz)
    it = croniter(" ".join(fields), after.astimezone(zone))
    by_the_clock = fields[1] == "*"
    last = after.astimezone(UTC)  # compared in UTC: two times in one zone compare by wall clock
    while True:
        when = it.get_next(datetime).astimezone(UTC)
        if when <= last:  # two local times that are one instant (spring)
            continue
        local = when.astimezone(zone)  # fold set from the instant
        if not by_the_clock and _second_occurrence(local):
            continue
        last = when
        yield local


def _second_occurrence(when: datetime) -> bool:
    """Whether this wall-clock time happened once already, an hour earlier (autumn)."""
    return when.fold == 1 and when.replace(fold=0).utcoffset() != when.utcoffset()


def next_runs(expr: str, tz: str, after: datetime, count: int = 5) -> list[datetime]:
    runs = due_after(expr, tz, after)
    return [next(runs) for _ in range(count)]


def latest_due(expr: str, tz: str, now: datetime, since: datetime) -> datetime | None:
    """The latest due time after `since` and at or before `now` (in `tz`), or None: the last of
    `due_after(since)` up to now, so it is one of the times the schedule runs at. After a long
    outage the walk starts a little before croniter's previous time (which can be an hour off
    around a clock change), further back only when that finds none."""
    rough = croniter(" ".join(expr.split()), now.astimezone(_zone(tz))).get_prev(datetime)
    margin = timedelta(hours=3)
    while True:
        start = max(as_utc(since), as_utc(rough) - margin)
        latest = None
        for when in due_after(expr, tz, start):
            if as_utc(when) > as_utc(now):
                break
            latest = when
        if latest is not None or start == since:
            return latest
        margin *= 8


def template_error(template: str) -> str:
    """Why the output name template is not one ("" when it is): only {date}, {datetime}, {run}."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        return f"The template has a stray brace ({exc}); use {{date}}, {{datetime}} or {{run}}."
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            return f"The template has {shown[:40]}; the only placeholders are {{date}}, {{datetime}} and {{run}}."
    return ""


def render(template: str, due: datetime, run: int) -> str:
    """The output table's name for a run due at `due` (already in the schedule's time zone)."""
    return template.format(date=due.strftime("%Y_%m_%d"), datetime=due.strftime("%Y_%m_%d_%H%M"), run=run)


def as_utc(when: datetime) -> datetime:
    return when.astimezone(UTC)
