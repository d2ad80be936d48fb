"""Creating a succeeded scheduled job's post-steps, running them in order, retrying them, and
putting right what a dead worker or a lost message left (called by the reaper).

The database is the source of truth: steps are created once (a constraint on job and position),
each is claimed with a conditional UPDATE before it runs, and a running step holds a lease that
its worker renews as rows stream by. The appends themselves happen at most once per step whatever
is retried (the catalog's append_once), so running a step again is always safe.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from datetime import datetime, timedelta

from django import db
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from batchjobs import signals
from batchjobs.choices import EventId, JobStatus, PostStepKind, PostStepStatus
from batchjobs.models import BatchJob, PostStep, Schedule
from batchjobs.pipeline.finish import record_event
from batchjobs.poststeps import steps, transitions
from mlplatform.celery import app
from mlplatform.queues import IO_QUEUE
from mlplatform.warehouse import WarehouseError
from tables.selectors import sentence

logger = logging.getLogger(__name__)
TASK = "batchjobs.run_post_steps"
ROUND = 200  # steps the reaper handles in one round


def planned(schedule: Schedule) -> list[tuple[str, str]]:
    """The schedule's post-steps in order, as (kind, target)."""
    plan = []
    if schedule.history_table:
        plan.append((PostStepKind.HISTORY, schedule.history_table))
    if schedule.events_table:
        plan.append((PostStepKind.EVENTS, schedule.events_table))
    if schedule.keep_last:
        plan.append((PostStepKind.KEEP_LAST, str(schedule.keep_last)))
    return plan


def lost_after_s() -> int:
    """How long a sent run may wait for a worker before it is taken as lost and sent again."""
    return max(60, settings.REAPER_INTERVAL_S * 4)


def send_run(job_id) -> None:
    """Run the job's pending steps on the io queue, once this transaction commits."""
    transitions.steps_sent(job_id, expect_by=timezone.now() + timedelta(seconds=lost_after_s()))
    transaction.on_commit(
        lambda: app.send_task(TASK, args=[str(job_id)], queue=IO_QUEUE),
        robust=True,  # a broker hiccup is logged; the reaper sends lost runs again
    )


def steps_create(job_id) -> int:
    """A succeeded scheduled job gets its post-steps, once, and they are sent to run; how many
    were created (0 for any other job, or when they exist already)."""
    job = BatchJob.objects.select_related("schedule").filter(pk=job_id, status=JobStatus.SUCCEEDED).first()
    if job is None or job.schedule is None:
        return 0
    created = 0
    with transaction.atomic():
        for position, (kind, target) in enumerate(planned(job.schedule), start=1):
            try:
                with transaction.atomic():
                    _, made = PostStep.objects.get_or_create(
                        job=job, position=position, defaults={"kind": kind, "target": target}
                    )
            except IntegrityError:  # a redelivered signal created it meanwhile
                made = False
            created += made
        if created:
            send_run(job.pk)
    return created


class LeaseLost(Exception):
    """The step is no longer this runner's (taken over, or reset): stop without recording."""


class _Lease:
    """Renews a running step's lease from a thread of its own while the step runs (the rows may be
    pulled on a writer's threads, where the database is out of reach); calling it raises LeaseLost
    once the step is no longer this runner's."""

    def __init__(self, step: PostStep) -> None:
        self.step_id, self.attempt = step.pk, step.attempts
        self.every = max(1.0, settings.BATCH_LEASE_S / 3)
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"post-step-{step.pk}-lease", daemon=True)

    def __enter__(self) -> _Lease:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        try:
            while not self._stop.wait(self.every):
                if not transitions.step_renew(self.step_id, self.attempt):
                    self.lost = True
                    return
        except Exception:  # a database hiccup: the lease may lapse; the step's own result still counts
            logger.exception("renewing the lease of post-step %s failed", self.step_id)
        finally:
            db.connection.close()  # this thread's own connection

    def __call__(self) -> None:
        if self.lost:
            raise LeaseLost(f"post-step {self.step_id} is no longer attempt {self.attempt}'s")


def steps_run(job_id) -> int:
    """Run the job's steps in order from the first unfinished one; stop at a failure or at a step
    another runner holds. How many steps succeeded here."""
    done = 0
    for step_id, status in PostStep.objects.filter(job_id=job_id).order_by("position").values_list("pk", "status"):
        if status == PostStepStatus.SUCCEEDED:
            continue
        if status == PostStepStatus.FAILED or not transitions.step_claim(step_id):
            return done  # a failure stops the later steps; a held step is its runner's to continue
        if not step_run(PostStep.objects.get(pk=step_id)):
            return done
        done += 1
    return done


def step_run(step: PostStep) -> bool:
    """Run one claimed step and record how it went; True when it succeeded."""
    job = BatchJob.objects.select_related("schedule", "build", "model").get(pk=step.job_id)
    started = time.monotonic()
    try:
        with _Lease(step) as lease:
            outcome = steps.WORK[step.kind](step, job, lease)
    except LeaseLost:
        logger.warning("%s was taken over while it ran; its new runner records it", step)
        return False
    except steps.StepError as exc:
        return _failed(step, str(exc), "")
    except (WarehouseError, ValidationError) as exc:
        message = sentence(exc) if isinstance(exc, WarehouseError) else " ".join(exc.messages)
        return _failed(step, message, traceback.format_exc())
    except Exception as exc:
        logger.exception("%s failed", step)
        return _failed(step, f"{type(exc).__name__}: {exc}", traceback.format_exc())
    if not transitions.step_succeed(step.pk, step.attempts, rows=outcome.rows, detail=outcome.detail):
        return False
    logger.info("%s succeeded in %.1f s: %s", step, time.monotonic() - started, outcome.detail)
    return True


def _failed(step: PostStep, error: str, trace: str) -> bool:
    if transitions.step_fail(step.pk, step.attempts, error=error, traceback=trace):
        transitions.steps_unsent(step.job_id)
        announce_failure(step.job_id, step.pk, error)
    return False


def announce_failure(job_id, step_id: int, error: str) -> None:
    """Record the failure as an event (403, for the users' event queries) and tell the platform
    (notifications) that a post-step failed; a listener's error is only logged."""
    job = BatchJob.objects.select_related("model", "batch_config").get(pk=job_id)
    event = record_event(job, EventId.POST_STEP_FAILURE, error=error)
    for receiver, result in signals.post_step_failed.send_robust(
        sender=PostStep, job_id=job_id, step_id=step_id, error=error, occurrence=str(event.uuid)
    ):
        if isinstance(result, Exception):
            logger.error("a post_step_failed receiver (%s) raised: %r", receiver, result)


def steps_retry_refusal(job: BatchJob) -> str:
    """Why the job's post-steps cannot be retried ("" when they can): the page offers Retry by this."""
    states = set(job.post_steps.values_list("status", flat=True))
    if not states:
        return "This job has no post-steps: only a scheduled run with a history table, events or keep-last has them."
    if PostStepStatus.RUNNING in states:
        return "The post-steps are running; wait for them to end."
    if PostStepStatus.FAILED not in states:
        return "No post-step failed, so there is nothing to retry."
    return ""


def steps_retry(*, job: BatchJob) -> BatchJob:
    """The failed step and the ones after it run again, in order. Safe to repeat: an append already
    made is recognised and not made twice."""
    refusal = steps_retry_refusal(job)
    if refusal:
        raise ValidationError({"post_steps": [refusal]})
    with transaction.atomic():
        if not transitions.steps_reset_for_retry(job.pk):
            raise ValidationError({"post_steps": ["The post-steps changed meanwhile; reload and try again."]})
        send_run(job.pk)
    return job


def steps_create_missed(now: datetime) -> int:
    """Succeeded scheduled jobs that ended within LATE_CREATE_WINDOW and plan post-steps but have
    none (their one job_ended signal was lost: a locked database, a process killed between the
    commit and on_commit) get them now, and they are sent; how many jobs got steps. Once only: the
    (job, position) constraint."""
    plans = ~Q(schedule__history_table="") | ~Q(schedule__events_table="") | Q(schedule__keep_last__isnull=False)
    missed = BatchJob.objects.filter(
        plans,
        status=JobStatus.SUCCEEDED,
        schedule__isnull=False,
        finished_at__gte=now - steps.LATE_CREATE_WINDOW,
        # Steps come from the schedule's settings as they are now: a job that ended before the
        # schedule last changed (a history table added since, say) gets none it never planned.
        finished_at__gt=F("schedule__updated_at"),
        post_steps__isnull=True,
    ).order_by("finished_at")
    created = 0
    for job_id in missed.values_list("pk", flat=True)[:ROUND]:
        if steps_create(job_id):
            logger.warning("job %s had no post-steps (its job_ended signal was lost): created them", job_id)
            created += 1
    return created


def reap(now: datetime) -> dict[str, int]:
    """A running step whose lease expired lost its worker: send its job's run again (the claim
    takes it over), up to MAX_BATCH_ATTEMPTS, then fail it with the reason. Pending steps whose run
    was never picked up are sent again. A succeeded scheduled job whose steps were never created
    gets them."""
    counts = {"post_steps_created": steps_create_missed(now), "post_steps_resent": 0, "post_steps_failed": 0}
    expired = PostStep.objects.filter(status=PostStepStatus.RUNNING, lease_expires_at__lt=now)
    for step in expired[:ROUND]:
        if step.attempts < settings.MAX_BATCH_ATTEMPTS:
            transaction.on_commit(lambda job_id=step.job_id: app.send_task(TASK, args=[str(job_id)], queue=IO_QUEUE))
            counts["post_steps_resent"] += 1
            continue
        error = f"The worker running it stopped responding on attempt {step.attempts} of {settings.MAX_BATCH_ATTEMPTS}."
        if transitions.step_fail(step.pk, step.attempts, error=error):
            transitions.steps_unsent(step.job_id)
            announce_failure(step.job_id, step.pk, error)
            counts["post_steps_failed"] += 1
    lost = PostStep.objects.filter(status=PostStepStatus.PENDING, lease_expires_at__lt=now)
    for job_id in set(lost.values_list("job_id", flat=True)[:ROUND]):
        blocked = PostStep.objects.filter(job_id=job_id, status__in=[PostStepStatus.RUNNING, PostStepStatus.FAILED])
        if not blocked.exists():
            with transaction.atomic():
                send_run(job_id)
            counts["post_steps_resent"] += 1
    return counts
