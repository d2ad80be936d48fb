"""Job outputs recorded before records linked their job: the succeeded job with that output table
that committed it (the record was made between the job's start and its finish, by its requester)."""

from django.db import migrations
from django.db.models import Q


def link_jobs(apps, schema_editor):
    TableRecord = apps.get_model("tables", "TableRecord")
    BatchJob = apps.get_model("batchjobs", "BatchJob")
    for record in TableRecord.objects.filter(job__isnull=True):
        job = (
            BatchJob.objects.filter(
                Q(started_at__isnull=True) | Q(started_at__lte=record.created_at),
                status="succeeded",
                output_table=record.name,
                requested_by_id=record.created_by_id,
                finished_at__gte=record.created_at,
            )
            .order_by("finished_at")
            .first()
        )
        if job is not None:
            record.job = job
            record.save(update_fields=["job"])


class Migration(migrations.Migration):
    dependencies = [("tables", "0003_table_record_job"), ("batchjobs", "0003_input_snapshot")]

    operations = [migrations.RunPython(link_jobs, migrations.RunPython.noop)]
