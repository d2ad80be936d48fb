from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def coming(request: HttpRequest, section: str) -> HttpResponse:
    """Sections whose issues have not landed yet say so instead of 404ing."""
    return render(request, "batchjobs/coming.html", {"section": section})
