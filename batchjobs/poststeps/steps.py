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

from batchjobs.choices import JobStatus, PostStepKind, PostStepStatus
from batchjobs.models import BatchJob, PostStep, Schedule, ScheduleRun
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


def txn_id(job: BatchJob, kind: str) -> str:
    """The append's transaction id: one per job and kind of step, so a retried step is recognised.
    Keyed on the job's UUID, unique across metadata databases: a step's database id is not (a
    restored database, or two platforms on one lake, reuse ids, and a reused one would be taken
    for an append already made)."""
    return f"mlplatform-{job.pk}-{kind}"


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


def _claim_for_team(job: BatchJob, catalog: Catalog, name: TableName, what: str) -> bool:
    """The target is the model's team's (the schedule's, as it is now): a table the platform did not
    make, or another team's, is refused; a new one is recorded for the team first, insert-only (so a
    crash never leaves an unowned table, and of two teams naming one new table exactly one gets it).
    True when it was new."""
    team = job.model.team
    refusal = table_selectors.append_refusal(team, catalog, name, what=what)
    if refusal:
        raise StepError(refusal)
    if table_selectors.team_owns(team, name):
        return False
    created_by = job.schedule.created_by if job.schedule else job.requested_by
    if table_services.table_claim(name=str(name), created_by=created_by, team=team):
        return True
    if table_selectors.team_owns(team, name):  # another run of the team's recorded it meanwhile
        return False
    raise StepError(table_selectors.taken(name))


def _append(
    step: PostStep, job: BatchJob, target: str, what: str, schema: pa.Schema, batches: Iterator[pa.RecordBatch]
) -> int | None:
    catalog, name = _resolve(target, what)
    new = _claim_for_team(job, catalog, name, f"an {what}" if what[0] in "aeiou" else f"a {what}")
    try:
        return catalog.append_once(
            name, schema, batches, txn_id=txn_id(job, step.kind), key_column="job_id", key_value=str(job.pk)
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


# A succeeded scheduled job with no post-steps yet gets them from the reaper within this long
# (its job_ended signal was lost): until then keep-last spares its output.
LATE_CREATE_WINDOW = datetime.timedelta(days=1)


def keep_last(step: PostStep, job: BatchJob, renew: Renew) -> Outcome:
    """Drop the output tables of the schedule's succeeded runs older than the newest N: only tables
    its own runs made (their record names the job), and never one whose run's post-steps have not
    all succeeded (its rows may still be due in the history table), nor a table any schedule reads
    or appends to."""
    schedule = job.schedule
    if schedule is None:
        return Outcome(None, "The job's schedule was deleted; no output was dropped.")
    keep = int(step.target)
    runs = BatchJob.objects.filter(schedule=schedule, status=JobStatus.SUCCEEDED).order_by(
        "-finished_at", "-created_at"
    )
    kept = set(runs.values_list("output_table", flat=True)[:keep])
    older = list(runs.values_list("pk", "output_table", "finished_at")[keep:])
    made = set(TableRecord.objects.filter(Q(job_id__in=[pk for pk, _, _ in older])).values_list("name", "job_id"))
    named = _named_by_schedules()
    pending, with_steps = _unfinished(step, [pk for pk, _, _ in older])
    dropped, spared = [], []
    for pk, table, finished_at in older:
        if table in kept or (table, pk) not in made:
            continue  # gone already, or not made by this run
        if table in named:
            spared.append(f"{table} ({named[table]})")
            continue
        if pk in pending or (pk not in with_steps and _may_get_steps(finished_at)):
            spared.append(f"{table} (its run's post-steps have not all succeeded)")
            continue
        renew()
        catalog, name = _resolve(table, "output table")
        try:
            catalog.drop(name)
        except TableNotFoundError:
            pass  # dropped by hand since: only its record is left
        table_services.table_forget(name=table)
        dropped.append(table)
    return Outcome(None, _keep_last_detail(keep, len(kept), older, dropped, spared))


def _unfinished(step: PostStep, job_ids: list) -> tuple[set, set]:
    """Of the jobs, those whose post-steps are not all succeeded (this step aside), and those with any."""
    rows = list(PostStep.objects.filter(job_id__in=job_ids).exclude(pk=step.pk).values_list("job_id", "status"))
    return {job_id for job_id, status in rows if status != PostStepStatus.SUCCEEDED}, {job_id for job_id, _ in rows}


def _may_get_steps(finished_at: datetime.datetime | None) -> bool:
    """A run with no post-steps may still get them from the reaper (its signal was lost)."""
    return finished_at is not None and timezone.now() - finished_at < LATE_CREATE_WINDOW


def _named_by_schedules() -> dict[str, str]:
    """Every table a schedule reads or appends to (any schedule's, any team's), and which it is."""
    named = {}
    roles = (("input_table", "a schedule's input table"), ("history_table", "a schedule's history table"))
    roles += (("events_table", "a schedule's events table"),)
    for field, role in roles:
        for text in Schedule.objects.exclude(**{field: ""}).values_list(field, flat=True).distinct():
            named.setdefault(_full(text), role)
    return named


def _shown(tables: list[str]) -> str:
    return ", ".join(tables[:10]) + (f" and {len(tables) - 10} more" if len(tables) > 10 else "")


def _keep_last_detail(keep: int, kept: int, older: list, dropped: list[str], spared: list[str]) -> str:
    if not older:
        return f"Nothing to drop: the schedule has {kept} output(s), within the newest {keep} kept."
    if dropped:
        text = f"Dropped {len(dropped)} older output table(s), keeping the newest {keep}: {_shown(dropped)}."
    elif spared:
        text = f"Nothing dropped beyond the newest {keep}."
    else:
        text = f"Nothing to drop: the outputs older than the newest {keep} are gone already."
    if spared:
        text += f" Spared {len(spared)} older one(s): {_shown(spared)}."
    return text


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
