"""Cron expressions, time zones and output-name templates: plain functions, no database.

A due time is an aware datetime in the schedule's time zone (croniter computes in that zone, so
"0 2 * * *" in Europe/Paris is 02:00 Paris time whatever the season).
"""

from __future__ import annotations

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
    return ""


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
    """The due times strictly after `after`, in order, as aware datetimes in `tz`."""
    it = croniter(" ".join(expr.split()), after.astimezone(_zone(tz)))
    while True:
        yield it.get_next(datetime)


def next_runs(expr: str, tz: str, after: datetime, count: int = 5) -> list[datetime]:
    runs = due_after(expr, tz, after)
    return [next(runs) for _ in range(count)]


def latest_due(expr: str, tz: str, now: datetime) -> datetime:
    """The latest due time at or before `now` (in `tz`)."""
    start = now.astimezone(_zone(tz)) + timedelta(seconds=1)
    due = croniter(" ".join(expr.split()), start).get_prev(datetime)
    while due > now:  # croniter works in whole seconds
        due = croniter(" ".join(expr.split()), due).get_prev(datetime)
    return due


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
