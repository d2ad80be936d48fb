"""Tables uploaded before tables had teams: they belong to their creator's team (the first, by
name), as uploads do now."""

from django.db import migrations


def give_teams(apps, schema_editor):
    TableRecord = apps.get_model("tables", "TableRecord")
    for record in TableRecord.objects.filter(team__isnull=True, created_by__isnull=False).select_related("created_by"):
        team = record.created_by.groups.order_by("name").first()
        if team is not None:
            record.team = team
            record.save(update_fields=["team"])


class Migration(migrations.Migration):
    dependencies = [("tables", "0001_initial")]

    operations = [migrations.RunPython(give_teams, migrations.RunPython.noop)]
