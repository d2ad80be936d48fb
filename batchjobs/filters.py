"""The job and event lists' filters, parsed once for the pages and the API.

A FilterSet narrows the team-scoped queryset its caller gives it (selectors.job_list/event_list);
an invalid value is a form error under the parameter's name: the API answers 400 with it, a page
shows it next to the field.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import django_filters as filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils import timezone

from batchjobs import selectors
from batchjobs.choices import EventId, JobStatus
from batchjobs.models import BatchJob, JobEvent
from builds import selectors as build_selectors

SINCE_PRESETS = {
    "1h": ("Last hour", timedelta(hours=1)),
    "24h": ("Last 24 hours", timedelta(days=1)),
    "7d": ("Last 7 days", timedelta(days=7)),
    "30d": ("Last 30 days", timedelta(days=30)),
}


def _not_a_date(name: str) -> dict[str, str]:
    return {"invalid": f"{name} must be a date like 2026-11-27."}


class SinceField(forms.Field):
    """A lower bound on a time: a date (its start in the current time zone) or a preset (1h, 24h, 7d, 30d ago)."""

    default_error_messages = {"invalid": "since must be a date like 2026-11-27, or 1h, 24h, 7d or 30d."}

    def to_python(self, value) -> datetime | None:
        value = (value or "").strip()
        if not value:
            return None
        if value in SINCE_PRESETS:
            return timezone.now() - SINCE_PRESETS[value][1]
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise ValidationError(self.error_messages["invalid"], code="invalid") from None
        return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


class SinceFilter(filters.CharFilter):  # a CharFilter, so the OpenAPI schema says "string"
    field_class = SinceField

    def __init__(self, **kwargs):
        super().__init__(field_name="created_at", lookup_expr="gte", **kwargs)


class JobIdPrefixField(forms.CharField):
    """The start of a job id as users paste it (any case, dashes optional), cleaned to hex digits."""

    def to_python(self, value) -> str:
        value = super().to_python(value)
        return selectors.clean_id_prefix(value) if value else value


class JobIdPrefixFilter(filters.CharFilter):
    field_class = JobIdPrefixField

    def filter(self, qs: QuerySet, value: str) -> QuerySet:
        if not value:
            return qs
        # In the UUID's text form: PostgreSQL compares its uuid as text with dashes.
        parts = (value[:8], value[8:12], value[12:16], value[16:20], value[20:])
        return qs.filter(id__startswith="-".join(part for part in parts if part))


class JobFilter(filters.FilterSet):
    """The job list's filters under the names the API gives them (users' scripts rely on them)."""

    model_id = filters.CharFilter(field_name="model__model_id")
    status = filters.ChoiceFilter(
        choices=JobStatus.choices,
        empty_label="All",
        error_messages={"invalid_choice": f"status must be one of {', '.join(JobStatus.values)}."},
    )
    requested_by = filters.CharFilter(
        field_name="requested_by__username", help_text="username of whoever triggered the job"
    )
    since = SinceFilter(help_text="jobs created on or after this date (2026-11-27), or in the last 1h, 24h, 7d or 30d")
    job_id = JobIdPrefixFilter(help_text="a job id or its start (hexadecimal, dashes optional)")
    schedule_id = filters.UUIDFilter(
        field_name="schedule_id",
        help_text="the runs of one schedule",
        error_messages={"invalid": "schedule_id must be a schedule's id (a UUID)."},
    )

    class Meta:
        model = BatchJob
        fields: list[str] = []

    def qs_ignoring(self, name: str) -> QuerySet[BatchJob]:
        """The jobs every valid filter but one lets through (the board's status chips count these)."""
        jobs = self.queryset
        for field, value in self.form.cleaned_data.items():
            if field != name:
                jobs = self.filters[field].filter(jobs, value)
        return jobs


class BoardFilter(JobFilter):
    """The same filters under the names in the board's URLs (users share them); model and user
    are picked from what the user can see."""

    model_id = requested_by = job_id = schedule_id = None
    schedule = filters.UUIDFilter(
        field_name="schedule_id",
        label="Schedule",
        widget=forms.HiddenInput,
        error_messages={"invalid": "schedule must be a schedule's id (a UUID)."},
    )
    model = filters.ChoiceFilter(field_name="model__model_id", label="Model", empty_label="All models")
    user = filters.ChoiceFilter(field_name="requested_by__username", label="Triggered by", empty_label="Anyone")
    since = SinceFilter(
        label="When",
        widget=forms.Select(choices=[("", "Any time"), *((key, label) for key, (label, _) in SINCE_PRESETS.items())]),
    )
    q = JobIdPrefixFilter(
        label="Job id",
        widget=forms.TextInput(
            attrs={"placeholder": "Job id starts with…", "spellcheck": "false", "type": "search", "maxlength": 36}
        ),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        user = self.request.user
        if "model" in self.filters:
            models = build_selectors.model_list(user=user).values_list("model_id", flat=True)
            self.filters["model"].extra["choices"] = [(m, m) for m in models]
        self.filters["user"].extra["choices"] = [(u, u) for u in selectors.team_usernames(user)]


class ModelJobsFilter(BoardFilter):
    """A model's JOBS tab: the board fixed to one model, so a model in its URL means nothing."""

    model = None


class IntegerFilter(filters.NumberFilter):
    field_class = forms.IntegerField


class EventFilter(filters.FilterSet):
    """The events' filters, under the same names on the page and in the API."""

    evid = filters.ChoiceFilter(
        label="Event",
        choices=[(e, e.label) for e in (EventId.START, EventId.SUCCESS, EventId.FAILURE, EventId.POST_STEP_FAILURE)],
        empty_label="All",
        error_messages={
            "invalid_choice": "evid must be 400 (succeeded), 401 (failed), 402 (started) or 403 (post-step failed)."
        },
    )
    src = IntegerFilter(
        label="Source",
        min_value=0,
        max_value=32767,
        help_text="the event source number (this platform's events: the EVENTS_SOURCE setting)",
        error_messages={
            "invalid": "src must be an event source number (a whole number).",
            "min_value": "src must be an event source number from 0 to 32767.",
            "max_value": "src must be an event source number from 0 to 32767.",
        },
    )
    model_id = filters.CharFilter(label="Model", max_length=63)
    job_id = filters.UUIDFilter(
        label="Job id",
        widget=forms.TextInput(attrs={"maxlength": 36}),
        error_messages={"invalid": "job_id must be a job's full id (a UUID)."},
    )
    since = filters.DateFilter(
        field_name="date_created",
        lookup_expr="date__gte",
        label="From",
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages=_not_a_date("since"),
    )
    until = filters.DateFilter(
        field_name="date_created",
        lookup_expr="date__lte",
        label="To",
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages=_not_a_date("until"),
    )

    class Meta:
        model = JobEvent
        fields: list[str] = []
