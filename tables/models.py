"""Who made a table through the platform (an upload, a job's output), and the team it belongs to."""

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models


class TableRecord(models.Model):
    """A table made through the platform. Whoever made it, its team's members and admins may drop it.

    No link to a job: a job's output table is named on the job (``BatchJob.output_table``)."""

    name = models.CharField(max_length=200, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    team = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", help_text="the owning team"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name
