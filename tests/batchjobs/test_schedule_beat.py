"""Schedules with a real Celery worker and its beat (`worker -B`, SCHEDULE_TICK_S=1): a schedule due
every minute whose current minute is pending runs one job per due time, and the job succeeds; a
paused schedule's pending minute is never run. No one-minute sleeps: the test sets last_due_at."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from batchjobs.choices import JobStatus, RunStatus
from batchjobs.models import BatchJob, Schedule, ScheduleRun
from batchjobs.schedules import services
from builds.choices import BuildStatus
from builds.models import Build, InstanceType
from builds.services import batch_config_set, build_register
from builds.verification import build_verify
from tests.artifacts import model_zip, upload
from tests.batchjobs.jobkit import make_input
from tests.conftest import JOB_WORKER_SETTINGS, running_worker, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture(scope="module")
def beat_worker(django_db_setup, django_db_blocker, tmp_path_factory):
    with django_db_blocker.unblock():
        with running_worker(tmp_path_factory.mktemp("schedule-beat"), SCHEDULE_TICK_S="1") as worker:
            yield worker


@pytest.fixture
def scheduled(beat_worker, settings, ml_model, user):
    """A schedule due every minute over a 3,000-row input, its tables where the worker has them."""
    settings.WAREHOUSE_CATALOGS = beat_worker.catalogs
    settings.WAREHOUSE_DEFAULT_CATALOG = "prod"
    for name, value in JOB_WORKER_SETTINGS.items():
        setattr(settings, name, value)
    build = build_register(
        model=ml_model, upload=upload(model_zip()), filename="m.zip", entrypoint="scorer:Scorer", created_by=user
    )
    build_verify(build_id=build.id)  # or the worker does: whichever claims it first
    build = wait_for(
        lambda: Build.objects.filter(pk=build.pk, status__in=BuildStatus.TERMINAL).first(), message="verification"
    )
    assert build.status == BuildStatus.SUCCEEDED, build.log
    batch_config_set(
        build=build,
        deployment_name="scheduled",
        instance_type=InstanceType.objects.get(name="ml.m5.large"),
        processes="ALL",
        env={},
        allow_network=False,
        set_by=user,
    )
    input_table = make_input(f"prod.t.in_{uuid.uuid4().hex[:8]}", 3_000)
    return services.schedule_create(
        model=ml_model,
        created_by=user,
        name="every-minute",
        input_table=input_table,
        output_table_template="prod.sched.out_{datetime}_{run}",
        cron="* * * * *",
    )


def make_pending(schedule: Schedule) -> None:
    """The current minute's due time is pending: the last claimed one was the minute before it."""
    minute = timezone.now().replace(second=0, microsecond=0)
    Schedule.objects.filter(pk=schedule.pk).update(last_due_at=minute - timedelta(minutes=1))


def test_beat_runs_one_job_per_due_time_and_it_succeeds(beat_worker, scheduled):
    make_pending(scheduled)
    first = wait_for(
        lambda: ScheduleRun.objects.filter(schedule=scheduled, job__isnull=False).order_by("due_at").first(),
        timeout=30,
        message="beat to start the pending minute's run",
    )
    job = wait_for(
        lambda: BatchJob.objects.filter(pk=first.job_id, status__in=JobStatus.TERMINAL).first(),
        timeout=120,
        message=f"job {first.job_id} to end\n{beat_worker.log()[-3000:]}",
    )
    assert (job.status, job.output_rows, job.schedule_id) == (JobStatus.SUCCEEDED, 3_000, scheduled.pk)
    assert job.output_table == f"prod.sched.out_{first.due_at:%Y_%m_%d_%H%M}_1"
    ticks = beat_worker.log().count("batchjobs.schedules_tick")
    wait_for(lambda: beat_worker.log().count("batchjobs.schedules_tick") >= ticks + 2, message="two more ticks")
    runs = list(ScheduleRun.objects.filter(schedule=scheduled).order_by("due_at"))
    started = [r for r in runs if r.status == RunStatus.STARTED]
    # A minute boundary may pass while the job runs: then that minute is its own run (or skipped).
    assert len({r.due_at for r in runs}) == len(runs) and runs[0].pk == first.pk
    assert BatchJob.objects.filter(schedule=scheduled).count() == len(started)
    assert [r.status for r in runs if r.status not in (RunStatus.STARTED, RunStatus.SKIPPED_BUSY)] == []


def test_a_paused_schedule_is_not_run_by_beat(beat_worker, scheduled):
    services.schedule_pause(schedule=scheduled)
    make_pending(scheduled)
    ticks = beat_worker.log().count("batchjobs.schedules_tick")
    wait_for(lambda: beat_worker.log().count("batchjobs.schedules_tick") >= ticks + 3, message="three ticks")
    assert not ScheduleRun.objects.filter(schedule=scheduled).exists()
    assert not BatchJob.objects.exists()
