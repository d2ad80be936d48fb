from datetime import datetime

from django import template
from django.utils import timezone

register = template.Library()


@register.filter
def seconds(value: float | None) -> str:
    """A number of seconds for people: "0.8 s", "42 s", "3 min 5 s", "2 h 4 min"."""
    if value is None:
        return "—"
    if value < 10:
        return f"{value:.1f} s"
    if value < 60:
        return f"{value:.0f} s"
    minutes, secs = divmod(int(value), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


@register.simple_tag
def duration(start: datetime | None, end: datetime | None = None) -> str:
    """How long from start to end (or to now)."""
    if start is None:
        return "—"
    return seconds(((end or timezone.now()) - start).total_seconds())


@register.filter
def first_line(text: str) -> str:
    """The first non-blank line of a message (the rest is behind "Show More")."""
    return next((line.strip() for line in (text or "").splitlines() if line.strip()), "")


@register.filter
def host(worker: str) -> str:
    """The host of a "host:pid" worker name."""
    return worker.rsplit(":", 1)[0] if worker else ""


@register.filter
def about(value: float | None) -> str:
    """A projected time, as round as an estimate is: "40 s", "4 min", "2 h 10 min"."""
    if value is None:
        return "—"
    if value < 60:
        return f"{max(1, round(value))} s"
    minutes = round(value / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
