"""Who made a table through the platform (an upload, a job's output), and the team it belongs to."""

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models


class TableRecord(models.Model):
    """A table made through the platform. Whoever made it, its team's members and admins may drop it.

    A job's output table links to the job that made it (and so to its model and build); an upload
    has no job."""

    name = models.CharField(max_length=200, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    team = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", help_text="the owning team"
    )
    job = models.ForeignKey(
        "batchjobs.BatchJob",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="the job whose output this table is",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name
