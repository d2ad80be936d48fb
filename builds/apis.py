"""REST API v1 for models, builds, batch configs and instance types. Thin: parse, call, serialise."""

from __future__ import annotations

from django.contrib.auth.models import Group
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from builds import envmask, selectors, services
from builds.choices import Processes
from builds.models import BatchConfig, Build, InstanceType, MLModel
from mlplatform.api import InputSerializerMixin


class InstanceTypeSerializer(serializers.ModelSerializer):
    class Meta:
        model = InstanceType
        fields = ["name", "vcpus", "memory_mib", "queue", "description"]


class MaskedEnvField(serializers.DictField):
    """Values of secret-looking names (KEY, TOKEN, SECRET, PASSWORD) are never sent back."""

    def to_representation(self, value):
        return envmask.masked(value or {})


class BatchConfigSerializer(serializers.ModelSerializer):
    env = MaskedEnvField(read_only=True)
    build_id = serializers.UUIDField(source="build.id", read_only=True)
    build_number = serializers.IntegerField(source="build.number", read_only=True)
    instance_type = serializers.CharField(source="instance_type.name")
    set_by = serializers.CharField(source="created_by.username", default=None, read_only=True)
    set_at = serializers.DateTimeField(source="created_at", read_only=True)

    class Meta:
        model = BatchConfig
        fields = [
            "build_id",
            "build_number",
            "deployment_name",
            "instance_type",
            "processes",
            "env",
            "allow_network",
            "is_active",
            "set_by",
            "set_at",
        ]


class ModelSerializer(serializers.ModelSerializer):
    team = serializers.CharField(source="team.name")
    active_batch_config = serializers.SerializerMethodField()

    class Meta:
        model = MLModel
        fields = ["model_id", "description", "team", "created_at", "active_batch_config"]

    def get_active_batch_config(self, model: MLModel) -> dict | None:
        config = selectors.active_batch_config(model=model)
        return BatchConfigSerializer(config).data if config else None


class ModelListSerializer(ModelSerializer):
    has_active_batch_config = serializers.BooleanField(source="has_active_config", read_only=True)

    class Meta(ModelSerializer.Meta):
        fields = ["model_id", "description", "team", "created_at", "has_active_batch_config"]


class ModelCreateSerializer(serializers.Serializer):
    model_id = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    team = serializers.CharField(max_length=150)


class BuildSerializer(serializers.ModelSerializer):
    build_id = serializers.UUIDField(source="id", read_only=True)
    model_id = serializers.CharField(source="model.model_id", read_only=True)
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True)
    used_in_batch = serializers.BooleanField(read_only=True)

    class Meta:
        model = Build
        fields = [
            "build_id",
            "model_id",
            "number",
            "status",
            "artifact_kind",
            "artifact_name",
            "artifact_size",
            "artifact_sha256",
            "entrypoint",
            "schema",
            "log",
            "used_in_batch",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
        ]


class BuildUploadSerializer(serializers.Serializer):
    artifact = serializers.FileField()
    entrypoint = serializers.CharField(required=False, allow_blank=True, default="")


class BatchConfigInputSerializer(serializers.Serializer):
    deployment_name = serializers.CharField(max_length=100)
    instance_type = serializers.CharField(max_length=63)
    processes = serializers.CharField(max_length=10, required=False, default=Processes.ALL)
    # Masked when shown (the browsable API fills its PUT form with the saved config): a mask sent
    # back unchanged keeps the saved value.
    env = MaskedEnvField(child=serializers.CharField(allow_blank=True), required=False, default=dict)
    allow_network = serializers.BooleanField(required=False, default=False)

    def to_representation(self, config: BatchConfig) -> dict:
        return {**super().to_representation(config), "instance_type": config.instance_type.name}


class ModelListCreateApi(InputSerializerMixin, GenericAPIView):
    serializer_class = ModelListSerializer
    input_serializers = {"POST": ModelCreateSerializer}

    def get_queryset(self):
        return selectors.model_list(user=self.request.user, search=self.request.query_params.get("search", ""))

    @extend_schema(operation_id="v1_models_list")
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ModelListSerializer(page, many=True).data)

    @extend_schema(request=ModelCreateSerializer, responses={201: ModelSerializer})
    def post(self, request: Request) -> Response:
        data = ModelCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        model = services.model_create(
            model_id=data.validated_data["model_id"],
            description=data.validated_data["description"],
            team=Group.objects.filter(name=data.validated_data["team"]).first(),
            created_by=request.user,
        )
        return Response(ModelSerializer(model).data, status=status.HTTP_201_CREATED)


class ModelDetailApi(GenericAPIView):
    serializer_class = ModelSerializer

    def get(self, request: Request, model_id: str) -> Response:
        return Response(ModelSerializer(selectors.model_get(user=request.user, model_id=model_id)).data)


class BuildListCreateApi(InputSerializerMixin, GenericAPIView):
    serializer_class = BuildSerializer
    input_serializers = {"POST": BuildUploadSerializer}
    parser_classes = [MultiPartParser, FormParser]

    def get_queryset(self):
        return selectors.build_list(model=selectors.model_get(user=self.request.user, model_id=self.kwargs["model_id"]))

    def get(self, request: Request, model_id: str) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(BuildSerializer(page, many=True).data)

    @extend_schema(request={"multipart/form-data": BuildUploadSerializer}, responses={201: BuildSerializer})
    def post(self, request: Request, model_id: str) -> Response:
        model = selectors.model_get(user=request.user, model_id=model_id)
        data = BuildUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["artifact"]
        build = services.build_register(
            model=model,
            upload=upload,
            filename=upload.name,
            entrypoint=data.validated_data["entrypoint"],
            created_by=request.user,
        )
        build = selectors.build_get(user=request.user, build_id=build.id)
        return Response(BuildSerializer(build).data, status=status.HTTP_201_CREATED)


class BuildDetailApi(GenericAPIView):
    serializer_class = BuildSerializer

    def get(self, request: Request, build_id) -> Response:
        return Response(BuildSerializer(selectors.build_get(user=request.user, build_id=build_id)).data)


class BatchConfigApi(InputSerializerMixin, GenericAPIView):
    serializer_class = BatchConfigSerializer
    input_serializers = {"PUT": BatchConfigInputSerializer}
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    def get(self, request: Request, build_id) -> Response:
        build = selectors.build_get(user=request.user, build_id=build_id)
        config = selectors.latest_batch_config(build=build)
        if config is None:
            return Response(
                {"errors": {"detail": [f"Build {build.number} has no batch config yet."]}},
                status=status.HTTP_404_NOT_FOUND,
            )
        return Response(BatchConfigSerializer(config).data)

    @extend_schema(request=BatchConfigInputSerializer, responses={200: BatchConfigSerializer})
    def put(self, request: Request, build_id) -> Response:
        build = selectors.build_get(user=request.user, build_id=build_id)
        data = BatchConfigInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        config = services.batch_config_set(
            build=build,
            deployment_name=data.validated_data["deployment_name"],
            instance_type=selectors.instance_type_list().filter(name=data.validated_data["instance_type"]).first(),
            processes=data.validated_data["processes"],
            env=data.validated_data["env"],
            allow_network=data.validated_data["allow_network"],
            set_by=request.user,
        )
        return Response(BatchConfigSerializer(config).data)


class InstanceTypeListApi(GenericAPIView):
    serializer_class = InstanceTypeSerializer
    pagination_class = None

    def get_queryset(self):
        return selectors.instance_type_list()

    def get(self, request: Request) -> Response:
        return Response(InstanceTypeSerializer(self.get_queryset(), many=True).data)
