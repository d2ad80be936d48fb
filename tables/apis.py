"""REST API v1 for tables. Thin: parse, call a service or selector, serialise."""

from __future__ import annotations

from types import SimpleNamespace

from django.core.exceptions import ValidationError
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotAcceptable
from rest_framework.generics import GenericAPIView
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mlplatform.api import InputSerializerMixin
from mlplatform.warehouse import CatalogNotFoundError
from tables import downloads, selectors, services


def _error(status_code: int, field: str, message: str) -> Response:
    return Response({"errors": {field: [message]}}, status=status_code)


class TableSerializer(serializers.Serializer):
    """A table in a listing: its name, parts and row count (null when it cannot be read)."""

    name = serializers.CharField()
    catalog = serializers.CharField(source="name.catalog")
    schema = serializers.CharField(source="name.schema")
    table = serializers.CharField(source="name.table")
    rows = serializers.IntegerField(allow_null=True)


class ColumnSerializer(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.CharField()


class MadeBySerializer(serializers.Serializer):
    job_id = serializers.UUIDField()
    model_id = serializers.CharField()
    build_id = serializers.UUIDField()
    build_number = serializers.IntegerField(help_text="the build's number within its model (build 3)")


class TableDetailSerializer(TableSerializer):
    columns = ColumnSerializer(many=True)
    made_by = MadeBySerializer(allow_null=True, help_text="the job whose output the table is; null otherwise")
    created_by = serializers.CharField(
        allow_null=True, help_text="who uploaded the table or triggered the job that made it; null otherwise"
    )


class TableUploadSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    file = serializers.FileField()


class TableCreatedSerializer(TableDetailSerializer):
    renamed_columns = serializers.DictField(child=serializers.CharField())


class TableRowsSerializer(serializers.Serializer):
    name = serializers.CharField()
    columns = serializers.ListField(child=serializers.CharField())
    rows = serializers.ListField(child=serializers.ListField())


class TableListApi(InputSerializerMixin, GenericAPIView):
    serializer_class = TableSerializer
    input_serializers = {"POST": TableUploadSerializer}
    parser_classes = [MultiPartParser, FormParser]
    pagination_class = None

    def get_queryset(self) -> list:
        return []  # tables live in catalogs, not the database (the browsable API asks for a queryset)

    @extend_schema(
        operation_id="v1_tables_list", parameters=[OpenApiParameter("catalog", str), OpenApiParameter("schema", str)]
    )
    def get(self, request: Request) -> Response:
        try:
            listing = selectors.table_listing(
                user=request.user,
                catalog_name=request.query_params.get("catalog") or None,
                schema=request.query_params.get("schema") or None,
            )
        except CatalogNotFoundError as exc:
            return _error(status.HTTP_404_NOT_FOUND, "catalog", str(exc))
        return Response(TableSerializer([t for group in listing for t in group.tables], many=True).data)

    @extend_schema(request={"multipart/form-data": TableUploadSerializer}, responses={201: TableCreatedSerializer})
    def post(self, request: Request) -> Response:
        data = TableUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        try:
            result = services.table_upload(
                name=data.validated_data["name"],
                source=services.upload_source(upload),
                filename=upload.name,
                created_by=request.user,
            )
        except services.TableConflict as exc:
            return _error(status.HTTP_409_CONFLICT, "name", str(exc))
        detail = selectors.table_get(str(result.name), user=request.user)
        detail.renamed_columns = result.renamed
        return Response(TableCreatedSerializer(detail).data, status=status.HTTP_201_CREATED)


class TableDetailApi(GenericAPIView):
    serializer_class = TableDetailSerializer

    def get(self, request: Request, name: str) -> Response:
        try:
            return Response(TableDetailSerializer(selectors.table_get(name, user=request.user)).data)
        except selectors.TableMissing as exc:
            return _error(status.HTTP_404_NOT_FOUND, "name", str(exc))

    def delete(self, request: Request, name: str) -> Response:
        try:
            services.table_drop(name=name, confirmation=name, user=request.user)
        except selectors.TableMissing as exc:
            return _error(status.HTTP_404_NOT_FOUND, "name", str(exc))
        return Response(status=status.HTTP_204_NO_CONTENT)


class TableRowsApi(GenericAPIView):
    serializer_class = TableRowsSerializer

    @extend_schema(parameters=[OpenApiParameter("limit", int, description="at most 1000; default 50")])
    def get(self, request: Request, name: str) -> Response:
        try:
            limit = int(request.query_params.get("limit", selectors.PREVIEW_ROWS))
            if not 0 <= limit <= 1000:
                raise ValueError
        except ValueError:
            raise ValidationError({"limit": ["limit must be a whole number from 0 to 1000."]}) from None
        try:
            columns, rows = selectors.table_preview(name, user=request.user, limit=limit)
        except selectors.TableMissing as exc:
            return _error(status.HTTP_404_NOT_FOUND, "name", str(exc))
        return Response(TableRowsSerializer({"name": name, "columns": columns, "rows": rows}).data)


class FileDownloadNegotiation(DefaultContentNegotiation):
    """For a download, ?format= names the file (csv, parquet), not one of DRF's renderers; and a
    client that asks for the file's type (Accept: text/csv) is answered too. Renderers only render
    errors: JSON, or the browsable page for a browser."""

    settings = SimpleNamespace(URL_FORMAT_OVERRIDE=None)

    def select_renderer(self, request, renderers, format_suffix=None):
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except NotAcceptable:
            return renderers[0], renderers[0].media_type


class TableDownloadApi(APIView):
    content_negotiation_class = FileDownloadNegotiation

    @extend_schema(
        operation_id="v1_tables_download",
        parameters=[
            OpenApiParameter("format", str, enum=list(downloads.FORMATS), description="csv (the default) or parquet"),
            OpenApiParameter("limit", int, description="only the first rows, at least 1; every row when left out"),
        ],
        responses={(200, "text/csv"): OpenApiTypes.STR, (200, "application/vnd.apache.parquet"): OpenApiTypes.BINARY},
    )
    def get(self, request: Request, name: str) -> StreamingHttpResponse | Response:
        """The whole table (or its first `limit` rows) as a CSV or Parquet file, streamed."""
        wanted = downloads.download_request(request.query_params)
        try:
            download = downloads.table_download(name, user=request.user, request=wanted)
        except selectors.TableMissing as exc:
            return _error(status.HTTP_404_NOT_FOUND, "name", str(exc))
        return downloads.streaming_response(download)
