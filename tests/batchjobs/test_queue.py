"""The queue: jobs start oldest first while fewer than MAX_CONCURRENT_JOBS run."""

import pytest

from batchjobs import selectors
from batchjobs.choices import JobStatus
from batchjobs.pipeline import admit
from tests.batchjobs.jobkit import make_input, run_job, trigger

pytestmark = pytest.mark.usefixtures("job_storage")


def test_jobs_start_oldest_first_while_fewer_than_the_limit_run(config, ml_model, user, settings):
    settings.MAX_CONCURRENT_JOBS = 1
    make_input("prod.t.input", 1_000)
    first = trigger(ml_model, user, "prod.t.input", "prod.out.a")
    second = trigger(ml_model, user, "prod.t.input", "prod.out.b")
    third = trigger(ml_model, user, "prod.t.input", "prod.out.c")
    assert admit.jobs_admit() == [str(first.pk)]
    assert selectors.queue_positions([second.pk, third.pk]) == {second.pk: 1, third.pk: 2}
    assert admit.jobs_admit() == []  # full
    run_job(first)
    assert admit.jobs_admit() == [str(second.pk)]
    first.refresh_from_db()
    assert first.status == JobStatus.SUCCEEDED
