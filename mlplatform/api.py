"""REST wiring shared by the apps: the error shape {"errors": {"<field>": ["<sentence>", ...]}}."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from mlplatform.warehouse import TableExistsError, TableNotFoundError, WarehouseError


class NoInput(serializers.Serializer):
    """What an action that takes no body (cancel, retry) takes: the browsable API shows a bare button."""


# No docstring: a view's docstring is its description in the browsable API and the schema.
class InputSerializerMixin:
    # The browsable API's forms show what a method takes, not what it answers: input_serializers
    # maps a method to the serializer of its body; every other method uses serializer_class.
    input_serializers: dict = {}

    def get_serializer_class(self):
        return self.input_serializers.get(self.request.method) or super().get_serializer_class()


def _sentences(messages, prefix: str = "") -> list[str]:
    """Nested serializer errors (a dict field's keys, list items) flattened to sentences."""
    if isinstance(messages, dict):
        return [s for key, value in messages.items() for s in _sentences(value, f"{prefix}{key}: ")]
    if isinstance(messages, list):
        return [s for value in messages for s in _sentences(value, prefix)]
    return [f"{prefix}{messages}"]


def _as_lists(detail) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        return {str(field): _sentences(messages) for field, messages in detail.items()}
    if isinstance(detail, list):
        return {"non_field_errors": _sentences(detail)}
    return {"detail": [str(detail)]}


def django_errors(exc: DjangoValidationError) -> dict[str, list[str]]:
    if hasattr(exc, "error_dict"):
        return {field: [str(m) for e in errs for m in e.messages] for field, errs in exc.error_dict.items()}
    return {"non_field_errors": [str(m) for m in exc.messages]}


def exception_handler(exc, context):
    if isinstance(exc, RequestDataTooBig):  # Django's own answer would be its HTML 400 page
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // 1024**2
        message = f"The request body is larger than the limit of {limit} MB for a request that is not a file upload."
        return Response({"errors": {"detail": [message]}}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, DjangoValidationError):
        return Response({"errors": django_errors(exc)}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, WarehouseError):
        code = {TableNotFoundError: 404, TableExistsError: 409}.get(type(exc), 503)
        if isinstance(exc, ValueError):  # a bad table or column name
            code = 400
        return Response({"errors": {"catalog": [str(exc)]}}, status=code)
    response = drf_exception_handler(exc, context)
    if response is not None:
        response.data = {"errors": _as_lists(response.data)}
    return response
