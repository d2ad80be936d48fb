"""What beat runs every SCHEDULE_TICK_S seconds: each enabled schedule's latest due time is claimed
(a conditional UPDATE on last_due_at: of two ticks, or two beats, exactly one wins) and run.

Due times that passed while the platform was down are recorded as missed, not replayed; a due time
whose previous run is still active is skipped. The one_run_per_due_time constraint is the second
guard: a due time already recorded is never run twice.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from batchjobs import services as job_services
from batchjobs.choices import RunStatus
from batchjobs.models import Schedule, ScheduleRun
from batchjobs.schedules import cron, selectors

logger = logging.getLogger(__name__)

MISSED_RECORDED = 100  # per tick and schedule; beyond, one message counts the rest
MISSED_COUNTED = 10_000  # beyond this many, "more than" (counting 10,000 due times takes ~0.4 s)


def schedules_tick(now: datetime | None = None) -> list[ScheduleRun]:
    """Run every enabled schedule whose due time came; the runs this tick started or recorded."""
    now = now or timezone.now()
    runs = []
    for schedule in Schedule.objects.filter(enabled=True).select_related("model", "created_by"):
        try:
            runs.extend(schedule_tick(schedule, now))
        except Exception:  # one broken schedule must not stop the others
            logger.exception("The tick of %s failed", schedule)
    return runs


def schedule_tick(schedule: Schedule, now: datetime) -> list[ScheduleRun]:
    since = schedule.last_due_at or schedule.created_at
    due = cron.latest_due(schedule.cron, schedule.timezone, now, since)
    if due is None:
        return []
    claimed = Schedule.objects.filter(pk=schedule.pk, enabled=True, last_due_at=schedule.last_due_at).update(
        last_due_at=due
    )
    if not claimed:  # another tick (or beat) took this due time, or the schedule was paused
        return []
    runs = _record_missed(schedule, since, due)
    runs.append(start_run(schedule, due=due))
    return runs


def _record_missed(schedule: Schedule, since: datetime, due: datetime) -> list[ScheduleRun]:
    """The due times strictly between `since` and `due`: recorded (the first MISSED_RECORDED), not run."""
    missed, more = [], 0
    for when in cron.due_after(schedule.cron, schedule.timezone, since):
        if cron.as_utc(when) >= cron.as_utc(due):
            break
        if len(missed) < MISSED_RECORDED:
            missed.append(when)
        else:
            more += 1
            if more >= MISSED_COUNTED:
                break
    if not missed:
        return []
    message = "Not run: the platform was not running at this time (missed times are not replayed)."
    runs = [ScheduleRun(schedule=schedule, due_at=when, status=RunStatus.MISSED, message=message) for when in missed]
    if more:
        count = f"more than {more:,}" if more >= MISSED_COUNTED else f"{more:,}"
        until = f"{due:%Y-%m-%d %H:%M %Z}"
        runs[-1].message = f"{message} And {count} more due times until {until} were missed, not listed."
    ScheduleRun.objects.bulk_create(runs, ignore_conflicts=True)
    return runs


def start_run(
    schedule: Schedule, *, due: datetime, manual: bool = False, requested_by: AbstractBaseUser | None = None
) -> ScheduleRun:
    """Start the run due at `due`: a job (STARTED), or a run recorded as SKIPPED_BUSY or REFUSED.
    Run now while a run is active raises ValidationError (nothing recorded).

    One run at a time: the busy check, the run's number and the job are done holding the schedule's
    row (SELECT … FOR UPDATE; SQLite's immediate transactions serialize writers), so two Run nows,
    or Run now and a tick, cannot both pass the check."""
    try:
        with transaction.atomic():
            Schedule.objects.select_for_update().filter(pk=schedule.pk).values_list("pk", flat=True).first()
            return _start_locked(schedule, due=due, manual=manual, requested_by=requested_by)
    except IntegrityError:  # the due time is recorded already: another tick ran it
        return ScheduleRun.objects.get(schedule=schedule, due_at=due, manual=False)
    finally:
        schedule.refresh_from_db(fields=["runs_started", "last_due_at", "team"])


def _start_locked(
    schedule: Schedule, *, due: datetime, manual: bool, requested_by: AbstractBaseUser | None
) -> ScheduleRun:
    busy = selectors.active_job(schedule)
    if busy and manual:
        raise ValidationError({"schedule": [busy_refusal(busy)]})
    if busy:
        message = f"Skipped: the previous run's job {str(busy.pk)[:8]} was still {busy.get_status_display().lower()}."
        return ScheduleRun.objects.create(schedule=schedule, due_at=due, status=RunStatus.SKIPPED_BUSY, message=message)
    # The model's team now (an admin may have moved the model): its post-steps claim tables for it.
    Schedule.objects.filter(pk=schedule.pk).exclude(team_id=schedule.model.team_id).update(
        team_id=schedule.model.team_id
    )
    local_due = due.astimezone(cron._zone(schedule.timezone))
    run = ScheduleRun.objects.create(schedule=schedule, due_at=due, manual=manual, status=RunStatus.STARTED)
    try:
        with transaction.atomic():
            Schedule.objects.filter(pk=schedule.pk).update(runs_started=F("runs_started") + 1)
            number = Schedule.objects.values_list("runs_started", flat=True).get(pk=schedule.pk)
            job = job_services.job_trigger(
                model=schedule.model,
                input_table=schedule.input_table,
                output_table=cron.render(schedule.output_table_template, local_due, number),
                requested_by=requested_by or schedule.created_by,
                schedule=schedule,
            )
    except ValidationError as exc:  # the job's pre-flight checks refused it
        run.status = RunStatus.REFUSED
        run.message = " ".join(m for messages in exc.message_dict.values() for m in messages)
        run.save(update_fields=["status", "message"])
        return run
    run.job = job
    run.message = f"Job {str(job.pk)[:8]} writes {job.output_table}."
    run.save(update_fields=["job", "message"])
    return run


def busy_refusal(job) -> str:
    """Why Run now is refused while the schedule's job is active."""
    return (
        f"The schedule's run {str(job.pk)[:8]} is still {job.get_status_display().lower()}: "
        "one run at a time; wait for it or cancel it."
    )
