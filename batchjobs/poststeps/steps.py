"""The work of each kind of post-step: plain functions of (step, job, renew) that return how many
rows they wrote and a one-sentence detail, or raise StepError with a sentence for the user.

`renew` is called as the rows stream by: it stops a step whose lease was taken over (it touches no
database: a lake writer pulls the stream on its own threads). The output is read in batches, so
memory stays bounded whatever its size.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass

import pyarrow as pa
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone

from batchjobs.choices import JobStatus, PostStepKind
from batchjobs.models import BatchJob, PostStep, ScheduleRun
from batchjobs.selectors import prediction_names
from mlplatform.warehouse import Catalog, TableName, TableNotFoundError
from tables import selectors as table_selectors
from tables import services as table_services
from tables.models import TableRecord

# The `src` of synthetic events (the platform's own job events have EVENTS_SOURCE).
SYNTHETIC_EVENTS_SOURCE = 70
HISTORY_COLUMNS = ("job_id", "run_at")
EVENT_COLUMNS = ("src", "job_id", "date_created")
UTC_TIME = pa.timestamp("us", tz="UTC")


class StepError(Exception):
    """A post-step cannot do its work; the message is the sentence the job page shows."""


@dataclass
class Outcome:
    rows: int | None
    detail: str


Renew = Callable[[], None]


def txn_id(step: PostStep) -> str:
    """The append's transaction id: one per step row, so a retried step is recognised."""
    return f"mlplatform-post-step-{step.pk}"


def _resolve(text: str, what: str) -> tuple[Catalog, TableName]:
    try:
        return table_selectors.resolve(text)
    except ValidationError as exc:
        raise StepError(f"The {what} {text!r} is not a valid table name: {exc.messages[0]}") from None


def _output(job: BatchJob) -> tuple[Catalog, TableName, pa.Schema]:
    catalog, name = _resolve(job.output_table, "output table")
    try:
        return catalog, name, catalog.arrow_schema(name)
    except TableNotFoundError:
        raise StepError(f"The job's output table {name} no longer exists, so there is nothing to append.") from None


def _claim_for_team(job: BatchJob, catalog: Catalog, name: TableName) -> bool:
    """The target belongs to the model's team (the schedule's, as it is now): refuse another team's
    table; a table made now is recorded for the team first (so a crash never leaves an unowned
    table). True when it was new."""
    team = job.model.team
    if not table_selectors.team_may_read(team, name):
        raise StepError(table_selectors.taken(name))
    if catalog.exists(name) or TableRecord.objects.filter(name=str(name)).exists():
        return False
    created_by = job.schedule.created_by if job.schedule else job.requested_by
    table_services.table_record(name=str(name), created_by=created_by, team=team)
    return True


def _append(
    step: PostStep, job: BatchJob, target: str, what: str, schema: pa.Schema, batches: Iterator[pa.RecordBatch]
) -> int | None:
    catalog, name = _resolve(target, what)
    new = _claim_for_team(job, catalog, name)
    try:
        return catalog.append_once(
            name, schema, batches, txn_id=txn_id(step), key_column="job_id", key_value=str(job.pk)
        )
    except BaseException:
        if new and not catalog.exists(name):  # nothing was made after all
            table_services.table_forget(name=str(name))
        raise


def run_at(job: BatchJob) -> datetime.datetime:
    """When the run was due (its schedule's due time), else when the job finished."""
    due = ScheduleRun.objects.filter(job=job, manual=False).values_list("due_at", flat=True).first()
    return due or job.finished_at or timezone.now()


def append_history(step: PostStep, job: BatchJob, renew: Renew) -> Outcome:
    """Append the output's rows, with the run's job_id and run_at, to the history table."""
    catalog, output, columns = _output(job)
    clash = [c for c in HISTORY_COLUMNS if c in columns.names]
    if clash:
        raise StepError(
            f"The output has a column named {clash[0]}, which the history table adds itself; rename it in the model."
        )
    schema = columns.append(pa.field("job_id", pa.string())).append(pa.field("run_at", UTC_TIME))
    when = run_at(job)

    # Opened here, not inside the stream: a lake writer pulls the stream on its own threads.
    source = catalog.read_batches(output)

    def batches() -> Iterator[pa.RecordBatch]:
        with closing(source):
            for batch in source:
                renew()
                n = batch.num_rows
                yield pa.RecordBatch.from_arrays(
                    [*batch.columns, pa.array([str(job.pk)] * n, pa.string()), pa.array([when] * n, UTC_TIME)],
                    schema=schema,
                )

    rows = _append(step, job, step.target, "history table", schema, batches())
    if rows is None:
        return Outcome(job.output_rows, f"The {job.output_rows or 0:,} rows were already in {step.target}.")
    return Outcome(rows, f"Appended {rows:,} rows to {step.target} with job_id {job.pk}.")


def publish_events(step: PostStep, job: BatchJob, renew: Renew) -> Outcome:
    """One synthetic event per output row: src 70, the entity key, the predictions, job_id, date_created."""
    if job.schedule is None:
        raise StepError("The job's schedule was deleted, so its event key column is unknown.")
    key = job.schedule.event_key_column
    if not key:
        raise StepError("The schedule names no event key column; set one to publish events.")
    if key in EVENT_COLUMNS:
        raise StepError(f"The event key column cannot be {key}: every event has that column already.")
    catalog, output, columns = _output(job)
    predictions = [p for p in prediction_names(job) if p != key]
    missing = [c for c in (key, *predictions) if c not in columns.names]
    if missing:
        raise StepError(
            f"The output table {output} has no column {', '.join(missing)} (its columns: {', '.join(columns.names)})."
        )
    chosen = [key, *predictions]
    schema = pa.schema(
        [
            pa.field("src", pa.int32()),
            *(columns.field(c) for c in chosen),
            pa.field("job_id", pa.string()),
            pa.field("date_created", UTC_TIME),
        ]
    )
    created = timezone.now()

    source = catalog.read_batches(output, columns=chosen)

    def batches() -> Iterator[pa.RecordBatch]:
        with closing(source):
            for batch in source:
                renew()
                n = batch.num_rows
                yield pa.RecordBatch.from_arrays(
                    [
                        pa.array([SYNTHETIC_EVENTS_SOURCE] * n, pa.int32()),
                        *batch.columns,
                        pa.array([str(job.pk)] * n, pa.string()),
                        pa.array([created] * n, UTC_TIME),
                    ],
                    schema=schema,
                )

    rows = _append(step, job, step.target, "events table", schema, batches())
    if rows is None:
        return Outcome(job.output_rows, f"The {job.output_rows or 0:,} events were already in {step.target}.")
    return Outcome(rows, f"Published {rows:,} events (src {SYNTHETIC_EVENTS_SOURCE}, key {key}) into {step.target}.")


def keep_last(step: PostStep, job: BatchJob, renew: Renew) -> Outcome:
    """Drop the output tables of the schedule's succeeded runs older than the newest N: only tables
    its own runs made (their record names the job) and never one of its other tables."""
    schedule = job.schedule
    if schedule is None:
        return Outcome(None, "The job's schedule was deleted; no output was dropped.")
    keep = int(step.target)
    runs = BatchJob.objects.filter(schedule=schedule, status=JobStatus.SUCCEEDED).order_by(
        "-finished_at", "-created_at"
    )
    kept = list(runs.values_list("output_table", flat=True)[:keep])
    older = list(runs.values_list("pk", "output_table")[keep:])
    spared = set(kept) | {_full(t) for t in (schedule.input_table, schedule.history_table, schedule.events_table) if t}
    made = set(TableRecord.objects.filter(Q(job_id__in=[pk for pk, _ in older])).values_list("name", "job_id"))
    dropped = []
    for pk, table in older:
        if table in spared or (table, pk) not in made:
            continue  # gone already, or not made by this run
        renew()
        catalog, name = _resolve(table, "output table")
        try:
            catalog.drop(name)
        except TableNotFoundError:
            pass  # dropped by hand since: only its record is left
        table_services.table_forget(name=table)
        dropped.append(table)
    if not older:
        return Outcome(None, f"Nothing to drop: the schedule has {len(kept)} output(s), within the newest {keep} kept.")
    if not dropped:
        return Outcome(None, f"Nothing to drop: the outputs older than the newest {keep} are gone already.")
    shown = ", ".join(dropped[:10]) + (f" and {len(dropped) - 10} more" if len(dropped) > 10 else "")
    return Outcome(None, f"Dropped {len(dropped)} older output table(s), keeping the newest {keep}: {shown}.")


def _full(text: str) -> str:
    try:
        return str(table_selectors.resolve(text)[1])
    except ValidationError:
        return text


WORK: dict[str, Callable[[PostStep, BatchJob, Renew], Outcome]] = {
    PostStepKind.HISTORY: append_history,
    PostStepKind.EVENTS: publish_events,
    PostStepKind.KEEP_LAST: keep_last,
}
