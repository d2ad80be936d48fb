from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required, login_required
from django.urls import include, path
from django.views.generic import RedirectView

from mlplatform.schema import SchemaView, SwaggerView

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="builds:model-list", permanent=False)),
    path("login/", login_not_required(auth_views.LoginView.as_view()), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/schema/", SchemaView.as_view(), name="api-schema"),
    # A page for people: a visitor who is not logged in is sent to the login page (the API answers 401).
    path("api/docs/", login_required(SwaggerView.as_view()), name="api-docs"),
    path("api/v1/", include("mlplatform.api_urls", namespace="api")),
    path("", include("batchjobs.urls")),
    path("", include("tables.urls")),
    path("", include("builds.urls")),
]
