"""HTML pages. Thin: parse, call a selector or a service, render."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods
from django_htmx.http import HttpResponseClientRedirect, HttpResponseStopPolling

from builds import envmask, selectors, services
from builds.choices import BuildStatus
from builds.forms import BatchConfigForm, BuildUploadForm, ModelCreateForm
from mlplatform.forms import add_service_errors


def model_list(request: HttpRequest) -> HttpResponse:
    search = request.GET.get("q", "").strip()
    models = selectors.model_list(user=request.user, search=search)
    context = {"models": models, "q": search, "form": ModelCreateForm(teams=selectors.user_teams(request.user))}
    if request.htmx and request.htmx.target == "model-table":
        return render(request, "builds/model_list.html#model-table", context)
    return render(request, "builds/model_list.html", context)


@require_http_methods(["POST"])
def model_create(request: HttpRequest) -> HttpResponse:
    form = ModelCreateForm(request.POST, teams=selectors.user_teams(request.user))
    if form.is_valid():
        try:
            model = services.model_create(created_by=request.user, **form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"Model {model.model_id} registered. Upload its first build below.")
            return redirect("builds:model-builds", model_id=model.model_id)
    models = selectors.model_list(user=request.user)
    context = {"models": models, "q": "", "form": form, "show_create": True}
    return render(request, "builds/model_list.html", context, status=400)


def _model_context(request: HttpRequest, model_id: str, tab: str) -> dict:
    model = selectors.model_get(user=request.user, model_id=model_id)
    return {"model": model, "tab": tab, "active_config": selectors.active_batch_config(model=model)}


def model_overview(request: HttpRequest, model_id: str) -> HttpResponse:
    context = _model_context(request, model_id, "overview")
    context["builds_count"] = context["model"].builds.count()
    return render(request, "builds/model_overview.html", context)


@require_http_methods(["GET", "POST"])
def model_builds(request: HttpRequest, model_id: str) -> HttpResponse:
    context = _model_context(request, model_id, "builds")
    model = context["model"]
    form = BuildUploadForm()
    if request.method == "POST":
        form = BuildUploadForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["artifact"]
            try:
                build = services.build_register(
                    model=model,
                    upload=upload,
                    filename=upload.name,
                    entrypoint=form.cleaned_data["entrypoint"],
                    created_by=request.user,
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, f"Build {build.number} uploaded; it is being verified.")
                return redirect("builds:model-builds", model_id=model.model_id)
    builds = list(selectors.build_list(model=model))
    context.update(builds=builds, form=form, polling=any(b.status in BuildStatus.ACTIVE for b in builds))
    if request.htmx and request.htmx.target == "build-table":
        response = render(request, "builds/model_builds.html#build-table", context)
        return response if context["polling"] else HttpResponseStopPolling(response.content)
    return render(request, "builds/model_builds.html", context, status=400 if form.errors else 200)


def build_detail(request: HttpRequest, build_id) -> HttpResponse:
    build = selectors.build_get(user=request.user, build_id=build_id)
    context = {
        "build": build,
        "model": build.model,
        "config": selectors.latest_batch_config(build=build),
        "schema_rows": selectors.schema_rows(build=build),
        "polling": build.status in BuildStatus.ACTIVE,
    }
    if request.htmx and request.htmx.target == "build-status":
        response = render(request, "builds/build_detail.html#build-status", context)
        return response if context["polling"] else HttpResponseClientRedirect(request.path)
    return render(request, "builds/build_detail.html", context)


@require_http_methods(["GET", "POST"])
def batch_config_edit(request: HttpRequest, build_id) -> HttpResponse:
    """The "Set Batch Config" modal (a full page without JavaScript)."""
    build = selectors.build_get(user=request.user, build_id=build_id)
    current = selectors.active_batch_config(model=build.model)
    if request.method == "POST":
        form = BatchConfigForm(request.POST)
        if form.is_valid():
            try:
                config = services.batch_config_set(
                    build=build,
                    set_by=request.user,
                    **{
                        k: form.cleaned_data[k]
                        for k in ("deployment_name", "instance_type", "processes", "env", "allow_network")
                    },
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(
                    request,
                    f"Batch config {config.deployment_name} saved: build {build.number} is now used in batch. "
                    "Nothing was deployed or run; trigger a batch job from the Predict tab.",
                )
                target = reverse("builds:model-builds", args=[build.model.model_id])
                return HttpResponseClientRedirect(target) if request.htmx else redirect(target)
    else:
        initial = {"deployment_name": f"{build.model.model_id}-batch"[:63], "processes": "ALL"}
        if current:
            initial = {
                "deployment_name": current.deployment_name,
                "instance_type": current.instance_type,
                "processes": current.processes,
                "allow_network": current.allow_network,
            }
        form = BatchConfigForm(initial=initial, initial_env=envmask.masked(current.env) if current else {})
    context = {"build": build, "model": build.model, "form": form, "current": current}
    if request.htmx:
        return render(request, "builds/batch_config_form.html#config-form", context)
    return render(request, "builds/batch_config_form.html", context, status=400 if form.errors else 200)
