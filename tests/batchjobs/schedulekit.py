"""Building blocks for schedule tests: a schedule of the ready model over prod.t.input."""

from __future__ import annotations

from datetime import UTC, datetime

from batchjobs.models import Schedule
from batchjobs.schedules import services

# A schedule of the demo model as the API takes it.
API_BODY = {
    "model_id": "ds-premium-fraud-detection",
    "name": "nightly",
    "input_table": "prod.t.input",
    "output_table_template": "prod.out.scores_{date}",
    "cron": "0 2 * * *",
}


def make_schedule(model, user, **fields) -> Schedule:
    values = {
        "name": "nightly",
        "input_table": "prod.t.input",
        "output_table_template": "prod.out.scores_{datetime}",
        "cron": "0 2 * * *",
        "timezone": "UTC",
        **fields,
    }
    return services.schedule_create(model=model, created_by=user, **values)


def at(text: str) -> datetime:
    """An aware UTC time from 2026-12-01 02:00."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


def since(schedule: Schedule, text: str) -> Schedule:
    """Pretend the schedule's last claimed due time (or its creation) was at `text`."""
    Schedule.objects.filter(pk=schedule.pk).update(last_due_at=at(text))
    schedule.refresh_from_db()
    return schedule
