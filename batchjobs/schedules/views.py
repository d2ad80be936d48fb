"""Pages for schedules: the model's SCHEDULES tab (list and New schedule), a schedule's page with
Run now / Pause / Resume / Edit / Delete, and the htmx preview of a cron and template as typed."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from batchjobs.choices import JobStatus
from batchjobs.models import Schedule
from batchjobs.schedules import cron, notify_urls, selectors, services
from batchjobs.schedules.forms import ScheduleForm
from builds import selectors as build_selectors
from mlplatform.forms import add_service_errors

COMMON_ZONES = ["UTC", "Europe/London", "Europe/Paris", "Europe/Berlin", "America/New_York", "America/Chicago"]
COMMON_ZONES += ["America/Los_Angeles", "America/Sao_Paulo", "Asia/Kolkata", "Asia/Singapore", "Asia/Tokyo"]
COMMON_ZONES += ["Australia/Sydney"]


def _tab(request: HttpRequest, model, form, status: int = 200) -> HttpResponse:
    schedules = list(selectors.schedule_list(user=request.user, model=model))
    for schedule in schedules:
        schedule.words = cron.describe(schedule.cron)
        schedule.next_run = selectors.next_runs(schedule, 1)[0] if schedule.enabled else None
    context = {
        "model": model,
        "tab": "schedules",
        "active_config": build_selectors.active_batch_config(model=model),
        "schedules": schedules,
        "form": form,
        "zones": COMMON_ZONES,
        "preview": _preview(form.data if form.is_bound else form.initial, model) if form.is_bound else None,
    }
    return render(request, "batchjobs/schedules/model_schedules.html", context, status=status)


@require_http_methods(["GET", "POST"])
def model_schedules(request: HttpRequest, model_id: str) -> HttpResponse:
    model = build_selectors.model_get(user=request.user, model_id=model_id)
    if request.method == "GET":
        return _tab(request, model, ScheduleForm())
    form = ScheduleForm(request.POST)
    if form.is_valid():
        try:
            schedule = services.schedule_create(model=model, created_by=request.user, **form.values())
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"Schedule {schedule.name} created.")
            return redirect("batchjobs:schedule-detail", schedule_id=schedule.pk)
    return _tab(request, model, form, status=400)


def _preview(data, model) -> dict:
    """What the cron says in words, its next run, and the output table that run would write."""
    expr = " ".join(str(data.get("cron", "")).split())
    tz = str(data.get("timezone", "") or "UTC").strip()
    template = str(data.get("output_table_template", "")).strip()
    preview = {
        "tz": tz,
        "cron": expr,
        "error": cron.cron_error(expr) if expr else "",
        "words": "",
        "next": None,
        "output": "",
    }
    if not expr or preview["error"]:
        return preview
    preview["words"] = cron.describe(expr)
    if cron.timezone_error(tz):
        preview["error"] = cron.timezone_error(tz)
        return preview
    try:
        preview["next"] = cron.next_runs(expr, tz, timezone.now(), 1)[0]
    except ValueError:  # no date matches (cron_error says so; this is the second guard)
        preview["error"] = f"{expr} never comes: no date matches it."
        return preview
    if template:
        preview["template_error"] = cron.template_error(template)
        if not preview["template_error"]:
            preview["output"] = cron.render(template, preview["next"], 1)
    return preview


@require_GET
def schedule_preview(request: HttpRequest, model_id: str) -> HttpResponse:
    model = build_selectors.model_get(user=request.user, model_id=model_id)
    return render(request, "batchjobs/schedules/_cron_preview.html", {"preview": _preview(request.GET, model)})


def schedule_detail(request: HttpRequest, schedule_id) -> HttpResponse:
    schedule = selectors.schedule_get(user=request.user, schedule_id=schedule_id)
    runs = selectors.run_list(schedule)
    context = {
        "schedule": schedule,
        "model": schedule.model,
        "active_config": build_selectors.active_batch_config(model=schedule.model),
        "words": cron.describe(schedule.cron),
        "next_runs": selectors.next_runs(schedule) if schedule.enabled else [],
        "next_output": selectors.next_output_name(schedule),
        "clock_changes": cron.CLOCK_CHANGES,
        "runs": runs,
        "missed": selectors.missed_count(schedule),
        "run_now_refusal": services.run_now_refusal(schedule),
        "urls": notify_urls.masked_list(schedule.notify_urls),
        "polling": any(r.job and r.job.status in JobStatus.ACTIVE for r in runs),
    }
    if request.htmx and request.htmx.target == "schedule-runs":
        if not context["polling"]:  # every run ended: reload once, so Run now and the notes fit
            return HttpResponseClientRedirect(request.path)
        return render(request, "batchjobs/schedules/schedule_detail.html#schedule-runs", context)
    return render(request, "batchjobs/schedules/schedule_detail.html", context)


def _owns(user, schedule: Schedule) -> bool:
    return user.groups.filter(pk=schedule.model.team_id).exists()


@require_http_methods(["GET", "POST"])
def schedule_edit(request: HttpRequest, schedule_id) -> HttpResponse:
    schedule = selectors.schedule_get(user=request.user, schedule_id=schedule_id)
    # The URLs in full only to the owning team (staff of another team edit them masked: kept as they are).
    shown_urls = notify_urls.masked_list(schedule.notify_urls)
    if _owns(request.user, schedule):
        shown_urls = schedule.notify_urls
    initial = {key: getattr(schedule, key) for key in services.FIELDS}
    initial.update(notify_urls="\n".join(shown_urls), keep_last=schedule.keep_last or "")
    form = ScheduleForm(request.POST if request.method == "POST" else None, initial=initial)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.schedule_update(schedule=schedule, **form.values())
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, f"Schedule {schedule.name} saved.")
                return redirect("batchjobs:schedule-detail", schedule_id=schedule.pk)
        status = 400
    context = {
        "schedule": schedule,
        "model": schedule.model,
        "form": form,
        "zones": COMMON_ZONES,
        "preview": _preview(form.data if form.is_bound else initial, schedule.model),
    }
    return render(request, "batchjobs/schedules/schedule_edit.html", context, status=status)


@require_POST
def schedule_run(request: HttpRequest, schedule_id) -> HttpResponse:
    schedule = selectors.schedule_get(user=request.user, schedule_id=schedule_id)
    try:
        job = services.schedule_run_now(schedule=schedule, user=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Run now started job {str(job.pk)[:8]}, writing {job.output_table}.")
    return redirect("batchjobs:schedule-detail", schedule_id=schedule.pk)


@require_POST
def schedule_pause(request: HttpRequest, schedule_id) -> HttpResponse:
    schedule = services.schedule_pause(schedule=selectors.schedule_get(user=request.user, schedule_id=schedule_id))
    messages.success(request, f"Schedule {schedule.name} paused: it runs no more until resumed.")
    return redirect("batchjobs:schedule-detail", schedule_id=schedule.pk)


@require_POST
def schedule_resume(request: HttpRequest, schedule_id) -> HttpResponse:
    schedule = services.schedule_resume(schedule=selectors.schedule_get(user=request.user, schedule_id=schedule_id))
    messages.success(request, f"Schedule {schedule.name} resumed: the times passed while paused are not run.")
    return redirect("batchjobs:schedule-detail", schedule_id=schedule.pk)


@require_POST
def schedule_delete(request: HttpRequest, schedule_id) -> HttpResponse:
    schedule = selectors.schedule_get(user=request.user, schedule_id=schedule_id)
    model_id, name = schedule.model.model_id, schedule.name
    services.schedule_delete(schedule=schedule)
    messages.success(request, f"Schedule {name} deleted; its jobs and their output tables stay.")
    return redirect(reverse("batchjobs:model-schedules", args=[model_id]))
