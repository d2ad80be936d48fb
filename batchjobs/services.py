"""Writes for batch jobs: trigger (after every pre-flight check), cancel, retry; and the
"Try on 100 rows" run. The PREDICT tab, the REST API and `manage.py batch_predict` call these."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from batchjobs import dispatch, estimates, transitions
from batchjobs.choices import BatchStatus, JobStatus
from batchjobs.models import BatchJob
from batchjobs.pipeline import finish, staging
from builds import selectors as build_selectors
from builds.choices import BuildStatus
from builds.models import BatchConfig, MLModel
from builds.runtime import starter
from builds.runtime.process import ModelProcessError
from mlplatform.warehouse import WarehouseError
from tables import selectors as table_selectors

OUTPUT_TAKEN = "An unfinished batch job already writes to the output table {name}; choose another name."


@dataclass
class Preflight:
    """What the checks found: errors by field, and what a job needs when there are none."""

    errors: dict[str, list[str]] = field(default_factory=dict)
    config: BatchConfig | None = None
    input_table: str = ""
    output_table: str = ""
    input_rows: int | None = None

    def add(self, key: str, message: str) -> None:
        messages = self.errors.setdefault(key, [])
        if message not in messages:  # two checks can reach one sentence ("taken")
            messages.append(message)

    @property
    def ok(self) -> bool:
        return not self.errors


def job_preflight(*, model: MLModel, input_table: str, output_table: str) -> Preflight:
    """Every pre-flight check at once, each failure a sentence naming the table, column or limit."""
    result = Preflight()
    config = build_selectors.active_batch_config(model=model)
    if config is None:
        result.add("model_id", f"The model {model.model_id} has no active batch config: set one on a build first.")
    elif config.build.status != BuildStatus.SUCCEEDED:
        result.add("model_id", f"The active batch config uses build {config.build.number}, which has not succeeded.")
    result.config = config
    input_ref = output_ref = None
    for key, text in (("input_table", input_table), ("output_table", output_table)):
        if not str(text or "").strip():
            result.add(key, "Give a table name (catalog.schema.table).")
            continue
        try:
            ref = table_selectors.resolve(text, field=key)
        except ValidationError as exc:
            result.errors.setdefault(key, []).extend(exc.message_dict[key])
            continue
        if key == "input_table":
            input_ref = ref
        else:
            output_ref = ref
    if input_ref:
        result.input_table = str(input_ref[1])
        _check_input(result, input_ref, config, team=model.team)
    if output_ref:
        result.output_table = str(output_ref[1])
        _check_output(result, output_ref, team=model.team)
    if input_ref and output_ref and result.input_table == result.output_table:
        result.add("output_table", "The output table must differ from the input table.")
    return result


def _check_input(result: Preflight, ref, config: BatchConfig | None, *, team) -> None:
    """A job reads only tables its model's team may read: another team's table does not exist for it."""
    catalog, name = ref
    try:
        if not catalog.exists(name) or not table_selectors.team_may_read(team, name):
            result.add("input_table", f"The input table {name} does not exist.")
            return
        columns = [c.name for c in catalog.columns(name)]
        rows = catalog.row_count(name)
    except WarehouseError as exc:
        result.add("input_table", f"The input table {name} cannot be read: {exc}")
        return
    result.input_rows = rows
    if staging.ORDINAL in columns:
        result.add(
            "input_table",
            f"The input table {name} has a column named {staging.ORDINAL}, which the platform uses itself; rename it.",
        )
    if rows > settings.MAX_INPUT_ROWS:
        result.add(
            "input_table",
            f"The input table {name} has {rows:,} rows; the limit (MAX_INPUT_ROWS) is {settings.MAX_INPUT_ROWS:,}.",
        )
    if config is None or not config.build.schema:
        return
    features = [f["name"] for f in config.build.schema["features"]]
    predictions = [p["name"] for p in config.build.schema["predictions"]]
    missing = [f for f in features if f not in columns]
    if missing:
        result.add(
            "input_table",
            f"The input table {name} lacks the feature column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} that build {config.build.number} needs.",
        )
    clashing = [p for p in predictions if p in columns]
    if clashing:
        result.add(
            "input_table",
            f"The input table {name} already has a column named like a prediction: "
            f"{', '.join(clashing)}; rename or drop it.",
        )


def _check_output(result: Preflight, ref, *, team) -> None:
    catalog, name = ref
    try:
        if catalog.exists(name):
            if not table_selectors.team_may_read(team, name):  # another team's: not said whose, or what
                result.add("output_table", table_selectors.taken(name))
            else:
                result.add("output_table", f"The output table {name} already exists; choose a new name.")
    except WarehouseError as exc:
        result.add("output_table", f"The output table's catalog cannot be read: {exc}")
    refusal = _output_in_use(str(name), team=team)
    if refusal:
        result.add("output_table", refusal)


def _output_in_use(name: str, *, team) -> str:
    """Why an unfinished job's output table may not be named ("" when none writes to it). Another
    team's job is not said to exist (its page is a 404 for this team): the name is just taken."""
    writer = BatchJob.objects.filter(output_table=name, status__in=JobStatus.ACTIVE).values("model__team").first()
    if writer is None:
        return ""
    if writer["model__team"] != team.pk:
        return table_selectors.taken(name)
    return OUTPUT_TAKEN.format(name=name)


def job_trigger(
    *, model: MLModel, input_table: str, output_table: str, requested_by: AbstractBaseUser, schedule=None
) -> BatchJob:
    """Check everything, save the job queued, and ask for it to be admitted. Nothing heavy here.
    A schedule's run passes its schedule (the job is then a run of it)."""
    check = job_preflight(model=model, input_table=input_table, output_table=output_table)
    if not check.ok:
        raise ValidationError(check.errors)
    config = check.config
    try:
        with transaction.atomic():
            job = BatchJob.objects.create(
                model=model,
                build=config.build,
                batch_config=config,
                input_table=check.input_table,
                output_table=check.output_table,
                input_rows=check.input_rows,
                parallelism=starter.parallelism_for(config),
                requested_by=requested_by,
                schedule=schedule,
            )
            dispatch.send_admit()
    except IntegrityError:  # the database reserved the output table for a concurrent trigger
        refusal = _output_in_use(check.output_table, team=model.team) or table_selectors.taken(check.output_table)
        raise ValidationError({"output_table": [refusal]}) from None
    return job


def job_cancel_refusal(job: BatchJob) -> str:
    """Why this job cannot be cancelled ("" when it can): the job page offers Cancel by this check."""
    if job.status in (JobStatus.QUEUED, JobStatus.RUNNING):
        return ""
    return (
        f"The job is {job.get_status_display().lower()}: there is nothing to cancel "
        "(only a queued or running job can be cancelled)."
    )


def job_cancel(*, job: BatchJob) -> BatchJob:
    """Cancel a queued job at once; a running one stops its batches (model processes are killed)."""
    if transitions.job_cancel_queued(job.pk):
        staging.remove_job(job.pk)
    elif transitions.job_cancel_running(job.pk):
        transitions.batches_cancel_waiting(job.pk)
        finish.finish_cancelled_if_idle(job.pk)
    else:
        job.refresh_from_db()
        if job.status not in (JobStatus.CANCELLING, JobStatus.CANCELLED):  # cancelling twice is no error
            raise ValidationError({"status": [job_cancel_refusal(job)]})
    job.refresh_from_db()
    return job


NOT_RETRYABLE = (
    "This job cannot be retried: it has no kept batches to run again (shards are kept {hours} h). Trigger it again."
)
RETRIED = (BatchStatus.FAILED, BatchStatus.CANCELLED)


def job_retry_refusal(job: BatchJob) -> str:
    """Why this job cannot be retried ("" when it can): the job page offers Retry by this check."""
    if job.status != JobStatus.FAILED:
        return f"The job is {job.get_status_display().lower()}: only a failed job can be retried."
    kept = job.extracted_at is not None and not job.staging_removed
    if not kept or not job.batches.filter(status__in=RETRIED).exists():
        return NOT_RETRYABLE.format(hours=settings.STAGING_RETENTION_H)
    return ""


def job_retry(*, job: BatchJob, requested_by: AbstractBaseUser) -> BatchJob:
    """Run only the failed batches of a failed job again (its shards are kept), then commit."""
    refusal = job_retry_refusal(job)
    if refusal:
        raise ValidationError({"status": [refusal]})
    failed = list(job.batches.filter(status__in=RETRIED).values_list("index", flat=True))
    check = job_preflight(model=job.model, input_table=job.input_table, output_table=job.output_table)
    output_errors = check.errors.get("output_table", [])
    if output_errors:
        raise ValidationError({"output_table": output_errors})
    try:
        with transaction.atomic():
            if not transitions.job_requeue_for_retry(job.pk):
                raise ValidationError({"status": ["The job changed meanwhile; reload and try again."]})
            transitions.batches_reset_for_retry(job.pk, failed)
            dispatch.send_admit()
    except IntegrityError:
        raise ValidationError({"output_table": [OUTPUT_TAKEN.format(name=job.output_table)]}) from None
    job.refresh_from_db()
    return job


@dataclass
class TrialResult:
    columns: list[str]
    rows: list[list]
    input_rows: int
    ms_per_row: float
    peak_memory_mib: float
    log: str
    notes: list[str]
    start_seconds: float = 0.0  # starting the model process and loading the build
    leading: int = 0  # the first this many columns are the predictions
    projection: estimates.Projection | None = None  # the whole input, at this pace


TRIAL_ROWS = 100


@dataclass
class TrialStep:
    """A step of "Try on 100 rows" as it begins (the page shows them while it waits)."""

    key: str
    label: str


def job_try(*, model: MLModel, input_table: str) -> TrialResult:
    """ "Try on 100 rows": the active build, in a model process, on the first rows of the input."""
    for step in job_try_steps(model=model, input_table=input_table):
        if isinstance(step, TrialResult):
            return step
    raise AssertionError("job_try_steps ended without a result")


def job_try_steps(*, model: MLModel, input_table: str) -> Iterator[TrialStep | TrialResult]:
    """job_try, step by step: yields each TrialStep as it begins, then the TrialResult (its columns
    and rows in preview order: predictions first, numbers rounded). ValidationError on a bad input
    or a model that fails."""
    yield TrialStep("check", "Checking the input table")
    check = job_preflight(model=model, input_table=input_table, output_table="")
    errors = {k: v for k, v in check.errors.items() if k in ("model_id", "input_table")}
    if errors:
        raise ValidationError(errors)
    config = check.config
    yield TrialStep("read", f"Reading the first {TRIAL_ROWS} rows")
    catalog, name = table_selectors.resolve(input_table, field="input_table")
    head = catalog.head(name, n=TRIAL_ROWS)
    head = head.append_column(staging.ORDINAL, pa.array(range(head.num_rows), type=pa.int64()))
    workdir = settings.DATA_DIR / "work" / f"try-{uuid.uuid4().hex}"
    build = config.build
    parallelism = starter.parallelism_for(config)
    try:
        yield TrialStep("start", "Starting the model")
        began = time.monotonic()
        process, load = starter.start_model(
            build,
            workdir=workdir,
            resources=starter.resources_for(config, parallelism),
            env=config.env,
            log_cap=64 * 1024,
            timeout=120,
            allow_network=config.allow_network,
        )
        start_seconds = time.monotonic() - began
        with process:
            yield TrialStep("predict", f"Predicting {head.num_rows} rows")
            pq.write_table(head, process.input_dir / "input.parquet")
            reply = process.call(
                {
                    "op": "predict",
                    "input": process.hand_over(process.input_dir / "input.parquet"),
                    "output": process.new_output(),
                    "format": "parquet",
                    "max_row_bytes": settings.MAX_ROW_BYTES,
                    "types": starter.prediction_types(build),
                    "pace": bool(check.input_rows),  # measure at scale, for the projection
                },
                timeout=120,
            )
            output = pq.read_table(process.output_path).drop_columns([staging.ORDINAL])
        joined = head.drop_columns([staging.ORDINAL])
        for column in output.column_names:
            joined = joined.append_column(column, output.column(column))
    except ModelProcessError as exc:
        raise ValidationError({"input_table": [f"The model failed on the first {head.num_rows} rows: {exc}"]}) from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    rows = joined.num_rows
    ms_per_row = (reply.result["predict_seconds"] * 1000 / rows) if rows else 0.0
    paced = reply.result.get("per_row_seconds")
    columns, values = table_selectors.readable_preview(
        joined.column_names,
        [[table_selectors.json_safe(v) for v in row.values()] for row in joined.to_pylist()],
        first=output.column_names,
    )
    projection = None
    if rows and check.input_rows:
        projection = estimates.project_job(
            rows=check.input_rows,
            ms_per_row=ms_per_row if paced is None else paced * 1000,
            measured_rows=rows if paced is None else reply.result["paced_rows"],
            ms_per_call=0.0 if paced is None else reply.result["call_seconds"] * 1000,
            start_seconds=start_seconds,
            parallelism=parallelism,
            bytes_per_row=head.nbytes / max(head.num_rows, 1),
        )
    yield TrialResult(
        columns=columns,
        rows=values,
        input_rows=rows,
        ms_per_row=ms_per_row,
        peak_memory_mib=reply.result["peak_rss_kib"] / 1024,
        log=(load.log + reply.log)[: 64 * 1024],
        notes=reply.result.get("notes", []),
        start_seconds=start_seconds,
        leading=output.num_columns,
        projection=projection,
    )
