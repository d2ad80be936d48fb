"""Pages for batch jobs: the model's PREDICT and JOBS tabs, the job page, the (simple) board."""

from __future__ import annotations

import hashlib
import logging
import time
import zlib

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseNotModified,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.html import format_html
from django.views.decorators.http import require_http_methods
from django_htmx.http import HttpResponseClientRedirect, HttpResponseStopPolling

from batchjobs import cloudwatch, selectors, services
from batchjobs.choices import JobStatus
from batchjobs.filters import BoardFilter, EventFilter, ModelJobsFilter
from batchjobs.forms import PredictForm
from batchjobs.models import BatchJob, JobEvent
from batchjobs.poststeps import runner as post_steps
from batchjobs.poststeps import selectors as post_step_selectors
from batchjobs.schedules import selectors as schedule_selectors
from batchjobs.templatetags.jobs import first_line
from builds import envmask
from builds import selectors as build_selectors
from mlplatform.forms import add_service_errors
from mlplatform.warehouse import WarehouseError
from tables import selectors as table_selectors

logger = logging.getLogger(__name__)


def suggest_output_table(input_table: str) -> str:
    """A fresh output table name next to the input: <catalog>.<schema>.<table>_predictions_<time>."""
    try:
        _, name = table_selectors.resolve(input_table)
    except ValidationError:
        return ""
    stamp = timezone.now().strftime("%Y%m%d_%H%M%S")
    return f"{name.catalog}.{name.schema}.{name.table[:40]}_predictions_{stamp}"


@require_http_methods(["GET", "POST"])
def model_predict(request: HttpRequest, model_id: str) -> HttpResponse:
    model = build_selectors.model_get(user=request.user, model_id=model_id)
    config = build_selectors.active_batch_config(model=model)
    context = {
        "model": model,
        "tab": "predict",
        "active_config": config,
        "check": None,
        "trial": None,
        "rerun": None,
    }
    if request.method == "POST":
        form = PredictForm(request.POST)
        action = request.POST.get("action", "trigger")
        if form.is_valid():
            data = form.cleaned_data
            try:
                if action == "check":
                    context["check"] = services.job_preflight(model=model, **data)
                    add_service_errors(form, ValidationError(context["check"].errors))
                elif action == "try" and request.headers.get("X-Try-Progress"):
                    return _try_with_progress(request, model, form, context)
                elif action == "try":
                    context["trial"] = services.job_try(model=model, input_table=data["input_table"])
                else:
                    job = services.job_trigger(model=model, requested_by=request.user, **data)
                    messages.success(request, f"Batch job {job.pk} triggered.")
                    target = job_url(job)
                    return HttpResponseClientRedirect(target) if request.htmx else redirect(target)
            except ValidationError as exc:
                add_service_errors(form, exc)
    else:
        input_table = request.GET.get("input_table", "")
        if request.GET.get("rerun"):  # Re-run from a job page: its input, a fresh output name
            context["rerun"] = selectors.job_get(user=request.user, job_id=request.GET["rerun"])
            if context["rerun"].model_id != model.pk:
                raise Http404("No such batch job for this model.")
            input_table = context["rerun"].input_table
        form = PredictForm(
            initial={
                "input_table": input_table,
                "output_table": request.GET.get("output_table") or suggest_output_table(input_table),
            }
        )
    _predict_context(request, model, form, context)
    if request.htmx:
        return render(request, "batchjobs/model_predict.html#predict-panel", context)
    return render(request, "batchjobs/model_predict.html", context, status=400 if form.errors else 200)


def _predict_context(request: HttpRequest, model, form, context: dict) -> None:
    context["form"] = form
    context["recent"] = selectors.with_progress(selectors.job_list(user=request.user).filter(model=model)[:5])
    context["table_names"] = selectors.table_suggestions(user=request.user, team=model.team)
    # The input table's name is suggested as it is typed (the first names are in the page already).
    form.fields["input_table"].widget.attrs.update(
        {
            "list": "table-names",
            "autocomplete": "off",
            "hx-get": reverse("batchjobs:model-table-names", args=[model.model_id]),
            "hx-trigger": "input changed delay:250ms",
            "hx-target": "#table-names",
            "hx-swap": "innerHTML",
            "hx-sync": "this:replace",
        }
    )


def _try_with_progress(request: HttpRequest, model, form, context: dict) -> StreamingHttpResponse:
    """ "Try on 100 rows" as it happens: each step as it begins (an empty <template data-try-step>
    the page's script shows with its own ticking clock), then the panel with the result or the
    errors. The steps are real: the service yields them as it reaches them."""

    def chunks():
        began = time.monotonic()
        try:
            for step in services.job_try_steps(model=model, input_table=form.cleaned_data["input_table"]):
                if isinstance(step, services.TrialResult):
                    context["trial"] = step
                    continue
                at = f"{time.monotonic() - began:.2f}"
                yield format_html('<template data-try-step="{}" data-at="{}">{}</template>\n', step.key, at, step.label)
        except ValidationError as exc:
            add_service_errors(form, exc)
        except WarehouseError as exc:  # the input went away or its catalog failed after the checks
            form.add_error("input_table", table_selectors.sentence(exc))
        except Exception:  # the response has begun: say so in the panel rather than end it silently
            logger.exception("Try on 100 rows of %s failed", model.model_id)
            form.add_error(None, "Try on 100 rows failed on the server (the error is in its log); try again.")
        _predict_context(request, model, form, context)
        yield render_to_string("batchjobs/model_predict.html#predict-panel", context, request)

    response = StreamingHttpResponse(chunks(), content_type="text/html; charset=utf-8")
    response["Cache-Control"] = "no-store"
    response["X-Accel-Buffering"] = "no"  # a proxy passes each step on at once
    return response


@require_http_methods(["GET"])
def model_table_names(request: HttpRequest, model_id: str) -> HttpResponse:
    """Suggestions for the PREDICT tab's input table as the user types: the tables the user and the
    model's team may read whose name contains the text (the <option>s of its <datalist>)."""
    model = build_selectors.model_get(user=request.user, model_id=model_id)
    text = request.GET.get("input_table", "")[:200]
    names = selectors.table_suggestions(user=request.user, team=model.team, text=text)
    return render(request, "batchjobs/model_predict.html#table-names", {"table_names": names})


def job_url(job) -> str:
    return reverse("batchjobs:job-detail", args=[job.pk])


def _board(request: HttpRequest, template: str, model=None) -> HttpResponse:
    """The Batch Jobs board, or the model's JOBS tab (the same board filtered to that model)."""
    jobs = selectors.job_list(user=request.user)
    if model:
        jobs = jobs.filter(model=model)
    filters = (ModelJobsFilter if model else BoardFilter)(request.GET, jobs, request=request)
    form, jobs, counts = filters.form, BatchJob.objects.none(), {}
    if filters.is_valid():
        jobs = filters.qs.defer("error_detail")
        # The chips count what clicking them would show: every filter but the status.
        counts = selectors.status_counts(filters.qs_ignoring("status"))
    paginator = Paginator(jobs, 25)
    if counts:  # the chips' counts already hold the total: no second count(*) over the jobs
        paginator.count = counts[form.cleaned_data["status"]] if form.cleaned_data["status"] else sum(counts.values())
    page = paginator.get_page(request.GET.get("page"))
    page.object_list = selectors.with_progress(page.object_list)
    query = request.GET.copy()
    query.pop("page", None)
    status_query = query.copy()
    status_query.pop("status", None)
    context = {
        "model": model,
        "form": form,
        "page": page,
        "query": query.urlencode(),
        "status_query": status_query.urlencode(),
        "chips": [(value, label, counts.get(value, 0)) for value, label in JobStatus.choices],
        "total": sum(counts.values()),
        "polling": any(j.status in JobStatus.ACTIVE for j in page.object_list),
        "readable_tables": selectors.readable_tables(user=request.user, jobs=page.object_list),
    }
    if model:
        context.update(tab="jobs", active_config=build_selectors.active_batch_config(model=model))
    if form.is_valid() and form.cleaned_data.get("schedule"):
        context["schedule_chip"] = _schedule_chip(request, form.cleaned_data["schedule"], query)
    if request.htmx and request.htmx.target == "job-table":
        response = render(request, f"{template}#job-table", context)
        return response if context["polling"] else HttpResponseStopPolling(response.content)
    return render(request, template, context, status=400 if form.errors else 200)


def _schedule_chip(request: HttpRequest, schedule_id, query) -> dict:
    """The board filtered by a schedule shows its name (another team's: just "a schedule", no link)."""
    schedule = schedule_selectors.schedule_list(user=request.user).filter(pk=schedule_id).first()
    without = query.copy()
    without.pop("schedule", None)
    return {"schedule": schedule, "id": schedule_id, "clear": without.urlencode()}


def job_board(request: HttpRequest) -> HttpResponse:
    return _board(request, "batchjobs/job_board.html")


def model_jobs(request: HttpRequest, model_id: str) -> HttpResponse:
    model = build_selectors.model_get(user=request.user, model_id=model_id)
    return _board(request, "batchjobs/model_jobs.html", model)


BATCHES_SHOWN = 500
LOG_SHOWN = 256 * 1024  # a log page shows this much of each attempt; the raw log has it all


# An unchanged job's live part is re-rendered this often all the same (its speed and time left move
# on; its durations tick in the browser).
LIVE_REFRESH_S = 60


def _live_etag(request: HttpRequest, job_id) -> str | HttpResponse:
    """The live part's ETag (its version, in one query), or the answer itself when it is known
    without rendering: a reload once the job ended."""
    version = selectors.job_live_version(user=request.user, job_id=job_id)
    if version is None:
        raise Http404("No such batch job.")
    if version[0] not in JobStatus.ACTIVE and not _post_steps_moving(job_id):
        return HttpResponseClientRedirect(request.path)  # ended: reload once, so the actions fit the final state
    # Each browser's refresh falls at its own moment (a phase from its session), so a hundred browsers
    # watching one job do not all re-render it in the same second.
    phase = zlib.crc32((request.session.session_key or "").encode()) % (LIVE_REFRESH_S * 1000) / 1000
    refresh = int((time.time() + phase) // LIVE_REFRESH_S)
    digest = hashlib.sha1(repr((version, refresh)).encode(), usedforsecurity=False)
    return f'"{digest.hexdigest()[:24]}"'


def _post_steps_moving(job_id) -> bool:
    """A scheduled job that succeeded is still watched while its post-steps run."""
    job = BatchJob.objects.select_related("schedule").filter(pk=job_id).first()
    return job is not None and post_step_selectors.steps_active(job)


def _revalidated(response: HttpResponse, etag: str) -> HttpResponse:
    """The browser keeps the live part and asks again with If-None-Match (htmx's requests go
    through its cache); the page itself, at the same address, is another entry (Vary)."""
    response["ETag"] = etag
    response["Cache-Control"] = "private, no-cache"
    patch_vary_headers(response, ("HX-Request", "HX-Target", "Cookie"))
    return response


def job_detail(request: HttpRequest, job_id) -> HttpResponse:
    live = request.htmx and request.htmx.target == "job-live"
    if live:
        etag = _live_etag(request, job_id)
        if isinstance(etag, HttpResponse):
            return etag
        if etag in request.headers.get("If-None-Match", ""):
            return _revalidated(HttpResponseNotModified(), etag)
    job = selectors.job_get(user=request.user, job_id=job_id)
    now = timezone.now()
    batches = list(selectors.batch_list(job=job)[:BATCHES_SHOWN])
    for batch in batches:
        batch.cloudwatch_url = cloudwatch.batch_url(job.pk, batch.index)
    cloudwatch_url = cloudwatch.job_url(job.pk)
    context = {
        "job": job,
        "model": job.model,
        "counts": selectors.batch_counts(job),
        "batches": batches,
        "batches_hidden": job.batches_total > len(batches),
        "events": job.events.all(),
        "config_env": envmask.masked(job.batch_config.env),
        "timeline": selectors.job_timeline(job, now),
        "speed": selectors.job_speed(job, now, selectors.rows_done_since(job, job.started_at)),
        "cloudwatch_url": cloudwatch_url,
        "cancellable": not services.job_cancel_refusal(job),
        "retryable": not services.job_retry_refusal(job),
        "post_steps": list(post_step_selectors.step_list(job=job)),
    }
    context["post_steps_moving"] = post_step_selectors.steps_active(job, context["post_steps"])
    context["polling"] = job.status in JobStatus.ACTIVE or context["post_steps_moving"]
    if context["retryable"]:
        context["repeated_error"] = selectors.repeated_error(job)
    if live:
        if not context["polling"]:  # ended meanwhile
            return HttpResponseClientRedirect(request.path)
        return _revalidated(render(request, "batchjobs/job_detail.html#job-live", context), etag)
    if job.status == JobStatus.SUCCEEDED:
        context["preview"] = selectors.output_preview(job, user=request.user)
    return render(request, "batchjobs/job_detail.html", context)


LOGS_REFRESH_S = 3


def _logs_etag(request: HttpRequest, job_id) -> str | None:
    """The Logs card's ETag while the job runs (None once it ended: the final logs, not polled)."""
    version = selectors.job_logs_version(user=request.user, job_id=job_id)
    if version is None:
        raise Http404("No such batch job.")
    if version[0] not in JobStatus.ACTIVE:
        return None
    digest = hashlib.sha1(repr((version, request.GET.get("batch", ""))).encode(), usedforsecurity=False)
    return f'"{digest.hexdigest()[:24]}"'


def job_logs(request: HttpRequest, job_id) -> HttpResponse:
    """What the model printed, per batch and attempt (newest attempt first). Loaded after the job
    page, so a big log never holds the page up; while the job runs, the card asks again every few
    seconds and is answered 304 Not Modified until a batch starts or ends."""
    etag = _logs_etag(request, job_id) if request.htmx else None
    if etag and etag in request.headers.get("If-None-Match", ""):
        return _revalidated(HttpResponseNotModified(), etag)
    job = selectors.job_get(user=request.user, job_id=job_id)
    batches = list(selectors.batch_list(job=job).values_list("index", "status", "tries"))
    chosen = request.GET.get("batch", "")
    if chosen and not selectors.is_batch_index(chosen):
        return HttpResponseBadRequest(selectors.BATCH_INDEX_RULE, content_type="text/plain")
    if chosen:
        index = int(chosen)
    else:  # the first failed batch, else the first running one, else the first that ran
        tried = [b for b in batches if b[2]]
        index = next(
            (i for status in ("failed", "running") for i, s, _ in tried if s == status), tried[0][0] if tried else None
        )
    attempts = list(selectors.attempt_list(job=job, index=index)) if index is not None else []
    for attempt in attempts:
        attempt.shown = attempt.log[:LOG_SHOWN]
        attempt.clipped = len(attempt.log) > LOG_SHOWN
    context = {
        "job": job,
        "model": job.model,
        "batches": batches,
        "index": index,
        "attempts": attempts,
        "cloudwatch_url": cloudwatch.batch_url(job.pk, index) if index is not None else None,
        "shown_kib": LOG_SHOWN // 1024,
        # While the job runs the card follows it: the batch the user picked, or the default one.
        "polling": job.status in JobStatus.ACTIVE,
        "poll_query": f"?batch={index}" if chosen else "",
        "refresh_s": LOGS_REFRESH_S,
    }
    if request.htmx:
        response = render(request, "batchjobs/job_logs.html#logs", context)
        return _revalidated(response, etag) if etag else response
    return render(request, "batchjobs/job_logs.html", context)


def job_log_raw(request: HttpRequest, job_id, index: int, number: int) -> HttpResponse:
    """One attempt's whole captured log as plain text."""
    job = selectors.job_get(user=request.user, job_id=job_id)
    attempt = selectors.attempt_list(job=job, index=index).filter(number=number).first()
    if attempt is None:
        raise Http404("No such attempt.")
    return HttpResponse(attempt.log, content_type="text/plain; charset=utf-8")


def _sentences_cancel(job) -> list[str]:
    if job.status == JobStatus.QUEUED:
        return [
            f"The job leaves the queue (it is #{job.queue_position}) and never starts.",
            f"No output table is written: {job.output_table} stays free.",
        ]
    counts = selectors.batch_counts(job)
    waiting = counts["pending"] + counts["queued"]
    sentences = []
    if counts["running"]:
        sentences.append(f"Running batches: {counts['running']:,}. They are stopped; their model processes are killed.")
    if waiting:
        sentences.append(f"Batches not yet run: {waiting:,}. They never run.")
    if counts["succeeded"]:
        sentences.append(
            f"Batches already predicted: {counts['succeeded']:,} ({job.rows_done:,} rows). They are discarded."
        )
    return [
        *sentences,
        f"No output table is written: {job.output_table} stays free.",
        "The job ends as Cancelled and its slot goes to the next queued job. This cannot be undone.",
    ]


def _sentences_retry(job) -> list[str]:
    again = list(job.batches.filter(status__in=["failed", "cancelled"]).values_list("rows", flat=True))
    repeated = selectors.repeated_error(job)
    warning = [
        f"Every attempt so far failed with the same error: {first_line(repeated)[:200]} — retrying will likely "
        "fail again unless the data or the build changed."
    ]
    return [
        *(warning if repeated else []),
        f"Batches to run again: {len(again):,} ({sum(again):,} rows), the failed and unfinished ones, with the "
        f"job's own build {job.build.number} and batch config {job.batch_config.deployment_name}.",
        f"Batches that succeeded: {job.batches_succeeded:,}. They are kept and not run again.",
        "The job goes back to the queue and starts when a slot is free.",
        f"If every batch succeeds, the output table {job.output_table} is written with all "
        f"{job.input_rows or 0:,} rows; if one fails again, the job fails again and writes nothing.",
    ]


def _confirm(request: HttpRequest, job, action: str) -> HttpResponse:
    """The confirmation for an action: what exactly will happen, and the button that does it."""
    context = {
        "job": job,
        "action": action,
        "sentences": _sentences_cancel(job) if action == "cancel" else _sentences_retry(job),
        "post_url": reverse(f"batchjobs:job-{action}", args=[job.pk]),
    }
    if request.htmx:
        return render(request, "batchjobs/job_confirm.html#confirm", context)
    return render(request, "batchjobs/job_confirm.html", context)


def _job_action(request: HttpRequest, job_id, action: str, *, refusal, act, done) -> HttpResponse:
    """GET: what the action will do and the button that does it (or why it is not offered: the
    service's own check); POST: do it, then back to the job page with what happened."""
    job = selectors.job_get(user=request.user, job_id=job_id)
    if request.method == "GET":
        reason = refusal(job)
        if reason:
            messages.info(request, reason)
            return _back_to(request, job)
        return _confirm(request, job, action)
    try:
        job = act(job)
        messages.success(request, done(job))
    except ValidationError as exc:
        messages.error(request, " ".join(m for ms in exc.message_dict.values() for m in ms))
    return redirect(job_url(job))


@require_http_methods(["GET", "POST"])
def job_cancel(request: HttpRequest, job_id) -> HttpResponse:
    return _job_action(
        request,
        job_id,
        "cancel",
        refusal=services.job_cancel_refusal,
        act=lambda job: services.job_cancel(job=job),
        done=lambda job: f"Job {job.status}." if job.status == JobStatus.CANCELLED else "Cancelling the job…",
    )


@require_http_methods(["GET", "POST"])
def job_retry(request: HttpRequest, job_id) -> HttpResponse:
    return _job_action(
        request,
        job_id,
        "retry",
        refusal=services.job_retry_refusal,
        act=lambda job: services.job_retry(job=job, requested_by=request.user),
        done=lambda job: "Retry requested: the failed batches run again when the job gets a slot.",
    )


@require_http_methods(["POST"])
def job_retry_post_steps(request: HttpRequest, job_id) -> HttpResponse:
    """Run a scheduled job's failed post-step and the ones after it again (appends already made are
    recognised, never made twice)."""
    job = selectors.job_get(user=request.user, job_id=job_id)
    try:
        post_steps.steps_retry(job=job)
        messages.success(request, "Retrying the post-steps: the failed one and those after it run again.")
    except ValidationError as exc:
        messages.error(request, " ".join(m for ms in exc.message_dict.values() for m in ms))
    return redirect(job_url(job))


def _back_to(request: HttpRequest, job) -> HttpResponse:
    return HttpResponseClientRedirect(job_url(job)) if request.htmx else redirect(job_url(job))


def event_list(request: HttpRequest) -> HttpResponse:
    """Events users query to find a job: 402 started, 400 succeeded, 401 failed."""
    filters = EventFilter(request.GET, selectors.event_list(user=request.user))  # no filter: every event
    form = filters.form
    events = filters.qs if filters.is_valid() else JobEvent.objects.none()
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "query": query.urlencode(), "events_source": settings.EVENTS_SOURCE}
    if request.htmx and request.htmx.target == "event-table":
        return render(request, "batchjobs/event_list.html#event-table", context)
    return render(request, "batchjobs/event_list.html", context)
