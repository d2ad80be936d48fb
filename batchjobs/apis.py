"""REST API v1 for batch jobs and events. Thin: parse, call a service or selector, serialise."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from batchjobs import cloudwatch, selectors, services
from batchjobs.filters import EventFilter, JobFilter
from batchjobs.models import Batch, BatchAttempt, BatchJob, JobEvent, Notification, PostStep
from batchjobs.poststeps import runner as post_steps
from builds import selectors as build_selectors
from builds.apis import BatchConfigSerializer
from mlplatform.api import InputSerializerMixin, NoInput


class BatchJobSerializer(serializers.ModelSerializer):
    job_id = serializers.UUIDField(source="id", read_only=True)
    model_id = serializers.CharField(source="model.model_id")
    build_id = serializers.UUIDField()
    build_number = serializers.IntegerField(source="build.number")
    deployment_name = serializers.CharField(source="batch_config.deployment_name")
    allow_network = serializers.BooleanField(source="batch_config.allow_network", read_only=True)
    batches_succeeded = serializers.IntegerField(default=0)
    batches_failed = serializers.IntegerField(default=0)
    requested_by = serializers.CharField(source="requested_by.username", default=None)
    schedule_id = serializers.UUIDField(allow_null=True, read_only=True, help_text="the schedule whose run it is")
    queue_position = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    logs_url = serializers.SerializerMethodField()
    cloudwatch_url = serializers.SerializerMethodField()

    class Meta:
        model = BatchJob
        fields = [
            "job_id",
            "model_id",
            "build_id",
            "build_number",
            "deployment_name",
            "allow_network",
            "status",
            "phase",
            "message",
            "error_detail",
            "input_table",
            "input_version",
            "output_table",
            "input_rows",
            "output_rows",
            "batches_total",
            "batches_succeeded",
            "batches_failed",
            "parallelism",
            "queue_position",
            "requested_by",
            "schedule_id",
            "created_at",
            "queued_at",
            "started_at",
            "extracted_at",
            "predicted_at",
            "finished_at",
            "url",
            "logs_url",
            "cloudwatch_url",
        ]

    def get_queue_position(self, job: BatchJob) -> int | None:
        return getattr(job, "queue_position", None)

    def get_url(self, job: BatchJob) -> str:
        return self._absolute(reverse("batchjobs:job-detail", args=[job.pk]))

    def get_logs_url(self, job: BatchJob) -> str:
        return self._absolute(reverse("api:batch-job-logs", args=[job.pk]))

    def get_cloudwatch_url(self, job: BatchJob) -> str | None:
        return cloudwatch.job_url(job.pk)

    def _absolute(self, path: str) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path


class PostStepSerializer(serializers.ModelSerializer):
    duration_s = serializers.SerializerMethodField(help_text="seconds it ran (so far, while it runs)")

    class Meta:
        model = PostStep
        fields = [
            "position",
            "kind",
            "target",
            "status",
            "attempts",
            "rows",
            "detail",
            "error",
            "traceback",
            "started_at",
            "finished_at",
            "duration_s",
        ]
        extra_kwargs = {"target": {"help_text": "the table it writes; for keep_last, how many outputs are kept"}}

    def get_duration_s(self, step: PostStep) -> float | None:
        if step.started_at is None:
            return None
        return round(((step.finished_at or timezone.now()) - step.started_at).total_seconds(), 3)


class NotificationSerializer(serializers.ModelSerializer):
    """A notification about a scheduled job: where (masked: no token or password), why, and whether it went."""

    class Meta:
        model = Notification
        fields = ["url_shown", "reason", "status", "error", "sent_at"]


class BatchJobDetailSerializer(BatchJobSerializer):
    """One job, with the batch config it ran with (as the job page's "Batch config used" shows it)
    and, for a scheduled run, its post-steps in order and the notifications sent about it."""

    batch_config = BatchConfigSerializer(read_only=True)
    post_steps = PostStepSerializer(many=True, read_only=True)
    notifications = NotificationSerializer(many=True, read_only=True)

    class Meta(BatchJobSerializer.Meta):
        fields = [*BatchJobSerializer.Meta.fields, "batch_config", "post_steps", "notifications"]


def _job_response(request: Request, job: BatchJob, code: int = status.HTTP_200_OK) -> Response:
    job = selectors.job_get(user=request.user, job_id=job.pk)
    return Response(BatchJobDetailSerializer(job, context={"request": request}).data, status=code)


class TriggerSerializer(serializers.Serializer):
    model_id = serializers.CharField(max_length=63)
    input_table = serializers.CharField(max_length=200, allow_blank=True)
    output_table = serializers.CharField(max_length=200, allow_blank=True)


def _trigger_arguments(request: Request) -> dict:
    """model, input_table and output_table from a trigger or check request (the model: visible ones)."""
    data = TriggerSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    model = build_selectors.model_get(user=request.user, model_id=data.validated_data["model_id"])
    return {
        "model": model,
        "input_table": data.validated_data["input_table"],
        "output_table": data.validated_data["output_table"],
    }


class BatchJobListApi(InputSerializerMixin, GenericAPIView):
    serializer_class = BatchJobSerializer
    input_serializers = {"POST": TriggerSerializer}
    filter_backends = [DjangoFilterBackend]
    filterset_class = JobFilter

    def get_queryset(self):
        return selectors.job_list(user=self.request.user)

    @extend_schema(responses=BatchJobSerializer(many=True))  # a list: the schema shows its filters and pages
    def get(self, request: Request) -> Response:
        jobs = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        page = selectors.with_progress(jobs)
        return self.get_paginated_response(BatchJobSerializer(page, many=True, context={"request": request}).data)

    @extend_schema(request=TriggerSerializer, responses={201: BatchJobDetailSerializer})
    def post(self, request: Request) -> Response:
        job = services.job_trigger(requested_by=request.user, **_trigger_arguments(request))
        return _job_response(request, job, status.HTTP_201_CREATED)


class BatchJobCheckApi(GenericAPIView):
    """The pre-flight checks alone: 200 when a trigger would be accepted, else 400 with every error."""

    serializer_class = TriggerSerializer

    @extend_schema(request=TriggerSerializer)
    def post(self, request: Request) -> Response:
        check = services.job_preflight(**_trigger_arguments(request))
        if not check.ok:
            return Response({"errors": check.errors}, status=status.HTTP_400_BAD_REQUEST)
        return Response(
            {
                "ok": True,
                "input_table": check.input_table,
                "output_table": check.output_table,
                "input_rows": check.input_rows,
            }
        )


class BatchJobDetailApi(GenericAPIView):
    serializer_class = BatchJobDetailSerializer

    def get(self, request: Request, job_id) -> Response:
        return _job_response(request, selectors.job_get(user=request.user, job_id=job_id))


class _JobActionApi(InputSerializerMixin, GenericAPIView):
    """POST an action on a job: 200 with the job, or 409 when its state does not allow it."""

    serializer_class = BatchJobSerializer
    input_serializers = {"POST": NoInput}

    def act(self, request: Request, job: BatchJob) -> BatchJob:
        raise NotImplementedError

    @extend_schema(request=None, responses={200: BatchJobDetailSerializer})
    def post(self, request: Request, job_id) -> Response:
        job = selectors.job_get(user=request.user, job_id=job_id)
        try:
            job = self.act(request, job)
        except ValidationError as exc:
            return Response({"errors": exc.message_dict}, status=status.HTTP_409_CONFLICT)
        return _job_response(request, job)


class BatchJobCancelApi(_JobActionApi):
    def act(self, request: Request, job: BatchJob) -> BatchJob:
        return services.job_cancel(job=job)


class BatchJobRetryApi(_JobActionApi):
    def act(self, request: Request, job: BatchJob) -> BatchJob:
        return services.job_retry(job=job, requested_by=request.user)


class BatchJobRetryPostStepsApi(_JobActionApi):
    """Run a scheduled job's failed post-step and the later ones again (409 when none failed)."""

    def act(self, request: Request, job: BatchJob) -> BatchJob:
        return post_steps.steps_retry(job=job)


class BatchSerializer(serializers.ModelSerializer):
    cloudwatch_url = serializers.SerializerMethodField()

    def get_cloudwatch_url(self, batch: Batch) -> str | None:
        return cloudwatch.batch_url(batch.job_id, batch.index)

    class Meta:
        model = Batch
        fields = [
            "index",
            "rows",
            "status",
            "attempts",
            "worker",
            "error",
            "predict_seconds",
            "peak_rss_mib",
            "started_at",
            "finished_at",
            "cloudwatch_url",
        ]


class BatchListApi(GenericAPIView):
    serializer_class = BatchSerializer

    def get_queryset(self):
        return selectors.batch_list(job=selectors.job_get(user=self.request.user, job_id=self.kwargs["job_id"]))

    def get(self, request: Request, job_id) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(BatchSerializer(page, many=True).data)


class AttemptSerializer(serializers.ModelSerializer):
    batch = serializers.IntegerField(source="batch.index")
    attempt = serializers.IntegerField(source="number")

    class Meta:
        model = BatchAttempt
        fields = ["batch", "attempt", "status", "worker", "error", "log", "started_at", "finished_at"]


class BatchJobLogsApi(GenericAPIView):
    serializer_class = AttemptSerializer

    def get_queryset(self):
        job = selectors.job_get(user=self.request.user, job_id=self.kwargs["job_id"])
        index = self.request.query_params.get("batch")
        if index is not None and not selectors.is_batch_index(index):
            raise ValidationError({"batch": [selectors.BATCH_INDEX_RULE]})
        return selectors.attempt_list(job=job, index=int(index) if index else None)

    @extend_schema(parameters=[OpenApiParameter("batch", int)])
    def get(self, request: Request, job_id) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(AttemptSerializer(page, many=True).data)


class EventSerializer(serializers.ModelSerializer):
    job_id = serializers.UUIDField()
    evid_name = serializers.CharField(read_only=True, help_text="the event's word: started, succeeded or failed")

    class Meta:
        model = JobEvent
        fields = [
            "evid",
            "evid_name",
            "src",
            "uuid",
            "job_id",
            "model_id",
            "build_id",
            "endpoint_name",
            "job_start_time",
            "job_type",
            "error",
            "date_created",
        ]


class EventListApi(GenericAPIView):
    serializer_class = EventSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = EventFilter

    def get_queryset(self):
        return selectors.event_list(user=self.request.user)

    @extend_schema(responses=EventSerializer(many=True))
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(EventSerializer(page, many=True).data)
