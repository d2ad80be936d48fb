"""Schedules' runs: due times claimed once (racing ticks too), missed times recorded not replayed,
a busy schedule skipped, pause and resume, Run now, output names in the schedule's time zone."""

import threading
from datetime import UTC, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from batchjobs.choices import JobStatus, RunStatus
from batchjobs.models import BatchJob, Schedule, ScheduleRun
from batchjobs.schedules import selectors, services, tick
from tests.batchjobs.jobkit import make_input, model_with_config, run_job
from tests.batchjobs.schedulekit import at, make_schedule, since

pytestmark = pytest.mark.usefixtures("job_storage")


def runs_of(schedule) -> list[tuple]:
    return [
        (f"{r.due_at:%H:%M}", r.status, r.job.output_table if r.job else None)
        for r in ScheduleRun.objects.filter(schedule=schedule).order_by("due_at", "id")
    ]


def test_a_due_time_starts_one_job_named_in_the_schedules_time_zone(ready, user):
    schedule = make_schedule(
        ready, user, cron="0 2 * * *", timezone="America/New_York", output_table_template="prod.out.s_{datetime}_{run}"
    )
    since(schedule, "2026-12-01 06:00")
    assert tick.schedules_tick(at("2026-12-01 06:59")) == []  # 02:00 in New York is 07:00 UTC
    [run] = tick.schedules_tick(at("2026-12-01 07:00"))
    assert (run.status, run.job.output_table) == (RunStatus.STARTED, "prod.out.s_2026_12_01_0200_1")
    job = BatchJob.objects.get()
    assert (job.schedule, job.requested_by, job.status) == (schedule, user, JobStatus.QUEUED)
    assert tick.schedules_tick(at("2026-12-01 08:00")) == []  # the same due time is not run again
    schedule.refresh_from_db()
    assert (schedule.runs_started, schedule.last_due_at) == (1, at("2026-12-01 07:00"))
    assert run_job(job).status == JobStatus.SUCCEEDED
    [second] = tick.schedules_tick(at("2026-12-02 07:00"))
    assert second.job.output_table == "prod.out.s_2026_12_02_0200_2"


def test_times_missed_while_the_platform_was_down_are_recorded_not_replayed(ready, user):
    schedule = since(make_schedule(ready, user, cron="0 * * * *"), "2026-12-01 00:00")
    runs = tick.schedules_tick(at("2026-12-01 05:10"))
    assert [r.status for r in runs] == [RunStatus.MISSED] * 4 + [RunStatus.STARTED]
    assert runs_of(schedule) == [
        ("01:00", "missed", None),
        ("02:00", "missed", None),
        ("03:00", "missed", None),
        ("04:00", "missed", None),
        ("05:00", "started", "prod.out.scores_2026_12_01_0500"),
    ]
    assert BatchJob.objects.count() == 1
    assert tick.schedules_tick(at("2026-12-01 05:59")) == []
    assert BatchJob.objects.count() == 1


def test_a_long_outage_records_a_hundred_missed_times_and_counts_the_rest(ready, user):
    schedule = since(make_schedule(ready, user, cron="* * * * *"), "2026-12-01 00:00")
    tick.schedules_tick(at("2026-12-01 03:00"))
    missed = ScheduleRun.objects.filter(schedule=schedule, status=RunStatus.MISSED).order_by("due_at")
    assert missed.count() == 100
    assert "And 79 more due times until 2026-12-01 03:00 UTC were missed" in missed.last().message
    assert BatchJob.objects.count() == 1


def test_a_due_time_while_the_previous_run_is_active_is_skipped(ready, user):
    schedule = since(make_schedule(ready, user, cron="0 * * * *"), "2026-12-01 00:30")
    [first] = tick.schedules_tick(at("2026-12-01 01:00"))
    [skipped] = tick.schedules_tick(at("2026-12-01 02:00"))
    assert skipped.status == RunStatus.SKIPPED_BUSY
    assert f"the previous run's job {str(first.job.pk)[:8]} was still queued" in skipped.message
    run_job(first.job)
    [third] = tick.schedules_tick(at("2026-12-01 03:00"))
    assert third.status == RunStatus.STARTED
    assert [status for _, status, _ in runs_of(schedule)] == ["started", "skipped_busy", "started"]


def test_a_run_whose_checks_fail_is_recorded_as_refused_with_their_reasons(ready, user):
    schedule = since(make_schedule(ready, user, cron="0 * * * *"), "2026-12-01 00:30")
    make_input("prod.out.scores_2026_12_01_0100", 3)  # someone made the run's output table meanwhile
    [run] = tick.schedules_tick(at("2026-12-01 01:00"))
    assert run.status == RunStatus.REFUSED
    assert "The output table prod.out.scores_2026_12_01_0100 already exists" in run.message
    schedule.refresh_from_db()
    assert schedule.runs_started == 0 and not BatchJob.objects.exists()


def test_a_paused_schedule_never_runs_and_resuming_does_not_replay(ready, user):
    schedule = since(make_schedule(ready, user, cron="* * * * *"), "2026-12-01 00:00")
    services.schedule_pause(schedule=schedule)
    assert tick.schedules_tick(at("2026-12-01 05:00")) == []
    services.schedule_resume(schedule=schedule)
    runs = tick.schedules_tick(schedule.last_due_at + timedelta(seconds=61))
    assert [r.status for r in runs] == [RunStatus.STARTED]
    assert not ScheduleRun.objects.filter(status=RunStatus.MISSED).exists()


def test_run_now_runs_once_and_refuses_while_its_run_is_active(ready, user):
    schedule = make_schedule(ready, user, output_table_template="prod.out.scores_{run}")
    job = services.schedule_run_now(schedule=schedule, user=user)
    assert (job.schedule, job.output_table, job.status) == (schedule, "prod.out.scores_1", JobStatus.QUEUED)
    with pytest.raises(ValidationError) as refused:
        services.schedule_run_now(schedule=schedule, user=user)
    assert "is still queued: one run at a time" in refused.value.message_dict["schedule"][0]
    assert BatchJob.objects.count() == 1
    run = ScheduleRun.objects.get()
    assert (run.manual, run.status, run.job) == (True, RunStatus.STARTED, job)
    assert run_job(job).status == JobStatus.SUCCEEDED


def test_the_active_config_at_run_time_is_the_one_used(ready, user):
    since(make_schedule(ready, user, cron="0 * * * *"), "2026-12-01 00:30")
    newer = model_with_config(ready, user, 'return pd.DataFrame({"score": df["amount"] * 3}, index=df.index)')
    [run] = tick.schedules_tick(at("2026-12-01 01:00"))
    assert run.job.batch_config == newer and run.job.build == newer.build


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_racing_ticks_for_one_due_time_start_exactly_one_job(ready, user):
    """Both ticks read the schedule before either claims (a barrier), then both claim the same due time."""
    schedule = since(make_schedule(ready, user, cron="0 * * * *"), "2026-12-01 00:30")
    now, barrier, results, failures = at("2026-12-01 01:00"), threading.Barrier(2), [], []

    def racer():
        try:
            stale = Schedule.objects.select_related("model", "created_by").get(pk=schedule.pk)
            barrier.wait(timeout=10)
            results.append(tick.schedule_tick(stale, now))
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=racer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert sorted(len(r) for r in results) == [0, 1]
    assert BatchJob.objects.filter(schedule=schedule).count() == 1
    assert ScheduleRun.objects.filter(schedule=schedule).count() == 1


def test_the_database_keeps_one_run_per_due_time_even_if_a_claim_is_bypassed(ready, user):
    schedule = make_schedule(ready, user, cron="0 * * * *")
    first = tick.start_run(schedule, due=at("2026-12-01 01:00"))
    assert run_job(first.job).status == JobStatus.SUCCEEDED  # not busy: the second start gets to its insert
    again = tick.start_run(schedule, due=at("2026-12-01 01:00"))  # as a second beat with a stale claim would
    assert (again.pk, again.status, again.job) == (first.pk, RunStatus.STARTED, first.job)
    schedule.refresh_from_db()
    assert BatchJob.objects.count() == 1 and schedule.runs_started == 1  # the second start left nothing


def widen_the_race(monkeypatch, barrier):
    """Each start waits (2 s at most) after its busy check for the other: without a lock both pass it."""
    real = selectors.active_job

    def active_job_then_wait(schedule):
        job = real(schedule)
        try:
            barrier.wait(timeout=2)
        except threading.BrokenBarrierError:  # the other start waits for the lock this one holds
            pass
        return job

    monkeypatch.setattr(selectors, "active_job", active_job_then_wait)


def race(*calls) -> tuple[list, list]:
    results, failures = [], []

    def racer(call):
        try:
            results.append(call())
        except Exception as exc:  # noqa: BLE001 - returned
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=racer, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results, failures


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_run_nows_at_once_start_one_job_and_refuse_the_other(ready, user, monkeypatch):
    schedule = make_schedule(ready, user, output_table_template="prod.out.scores_{run}")
    widen_the_race(monkeypatch, threading.Barrier(2))
    stale = [Schedule.objects.select_related("model", "created_by").get(pk=schedule.pk) for _ in range(2)]
    jobs, refused = race(*(lambda s=s: services.schedule_run_now(schedule=s, user=user) for s in stale))
    assert len(jobs) == 1 and len(refused) == 1, refused
    assert isinstance(refused[0], ValidationError)
    assert "is still queued: one run at a time" in refused[0].message_dict["schedule"][0]
    assert BatchJob.objects.filter(schedule=schedule).count() == 1
    assert [(r.manual, r.status) for r in ScheduleRun.objects.filter(schedule=schedule)] == [(True, RunStatus.STARTED)]
    assert Schedule.objects.get(pk=schedule.pk).runs_started == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_run_now_racing_a_tick_starts_one_job(ready, user, monkeypatch):
    schedule = since(make_schedule(ready, user, cron="0 * * * *"), "2026-12-01 00:30")
    widen_the_race(monkeypatch, threading.Barrier(2))
    stale = [Schedule.objects.select_related("model", "created_by").get(pk=schedule.pk) for _ in range(2)]
    results, refused = race(
        lambda: services.schedule_run_now(schedule=stale[0], user=user),
        lambda: tick.schedule_tick(stale[1], at("2026-12-01 01:00")),
    )
    assert BatchJob.objects.filter(schedule=schedule).count() == 1
    statuses = sorted((r.manual, r.status) for r in ScheduleRun.objects.filter(schedule=schedule))
    if refused:  # the tick went first: Run now is refused, nothing recorded for it
        assert "one run at a time" in refused[0].message_dict["schedule"][0]
        assert statuses == [(False, RunStatus.STARTED)]
    else:  # Run now went first: the tick's due time is skipped
        assert statuses == [(False, RunStatus.SKIPPED_BUSY), (True, RunStatus.STARTED)]


def test_a_tick_uses_the_current_time_when_none_is_given(ready, user):
    schedule = make_schedule(ready, user, cron="* * * * *")
    Schedule.objects.filter(pk=schedule.pk).update(last_due_at=timezone.now() - timedelta(minutes=2))
    runs = tick.schedules_tick()
    assert [r.status for r in runs] == [RunStatus.MISSED, RunStatus.STARTED]


def ticks_through(schedule, start: str, end: str, every_min: int = 5) -> list[tuple[str, str]]:
    """Tick every `every_min` minutes from `start` to `end` (UTC): each run's due time in UTC and status."""
    now = at(start)
    while now <= at(end):
        tick.schedules_tick(now)
        now += timedelta(minutes=every_min)
    return [
        (f"{r.due_at.astimezone(UTC):%m-%d %H:%M}", r.status)
        for r in ScheduleRun.objects.filter(schedule=schedule).order_by("due_at", "id")
    ]


def hourly(schedule_runs) -> list[str]:
    return [due for due, _ in schedule_runs]


@pytest.mark.parametrize(
    ("zone", "start", "end", "due"),
    [
        # London: 02:00 BST becomes 01:00 GMT at 01:00 UTC on 25 October; 01:00 local comes twice.
        ("Europe/London", "2026-10-24 23:30", "2026-10-25 02:10", ["10-25 00:00", "10-25 01:00", "10-25 02:00"]),
        # New York: 02:00 EDT becomes 01:00 EST at 06:00 UTC on 1 November.
        ("America/New_York", "2026-11-01 04:30", "2026-11-01 07:10", ["11-01 05:00", "11-01 06:00", "11-01 07:00"]),
    ],
)
def test_an_hourly_rule_runs_every_hour_through_the_autumn_clock_change_and_misses_none(
    ready, user, zone, start, end, due
):
    schedule = since(make_schedule(ready, user, cron="0 * * * *", timezone=zone), start)
    runs = ticks_through(schedule, start, end)
    assert hourly(runs) == due
    assert RunStatus.MISSED not in {status for _, status in runs}


@pytest.mark.parametrize(
    ("zone", "start", "end"),
    [
        ("Europe/London", "2026-10-24 23:55", "2026-10-25 02:00"),
        ("America/New_York", "2026-11-01 04:55", "2026-11-01 07:00"),
    ],
)
def test_every_15_minutes_stays_every_15_minutes_through_the_repeated_hour(ready, user, zone, start, end):
    schedule = since(make_schedule(ready, user, cron="*/15 * * * *", timezone=zone), start)
    runs = ticks_through(schedule, start, end)
    first = at(start) + timedelta(minutes=5)
    assert hourly(runs) == [f"{first + timedelta(minutes=15 * i):%m-%d %H:%M}" for i in range(9)]
    assert RunStatus.MISSED not in {status for _, status in runs}


@pytest.mark.parametrize(
    ("zone", "cron_rule", "start", "end", "due", "listed"),
    [
        # A time that occurs twice runs once, at its first occurrence (01:30 BST), and is listed once.
        (
            "Europe/London",
            "30 1 * * *",
            "2026-10-24 23:00",
            "2026-10-25 03:00",
            ["10-25 00:30"],
            ["2026-10-25T01:30:00+01:00", "2026-10-26T01:30:00+00:00"],
        ),
        (
            "America/New_York",
            "30 1 * * *",
            "2026-11-01 04:00",
            "2026-11-01 08:00",
            ["11-01 05:30"],
            ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"],
        ),
        # A time that does not exist (spring) runs when the clock jumps: 02:00 BST, 03:00 EDT.
        (
            "Europe/London",
            "30 1 * * *",
            "2026-03-28 23:00",
            "2026-03-29 03:00",
            ["03-29 01:00"],
            ["2026-03-29T02:00:00+01:00", "2026-03-30T01:30:00+01:00"],
        ),
        (
            "America/New_York",
            "30 2 * * *",
            "2026-03-08 05:00",
            "2026-03-08 09:00",
            ["03-08 07:00"],
            ["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"],
        ),
    ],
)
def test_a_daily_time_at_a_clock_change_runs_once_and_is_listed_as_it_runs(
    ready, user, zone, cron_rule, start, end, due, listed
):
    schedule = since(make_schedule(ready, user, cron=cron_rule, timezone=zone), start)
    assert [d.local.isoformat() for d in selectors.next_runs(schedule, 2, now=at(start))] == listed
    runs = ticks_through(schedule, start, end, every_min=10)
    assert runs == [(when, RunStatus.STARTED) for when in due]


@pytest.mark.parametrize(
    ("zone", "start", "end", "due"),
    [
        # London: 01:00 GMT becomes 02:00 BST at 01:00 UTC on 29 March; hourly stays hourly.
        ("Europe/London", "2026-03-28 23:30", "2026-03-29 02:10", ["03-29 00:00", "03-29 01:00", "03-29 02:00"]),
        ("America/New_York", "2026-03-08 05:30", "2026-03-08 08:10", ["03-08 06:00", "03-08 07:00", "03-08 08:00"]),
    ],
)
def test_an_hourly_rule_runs_every_hour_through_the_spring_clock_change(ready, user, zone, start, end, due):
    schedule = since(make_schedule(ready, user, cron="0 * * * *", timezone=zone), start)
    runs = ticks_through(schedule, start, end)
    assert hourly(runs) == due
    assert RunStatus.MISSED not in {status for _, status in runs}
