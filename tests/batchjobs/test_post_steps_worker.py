"""Post-steps through a real Celery worker (tests/conftest.py, job_worker: every queue, the reaper on
beat every second, a 4 s lease): a scheduled job's success creates its steps in the worker, the io
queue runs them, the reaper takes over a step whose worker died after its append, and Retry
post-steps sends them again."""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa
import pytest
from django.db import transaction
from django.utils import timezone

from batchjobs.choices import JobStatus, PostStepKind, PostStepStatus
from batchjobs.models import BatchJob, PostStep, Schedule
from batchjobs.poststeps import steps
from tables import selectors as table_selectors
from tables.models import TableRecord
from tests.batchjobs.jobkit import make_input, model_with_config, output_rows, trigger
from tests.conftest import wait_for, worker_settings
from tests.factories import GroupFactory, MLModelFactory, UserFactory

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture(autouse=True)
def same_settings_as_the_worker(settings, job_worker):
    with worker_settings(settings, job_worker):
        yield


@pytest.fixture
def owner():
    team = GroupFactory(name="sched-team")
    user = UserFactory(username="sam", teams=[team])
    model = MLModelFactory(model_id="ds-scheduled-fraud", team=team)
    model_with_config(model, user)
    return model, user


def schedule_of(model, user, input_table: str, **settings) -> Schedule:
    return Schedule.objects.create(
        model=model,
        team=model.team,
        name="every-minute",
        input_table=input_table,
        output_table_template="prod.sched.scores_{run}",
        cron="* * * * *",
        created_by=user,
        **settings,
    )


def run(model, user, input_table: str, output: str, schedule: Schedule | None) -> BatchJob:
    """Trigger a job as a schedule's run does (linked in the same transaction), let the worker run it."""
    with transaction.atomic():
        job = trigger(model, user, input_table, output)
        if schedule is not None:
            BatchJob.objects.filter(pk=job.pk).update(schedule=schedule)
    wait_for(
        lambda: BatchJob.objects.filter(pk=job.pk, status__in=JobStatus.TERMINAL).exists(),
        timeout=180,
        message="the job to end",
    )
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.message
    return job


def steps_ended(job: BatchJob, count: int) -> list[PostStep]:
    def ended():
        found = list(PostStep.objects.filter(job=job).order_by("position"))
        done = len(found) == count and all(s.status == PostStepStatus.SUCCEEDED for s in found)
        return (done or any(s.status == PostStepStatus.FAILED for s in found)) and found

    return wait_for(ended, timeout=120, message="the post-steps to end")


def test_each_scheduled_run_appends_its_rows_once_and_publishes_its_events(owner):
    model, user = owner
    source = make_input("prod.sched.input1", 500)
    schedule = schedule_of(
        model, user, source, history_table="prod.sched.history", events_table="prod.sched.events", event_key_column="id"
    )
    first = run(model, user, source, "prod.sched.scores_1", schedule)
    done = steps_ended(first, 2)
    assert [(s.kind, s.status, s.rows) for s in done] == [("history", "succeeded", 500), ("events", "succeeded", 500)]
    second = run(model, user, source, "prod.sched.scores_2", schedule)
    steps_ended(second, 2)
    history = output_rows("prod.sched.history")
    assert len(history) == 1_000  # two runs: twice the input's rows
    for job in (first, second):
        mine = [r for r in history if r["job_id"] == str(job.pk)]
        assert sorted(r["id"] for r in mine) == list(range(500))
    events = output_rows("prod.sched.events")
    assert len(events) == 1_000 and {e["src"] for e in events} == {70}
    assert {e["job_id"] for e in events} == {str(first.pk), str(second.pk)}
    first.refresh_from_db()
    assert first.status == JobStatus.SUCCEEDED  # the steps never touch the job


def test_a_step_whose_worker_died_after_its_append_is_taken_over_without_a_second_append(owner):
    model, user = owner
    source = make_input("prod.sched.input2", 400)
    schedule = schedule_of(model, user, source, history_table="prod.sched.history2")
    job = run(model, user, source, "prod.sched.scores_9", None)  # its steps are made here, as a dying worker left them
    BatchJob.objects.filter(pk=job.pk).update(schedule=schedule)
    job.refresh_from_db()
    step = PostStep.objects.create(
        job=job,
        position=1,
        kind=PostStepKind.HISTORY,
        target="prod.sched.history2",
        status=PostStepStatus.RUNNING,
        attempts=1,
        started_at=timezone.now(),
        lease_expires_at=timezone.now() + timedelta(seconds=2),
    )
    steps.append_history(step, job, lambda: None)  # appended; then the worker died before recording it
    assert len(output_rows("prod.sched.history2")) == 400

    (taken_over,) = steps_ended(job, 1)  # the reaper saw the lease expire and sent the step again
    assert (taken_over.status, taken_over.attempts, taken_over.rows) == (PostStepStatus.SUCCEEDED, 2, 400)
    assert taken_over.detail == "The 400 rows were already in prod.sched.history2."
    history = output_rows("prod.sched.history2")
    assert len(history) == 400 and sorted(r["id"] for r in history) == list(range(400))


def test_a_failed_step_is_retried_through_the_api_after_the_fix(owner):
    from rest_framework.test import APIClient

    model, user = owner
    source = make_input("prod.sched.input3", 300)
    catalog, name = table_selectors.resolve("prod.sched.history3")
    catalog.create(name, pa.schema([("id", pa.int64()), ("probability", pa.float64())]), [])
    TableRecord.objects.create(name=str(name), created_by=user, team=model.team)  # the team's upload
    schedule = schedule_of(model, user, source, history_table="prod.sched.history3", keep_last=1)
    job = run(model, user, source, "prod.sched.scores_5", schedule)
    failed, later = steps_ended(job, 2)
    assert failed.status == PostStepStatus.FAILED and "missing probability" in failed.error
    assert later.status == PostStepStatus.PENDING
    assert output_rows("prod.sched.scores_5") is not None  # the output stays

    catalog.drop(name)
    api = APIClient()
    api.force_authenticate(user)
    response = api.post(f"/api/v1/batch-jobs/{job.pk}/retry-post-steps/")
    assert response.status_code == 200, response.content
    history, kept = steps_ended(job, 2)
    assert (history.status, history.rows, kept.status) == ("succeeded", 300, "succeeded")
    assert len(output_rows("prod.sched.history3")) == 300
    answer = api.get(f"/api/v1/batch-jobs/{job.pk}/").json()
    assert [s["status"] for s in answer["post_steps"]] == ["succeeded", "succeeded"]
    assert answer["status"] == "succeeded"
