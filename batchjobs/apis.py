"""REST API v1 for tables. Thin: parse, call batchjobs.tables, serialise."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from batchjobs import tables
from mlplatform.warehouse import CatalogNotFoundError


def _error(status_code: int, field: str, message: str) -> Response:
    return Response({"errors": {field: [message]}}, status=status_code)


def _table_json(detail: tables.TableDetail) -> dict:
    name = detail.name
    return {
        "name": str(name),
        "catalog": name.catalog,
        "schema": name.schema,
        "table": name.table,
        "rows": detail.rows,
        "columns": [{"name": c.name, "type": c.type} for c in detail.columns],
    }


class TableSerializer(serializers.Serializer):
    name = serializers.CharField()
    catalog = serializers.CharField()
    schema = serializers.CharField()
    table = serializers.CharField()
    rows = serializers.IntegerField(allow_null=True)


class TableUploadSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    file = serializers.FileField()


class TableListApi(GenericAPIView):
    serializer_class = TableSerializer
    parser_classes = [MultiPartParser, FormParser]
    pagination_class = None

    @extend_schema(parameters=[OpenApiParameter("catalog", str), OpenApiParameter("schema", str)])
    def get(self, request: Request) -> Response:
        try:
            listing = tables.table_listing(
                catalog_name=request.query_params.get("catalog") or None,
                schema=request.query_params.get("schema") or None,
            )
        except CatalogNotFoundError as exc:
            return _error(status.HTTP_404_NOT_FOUND, "catalog", str(exc))
        rows = [
            {
                "name": str(t.name),
                "catalog": t.name.catalog,
                "schema": t.name.schema,
                "table": t.name.table,
                "rows": t.rows,
            }
            for group in listing
            for t in group.tables
        ]
        return Response(rows)

    @extend_schema(request={"multipart/form-data": TableUploadSerializer}, responses={201: TableSerializer})
    def post(self, request: Request) -> Response:
        data = TableUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        try:
            result = tables.table_upload(
                name=data.validated_data["name"],
                source=tables.upload_source(upload),
                filename=upload.name,
                created_by=request.user,
            )
        except tables.TableConflict as exc:
            return _error(status.HTTP_409_CONFLICT, "name", str(exc))
        body = _table_json(tables.table_get(str(result.name)))
        body["renamed_columns"] = result.renamed
        return Response(body, status=status.HTTP_201_CREATED)


class TableDetailApi(GenericAPIView):
    serializer_class = TableSerializer

    def get(self, request: Request, name: str) -> Response:
        try:
            return Response(_table_json(tables.table_get(name)))
        except tables.TableMissing as exc:
            return _error(status.HTTP_404_NOT_FOUND, "name", str(exc))

    def delete(self, request: Request, name: str) -> Response:
        try:
            tables.table_drop(name=name, confirmation=name, user=request.user)
        except tables.TableMissing as exc:
            return _error(status.HTTP_404_NOT_FOUND, "name", str(exc))
        return Response(status=status.HTTP_204_NO_CONTENT)


class TableRowsApi(GenericAPIView):
    serializer_class = TableSerializer

    @extend_schema(parameters=[OpenApiParameter("limit", int, description="at most 1000; default 50")])
    def get(self, request: Request, name: str) -> Response:
        try:
            limit = int(request.query_params.get("limit", tables.PREVIEW_ROWS))
            if not 0 <= limit <= 1000:
                raise ValueError
        except ValueError:
            raise ValidationError({"limit": ["limit must be a whole number from 0 to 1000."]}) from None
        try:
            columns, rows = tables.table_preview(name, limit=limit)
        except tables.TableMissing as exc:
            return _error(status.HTTP_404_NOT_FOUND, "name", str(exc))
        return Response({"name": name, "columns": columns, "rows": rows})
