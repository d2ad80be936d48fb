"""Events get `src` (the EVENTS_SOURCE setting) and a unique `uuid`; existing events get both here."""

import uuid

from django.conf import settings
from django.db import migrations, models

import batchjobs.models


def backfill(apps, schema_editor):
    JobEvent = apps.get_model("batchjobs", "JobEvent")
    events = list(JobEvent.objects.filter(uuid__isnull=True).only("pk"))
    for event in events:
        event.uuid = uuid.uuid4()
        event.src = settings.EVENTS_SOURCE
    JobEvent.objects.bulk_update(events, ["uuid", "src"], batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [
        ("batchjobs", "0003_input_snapshot"),
    ]

    operations = [
        migrations.AddField(
            model_name="jobevent",
            name="src",
            field=models.PositiveSmallIntegerField(null=True),
        ),
        migrations.AddField(
            model_name="jobevent",
            name="uuid",
            field=models.UUIDField(null=True, editable=False),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="jobevent",
            name="src",
            field=models.PositiveSmallIntegerField(db_index=True, default=batchjobs.models.events_source),
        ),
        migrations.AlterField(
            model_name="jobevent",
            name="uuid",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True),
        ),
        migrations.AlterField(
            model_name="jobevent",
            name="evid",
            field=models.PositiveSmallIntegerField(
                choices=[(400, "400 succeeded"), (401, "401 failed"), (402, "402 started")], db_index=True
            ),
        ),
    ]
