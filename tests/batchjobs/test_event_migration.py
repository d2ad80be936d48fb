"""Events recorded before `src` and `uuid` existed get both when the database is migrated."""

import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests.factories import BatchJobFactory

BEFORE = [("batchjobs", "0003_input_snapshot")]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_migrating_gives_every_earlier_event_the_source_and_a_uuid_of_its_own(settings):
    settings.EVENTS_SOURCE = 97
    job = BatchJobFactory()
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        old = executor.loader.project_state(BEFORE).apps.get_model("batchjobs", "JobEvent")
        for evid in (402, 400, 402, 401):
            old.objects.create(evid=evid, job_id=job.pk, model_id="m", build_id=job.build_id, endpoint_name="e")
        assert not any(f.name in {"src", "uuid"} for f in old._meta.fields)
    finally:
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())

    from batchjobs.models import JobEvent

    events = list(JobEvent.objects.filter(job=job))
    assert [e.src for e in events] == [97] * 4
    assert len({e.uuid for e in events}) == 4 and all(isinstance(e.uuid, uuid.UUID) for e in events)
