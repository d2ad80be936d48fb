import time

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from batchjobs import services
from batchjobs.choices import JobStatus
from builds.management.lookup import user_and_model


class Command(BaseCommand):
    help = "Trigger a batch prediction job: the model's active batch config over INPUT into a new OUTPUT table."

    def add_arguments(self, parser):
        parser.add_argument("model_id")
        parser.add_argument("input_table")
        parser.add_argument("output_table")
        parser.add_argument("--user", required=True, help="username of a member of the model's team")
        parser.add_argument("--wait", action="store_true", help="wait for the job to end; exit 1 unless it succeeded")
        parser.add_argument("--timeout", type=int, default=24 * 3600)

    def handle(self, *args, model_id, input_table, output_table, user, wait, timeout, **options):
        user, model = user_and_model(user, model_id)
        try:
            job = services.job_trigger(
                model=model, input_table=input_table, output_table=output_table, requested_by=user
            )
        except ValidationError as exc:
            lines = [f"{field}: {message}" for field, messages in exc.message_dict.items() for message in messages]
            raise CommandError("the job was not created:\n  " + "\n  ".join(lines)) from None
        self.stdout.write(f"Batch job {job.pk} queued: {job.input_table} → {job.output_table}")
        if not wait:
            return
        deadline, last = time.monotonic() + timeout, None
        while job.status in JobStatus.ACTIVE and time.monotonic() < deadline:
            time.sleep(1)
            job.refresh_from_db()
            progress = (job.status, job.phase, job.batches.filter(status="succeeded").count())
            if progress != last:
                self.stdout.write(
                    f"  {job.status} ({job.get_phase_display().lower()}): "
                    f"{progress[2]}/{job.batches_total or '?'} batches"
                )
                last = progress
        self.stdout.write(job.message)
        if job.status != JobStatus.SUCCEEDED:
            raise CommandError(f"batch job {job.pk} is {job.status}")
        self.stdout.write(self.style.SUCCESS(f"{job.output_rows:,} rows written to {job.output_table}"))
