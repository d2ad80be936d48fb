from django.db import migrations

from builds.catalog import CATALOG

def seed(apps, schema_editor):
    InstanceType = apps.get_model("builds", "InstanceType")
    for name, vcpus, memory_mib, description in CATALOG:
        InstanceType.objects.get_or_create(
            name=name, defaults={"vcpus": vcpus, "memory_mib": memory_mib, "queue": name, "description": description}
        )


class Migration(migrations.Migration):
    dependencies = [("builds", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
