from datetime import datetime

from django import template
from django.utils import timezone

register = template.Library()


@register.simple_tag
def duration(start: datetime | None, end: datetime | None = None) -> str:
    """How long from start to end (or to now): "0.8 s", "42 s", "3 min 5 s", "2 h 4 min"."""
    if start is None:
        return "—"
    seconds = ((end or timezone.now()) - start).total_seconds()
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"
