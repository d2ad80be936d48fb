"""Request checks that hold for every page and endpoint, before any view reads the request."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import Resolver404, resolve

NUL = "\x00"


# Where model artifacts are uploaded (the API's and the builds page's form).
ARTIFACT_UPLOADS = {"api:build-list", "builds:model-builds"}
MULTIPART_SLACK = 1024 * 1024  # the form's other fields and the multipart framing


class RefuseArtifactsOverTheLimit:
    """An artifact upload whose declared size (Content-Length) is over MAX_ARTIFACT_MB is a 413 before
    any of it is read: nothing is streamed to disk (Django would spool the whole file first)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST" and request.content_type == "multipart/form-data":
            try:
                declared = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                declared = 0
            limit = settings.MAX_ARTIFACT_BYTES
            if declared > limit + MULTIPART_SLACK and _route(request) in ARTIFACT_UPLOADS:
                message = (
                    f"The upload is {declared / 1024**2:,.0f} MB; an artifact may be at most {limit // 1024**2:,} MB "
                    "(MAX_ARTIFACT_MB)."
                )
                if request.path.startswith("/api/"):
                    return JsonResponse({"errors": {"artifact": [message]}}, status=413)
                return render(request, "400.html", {"message": message, "title": "Upload too large"}, status=413)
        return self.get_response(request)


def _route(request: HttpRequest) -> str:
    try:
        return resolve(request.path_info).view_name
    except Resolver404:
        return ""


class RefuseNulInQueryParameters:
    """A query parameter (name or value) holding a NUL byte (`%00`) is a 400 that names it: no
    database stores NUL in text, and PostgreSQL answers such a filter with an error."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        names = [name for name, values in request.GET.lists() if NUL in name or any(NUL in v for v in values)]
        if not names:
            return self.get_response(request)
        errors = {
            name.replace(NUL, "\\x00"): ["contains a NUL character (%00), which a query parameter may not hold."]
            for name in names
        }
        if request.path.startswith("/api/"):
            return JsonResponse({"errors": errors}, status=400)
        message = " ".join(f"The query parameter '{name}' {msgs[0]}" for name, msgs in errors.items())
        return render(request, "400.html", {"message": message}, status=400)
