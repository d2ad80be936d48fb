"""The OpenAPI schema of /api/v1/ and the interactive docs (Swagger UI), all served from here: the
docs' scripts are our static files (drf-spectacular-sidecar), never a CDN. (No Redoc: its bundle
always loads a logo from its maker's CDN.)"""

from __future__ import annotations

from drf_spectacular.renderers import (
    OpenApiJsonRenderer,
    OpenApiJsonRenderer2,
    OpenApiYamlRenderer,
    OpenApiYamlRenderer2,
)
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.renderers import BrowsableAPIRenderer

FILENAME = "mlplatform-api"


class SchemaPageRenderer(BrowsableAPIRenderer):
    """A browser gets the schema as a page (the YAML shown, links to the docs) instead of a download."""

    def get_context(self, data, accepted_media_type, renderer_context):
        context = super().get_context(data, accepted_media_type, renderer_context)
        context["available_formats"] = list(dict.fromkeys(context["available_formats"]))  # yaml, json: once each
        return context


class SchemaView(SpectacularAPIView):
    """The OpenAPI 3 schema of the REST API v1: YAML by default, `?format=json` for JSON."""

    # YAML first: what a client that accepts anything gets. application/json before the
    # vendor type, so ?format=json opens in a browser instead of downloading.
    renderer_classes = [
        OpenApiYamlRenderer,
        OpenApiYamlRenderer2,
        OpenApiJsonRenderer2,
        OpenApiJsonRenderer,
        SchemaPageRenderer,
    ]

    def _get_filename(self, request, version) -> str:
        # ASCII only: a browser ignores a filename it cannot read and saves the file as "download".
        return f"{FILENAME}.{self.perform_content_negotiation(request, force=True)[0].format}"

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if isinstance(getattr(response, "accepted_renderer", None), SchemaPageRenderer):
            del response["Content-Disposition"]  # a page, not a file
        return response


class SwaggerView(SpectacularSwaggerView):
    url_name = "api-schema"
    template_name = "api/swagger_ui.html"
