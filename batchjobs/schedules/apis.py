"""REST API v1 for schedules: /api/v1/schedules/. Thin: parse, call a service or selector, serialise."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from batchjobs.apis import BatchJobDetailSerializer, _job_response
from batchjobs.choices import NotifyOn
from batchjobs.models import Schedule, ScheduleRun
from batchjobs.schedules import cron, notify_urls, selectors, services
from builds import selectors as build_selectors
from mlplatform.api import InputSerializerMixin, NoInput


class ScheduleRunSerializer(serializers.ModelSerializer):
    job_id = serializers.UUIDField(allow_null=True)

    class Meta:
        model = ScheduleRun
        fields = ["due_at", "manual", "status", "job_id", "message"]


class ScheduleSerializer(serializers.ModelSerializer):
    model_id = serializers.CharField(source="model.model_id")
    team = serializers.CharField(source="model.team.name", help_text="the model's team")
    created_by = serializers.CharField(source="created_by.username", default=None)
    notify_urls = serializers.SerializerMethodField(help_text="masked: scheme://host/…")
    cron_description = serializers.SerializerMethodField()
    next_runs = serializers.SerializerMethodField(help_text="the next five due times, ISO 8601 in the time zone")
    runs = serializers.SerializerMethodField(help_text="the latest 20 runs")

    class Meta:
        model = Schedule
        fields = [
            "id",
            "model_id",
            "team",
            "name",
            "input_table",
            "output_table_template",
            "cron",
            "cron_description",
            "timezone",
            "enabled",
            "history_table",
            "events_table",
            "event_key_column",
            "keep_last",
            "notify_urls",
            "notify_on",
            "next_runs",
            "runs_started",
            "created_by",
            "created_at",
            "updated_at",
            "runs",
        ]

    def get_notify_urls(self, schedule: Schedule) -> list[str]:
        return notify_urls.masked_list(schedule.notify_urls)

    def get_cron_description(self, schedule: Schedule) -> str:
        return cron.describe(schedule.cron)

    def get_next_runs(self, schedule: Schedule) -> list[str]:
        return [due.local.isoformat() for due in selectors.next_runs(schedule)]

    def get_runs(self, schedule: Schedule) -> list[dict]:
        return ScheduleRunSerializer(selectors.run_list(schedule), many=True).data


class ScheduleInputSerializer(serializers.Serializer):
    """What a schedule takes; the service checks each value and names the field of any error."""

    # Each length is its column's (a longer value is a 400 here, not a database error).
    name = serializers.CharField(max_length=100, allow_blank=True)
    input_table = serializers.CharField(max_length=200, allow_blank=True)
    output_table_template = serializers.CharField(max_length=200, allow_blank=True)
    cron = serializers.CharField(max_length=100, allow_blank=True, help_text="five fields, like 0 2 * * *")
    timezone = serializers.CharField(max_length=64, required=False, default="UTC")
    enabled = serializers.BooleanField(required=False, default=True)
    history_table = serializers.CharField(max_length=200, allow_blank=True, required=False, default="")
    events_table = serializers.CharField(max_length=200, allow_blank=True, required=False, default="")
    event_key_column = serializers.CharField(max_length=63, allow_blank=True, required=False, default="")
    keep_last = serializers.IntegerField(
        allow_null=True, required=False, default=None, max_value=services.KEEP_LAST_MAX, help_text="1 to 10,000"
    )
    notify_urls = serializers.ListField(
        child=serializers.CharField(max_length=services.NOTIFY_URL_MAX),
        required=False,
        default=list,
        max_length=services.NOTIFY_URLS_MAX,
    )
    notify_on = serializers.ChoiceField(choices=NotifyOn.choices, required=False, default=NotifyOn.FAILURE)

    def to_representation(self, instance) -> dict:
        # The browsable API's edit form shows a schedule's URLs masked; sent back so, each keeps its own.
        data = super().to_representation(instance)
        if isinstance(instance, Schedule):
            data["notify_urls"] = notify_urls.masked_list(instance.notify_urls)
        return data


class ScheduleCreateSerializer(ScheduleInputSerializer):
    model_id = serializers.CharField(max_length=63)


def _schedule_response(request: Request, schedule: Schedule, code: int = status.HTTP_200_OK) -> Response:
    schedule = selectors.schedule_get(user=request.user, schedule_id=schedule.pk)
    return Response(ScheduleSerializer(schedule).data, status=code)


class ScheduleListApi(InputSerializerMixin, GenericAPIView):
    serializer_class = ScheduleSerializer
    input_serializers = {"POST": ScheduleCreateSerializer}

    def get_queryset(self):
        model_id = self.request.query_params.get("model_id")
        model = build_selectors.model_get(user=self.request.user, model_id=model_id) if model_id else None
        return selectors.with_recent_runs(selectors.schedule_list(user=self.request.user, model=model))

    @extend_schema(parameters=[OpenApiParameter("model_id", str)], responses=ScheduleSerializer(many=True))
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ScheduleSerializer(page, many=True).data)

    @extend_schema(request=ScheduleCreateSerializer, responses={201: ScheduleSerializer})
    def post(self, request: Request) -> Response:
        data = ScheduleCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        model = build_selectors.model_get(user=request.user, model_id=fields.pop("model_id"))
        schedule = services.schedule_create(model=model, created_by=request.user, **fields)
        return _schedule_response(request, schedule, status.HTTP_201_CREATED)


class ScheduleDetailApi(InputSerializerMixin, GenericAPIView):
    serializer_class = ScheduleSerializer
    input_serializers = {"PATCH": ScheduleInputSerializer}

    def get(self, request: Request, schedule_id) -> Response:
        return Response(ScheduleSerializer(selectors.schedule_get(user=request.user, schedule_id=schedule_id)).data)

    @extend_schema(request=ScheduleInputSerializer, responses={200: ScheduleSerializer})
    def patch(self, request: Request, schedule_id) -> Response:
        schedule = selectors.schedule_get(user=request.user, schedule_id=schedule_id)
        data = ScheduleInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        # Only what was sent: a partial serializer still fills in defaults otherwise.
        fields = {key: value for key, value in data.validated_data.items() if key in request.data}
        return _schedule_response(request, services.schedule_update(schedule=schedule, **fields))

    def delete(self, request: Request, schedule_id) -> Response:
        services.schedule_delete(schedule=selectors.schedule_get(user=request.user, schedule_id=schedule_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class _ScheduleActionApi(InputSerializerMixin, GenericAPIView):
    serializer_class = ScheduleSerializer
    input_serializers = {"POST": NoInput}

    def act(self, request: Request, schedule: Schedule) -> Schedule:
        raise NotImplementedError

    @extend_schema(request=None, responses={200: ScheduleSerializer})
    def post(self, request: Request, schedule_id) -> Response:
        schedule = selectors.schedule_get(user=request.user, schedule_id=schedule_id)
        return _schedule_response(request, self.act(request, schedule))


class SchedulePauseApi(_ScheduleActionApi):
    def act(self, request: Request, schedule: Schedule) -> Schedule:
        return services.schedule_pause(schedule=schedule)


class ScheduleResumeApi(_ScheduleActionApi):
    def act(self, request: Request, schedule: Schedule) -> Schedule:
        return services.schedule_resume(schedule=schedule)


class ScheduleRunApi(InputSerializerMixin, GenericAPIView):
    """Run now: 201 with the job, or 409 when the schedule's previous run is still active or the
    job's checks refused it."""

    serializer_class = BatchJobDetailSerializer
    input_serializers = {"POST": NoInput}

    @extend_schema(request=None, responses={201: BatchJobDetailSerializer})
    def post(self, request: Request, schedule_id) -> Response:
        schedule = selectors.schedule_get(user=request.user, schedule_id=schedule_id)
        try:
            job = services.schedule_run_now(schedule=schedule, user=request.user)
        except ValidationError as exc:
            return Response({"errors": exc.message_dict}, status=status.HTTP_409_CONFLICT)
        return _job_response(request, job, status.HTTP_201_CREATED)
