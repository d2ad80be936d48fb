"""Request checks that hold for every page and endpoint, before any view reads the request."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

NUL = "\x00"


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
