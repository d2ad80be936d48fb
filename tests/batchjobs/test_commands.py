"""manage.py batch_predict."""

import io

import pytest
from django.core.management import CommandError, call_command

from batchjobs.models import BatchJob

pytestmark = pytest.mark.usefixtures("job_storage")


def test_batch_predict_command_triggers_and_reports(ready, user):
    out = io.StringIO()
    call_command(
        "batch_predict", "ds-premium-fraud-detection", "prod.t.input", "prod.out.cli", "--user", "alice", stdout=out
    )
    job = BatchJob.objects.get()
    assert f"Batch job {job.pk} queued: prod.t.input → prod.out.cli" in out.getvalue()
    with pytest.raises(CommandError, match="output_table: An unfinished batch job already writes"):
        call_command("batch_predict", "ds-premium-fraud-detection", "prod.t.input", "prod.out.cli", "--user", "alice")
