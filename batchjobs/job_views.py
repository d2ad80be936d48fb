"""Pages for batch jobs: the model's PREDICT and JOBS tabs, the job page, the (simple) board."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, HttpResponseStopPolling

from batchjobs import selectors, services, tables
from batchjobs.choices import JOB_ACTIVE, JobStatus
from batchjobs.forms import EventFilterForm, PredictForm
from batchjobs.models import JobEvent
from batchjobs.pipeline.lifecycle import queue_positions
from builds import envmask
from builds import selectors as build_selectors
from mlplatform.forms import add_service_errors


def suggest_output_table(input_table: str) -> str:
    """A fresh output table name next to the input: <catalog>.<schema>.<table>_predictions_<time>."""
    try:
        _, name = tables.resolve(input_table)
    except ValidationError:
        return ""
    stamp = timezone.now().strftime("%Y%m%d_%H%M%S")
    return f"{name.catalog}.{name.schema}.{name.table[:40]}_predictions_{stamp}"


def _with_positions(jobs) -> list:
    jobs = list(jobs)
    positions = queue_positions([j.pk for j in jobs if j.status == "queued"])
    for job in jobs:
        job.queue_position = positions.get(job.pk)
    return jobs


@require_http_methods(["GET", "POST"])
def model_predict(request: HttpRequest, model_id: str) -> HttpResponse:
    model = build_selectors.model_get(user=request.user, model_id=model_id)
    config = build_selectors.active_batch_config(model=model)
    context = {"model": model, "tab": "predict", "active_config": config, "check": None, "trial": None}
    if request.method == "POST":
        form = PredictForm(request.POST)
        action = request.POST.get("action", "trigger")
        if form.is_valid():
            data = form.cleaned_data
            try:
                if action == "check":
                    context["check"] = services.job_preflight(model=model, **data)
                    add_service_errors(form, ValidationError(context["check"].errors))
                elif action == "try":
                    context["trial"] = services.job_try(model=model, input_table=data["input_table"])
                else:
                    job = services.job_trigger(model=model, requested_by=request.user, **data)
                    messages.success(request, f"Batch job {job.pk} queued.")
                    target = job_url(job)
                    return HttpResponseClientRedirect(target) if request.htmx else redirect(target)
            except ValidationError as exc:
                add_service_errors(form, exc)
    else:
        input_table = request.GET.get("input_table", "")
        form = PredictForm(
            initial={
                "input_table": input_table,
                "output_table": request.GET.get("output_table") or suggest_output_table(input_table),
            }
        )
    context["form"] = form
    context["recent"] = _with_positions(selectors.job_list(user=request.user, model_id=model.model_id)[:5])
    if request.htmx:
        return render(request, "batchjobs/model_predict.html#predict-panel", context)
    return render(request, "batchjobs/model_predict.html", context, status=400 if form.errors else 200)


def suggest(request: HttpRequest) -> HttpResponse:
    """htmx: a fresh output table name for the input table typed so far."""
    value = suggest_output_table(request.GET.get("input_table", ""))
    return HttpResponse(value, content_type="text/plain")


def job_url(job) -> str:
    return reverse("batchjobs:job-detail", args=[job.pk])


def _jobs_page(request: HttpRequest, model_id: str = ""):
    status = request.GET.get("status", "")
    jobs = selectors.job_list(user=request.user, model_id=model_id, status=status if status in JobStatus else "")
    page = Paginator(jobs, 25).get_page(request.GET.get("page"))
    page.object_list = _with_positions(page.object_list)
    return page


def job_board(request: HttpRequest) -> HttpResponse:
    page = _jobs_page(request)
    context = {
        "page": page,
        "polling": any(j.status in JOB_ACTIVE for j in page.object_list),
        "statuses": JobStatus.choices,
    }
    if request.htmx and request.htmx.target == "job-table":
        response = render(request, "batchjobs/job_board.html#job-table", context)
        return response if context["polling"] else HttpResponseStopPolling(response.content)
    return render(request, "batchjobs/job_board.html", context)


def model_jobs(request: HttpRequest, model_id: str) -> HttpResponse:
    model = build_selectors.model_get(user=request.user, model_id=model_id)
    page = _jobs_page(request, model.model_id)
    context = {
        "model": model,
        "tab": "jobs",
        "active_config": build_selectors.active_batch_config(model=model),
        "page": page,
        "polling": any(j.status in JOB_ACTIVE for j in page.object_list),
    }
    if request.htmx and request.htmx.target == "job-table":
        response = render(request, "batchjobs/model_jobs.html#job-table", context)
        return response if context["polling"] else HttpResponseStopPolling(response.content)
    return render(request, "batchjobs/model_jobs.html", context)


def job_detail(request: HttpRequest, job_id) -> HttpResponse:
    job = selectors.job_get(user=request.user, job_id=job_id)
    job.queue_position = queue_positions([job.pk]).get(job.pk) if job.status == "queued" else None
    context = {
        "job": job,
        "model": job.model,
        "counts": selectors.batch_counts(job),
        "batches": selectors.batch_list(job=job)[:500],
        "events": job.events.all(),
        "config_env": envmask.masked(job.batch_config.env),
        "polling": job.status in JOB_ACTIVE,
    }
    if request.htmx and request.htmx.target == "job-live":
        if not context["polling"]:  # ended: reload once, so the actions fit the final state
            return HttpResponseClientRedirect(request.path)
        return render(request, "batchjobs/job_detail.html#job-live", context)
    return render(request, "batchjobs/job_detail.html", context)


@require_POST
def job_cancel(request: HttpRequest, job_id) -> HttpResponse:
    job = selectors.job_get(user=request.user, job_id=job_id)
    try:
        job = services.job_cancel(job=job)
        messages.success(request, f"Job {job.status}." if job.status == "cancelled" else "Cancelling the job…")
    except ValidationError as exc:
        messages.error(request, " ".join(m for ms in exc.message_dict.values() for m in ms))
    return redirect(job_url(job))


@require_POST
def job_retry(request: HttpRequest, job_id) -> HttpResponse:
    job = selectors.job_get(user=request.user, job_id=job_id)
    try:
        job = services.job_retry(job=job, requested_by=request.user)
        messages.success(request, "The failed batches are queued to run again.")
    except ValidationError as exc:
        messages.error(request, " ".join(m for ms in exc.message_dict.values() for m in ms))
    return redirect(job_url(job))


def event_list(request: HttpRequest) -> HttpResponse:
    """Events users query to find a job: 402 start, 400 success, 401 failure."""
    form = EventFilterForm(request.GET)  # every filter is optional: no filter lists every event
    events = JobEvent.objects.none()
    if form.is_valid():
        try:
            events = selectors.event_list(user=request.user, **{k: v for k, v in form.cleaned_data.items() if v})
        except ValidationError as exc:
            add_service_errors(form, exc)
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "query": query.urlencode()}
    if request.htmx and request.htmx.target == "event-table":
        return render(request, "batchjobs/event_list.html#event-table", context)
    return render(request, "batchjobs/event_list.html", context)
