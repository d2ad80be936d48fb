#!/usr/bin/env python3
"""Benchmark of the job board and the job API on a big history; prints its figures.

    .venv/bin/python bench/board.py [--database-url postgresql://postgres@127.0.0.1:5432/test]
        [--jobs 10000] [--batches-per-job 20] [--requests 200] [--keep]

1. A fresh data dir (MLPLATFORM_DATA_DIR=<tmp>) and a fresh database: SQLite in that dir by
   default; with --database-url postgresql://… the database `bench_board` on that server, dropped
   and created anew (the database of the URL is only used to run DROP/CREATE DATABASE).
   `migrate` runs in-process.
2. Seeding, in one transaction: a team, four users in it, five models (a build and an active batch
   config each), --jobs jobs over the last 60 days (mostly succeeded, some failed or cancelled,
   20 queued and 5 running at the top of the board), --batches-per-job batches for each job that
   got past extraction, one attempt (with a log) per batch of the newest 500 jobs, and the 402 and
   400/401 events. Rows go in as plain INSERTs (SQLite) or COPY (PostgreSQL): bulk_create took
   most of a minute. On PostgreSQL, ANALYZE follows, as autovacuum would do within a minute.
3. Server time, in-process with django.test.Client logged in as a team member (DEBUG off): 5
   warm-up requests per endpoint (their SQL queries are counted), then --requests timed ones.
   p50, p95 and max in ms, against the target of the issue: the board's and the job API's server
   time p95 <= 150 ms.

The board's filters (model, user, since, q) and the job page print the status they answer with
when it is not 200; the board, its paging, its htmx refresh and the job API must answer 200 (286,
"stop polling", for the refresh). Exits 1 when one of those does not, or when a target is missed.
Figures drift on a shared 2-core machine: the load average is printed beside them.
"""

from __future__ import annotations

import argparse
import csv
import functools
import io
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pgdb  # bench/pgdb.py, beside this script

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PG_DATABASE = "bench_board"
SEED = 20_240_601
DAYS = 60
CHUNK_ROWS = 50_000  # batch rows held in memory before they are written
MODELS = ["fraud-scoring", "churn-forecast", "credit-limit", "ltv-estimate", "address-matching"]
USERS = ["alice", "bob", "carol", "dave"]  # all in the team; alice is the one logged in
QUEUED, RUNNING = 20, 5
ATTEMPT_JOBS = 500  # the newest jobs whose batches get an attempt row with a log
PARALLELISM = 2
WARMUP = 5
TARGET_MS = 150.0
LOG_LINE = "2024-06-01 12:00:00 INFO model: scored chunk {i} of {n} ({rows:,} rows) in {s:.2f} s\n"
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/srv/model/model.py", line 88, in predict\n'
    '    amounts = df["amount"].astype(float)\n'
    "ValueError: could not convert string to float: 'n/a'"
)

# Settings the platform reads from the environment: the run gets every default, in its own data
# dir, except the database it is given.
SETTINGS_ENV = (
    "DJANGO_SETTINGS_MODULE DATABASE_URL CELERY_BROKER_URL WAREHOUSE_CATALOGS WAREHOUSE_DEFAULT_CATALOG "
    "STAGING_URL ARTIFACTS_URL DJANGO_DEBUG DJANGO_ALLOWED_HOSTS LOG_LEVEL AWS_REGION CLOUDWATCH_LOG_GROUP"
).split()


# --- the database ------------------------------------------------------------------------------


def fresh_postgres(url: str) -> str:
    """The database bench_board on the server of ``url``, dropped and created anew: its URL."""
    return pgdb.create_database(url, PG_DATABASE, replace=True)


def django_setup(data_dir: Path, database_url: str) -> None:
    for name in SETTINGS_ENV:
        os.environ.pop(name, None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "mlplatform.settings"
    os.environ["MLPLATFORM_DATA_DIR"] = str(data_dir)
    os.environ["DATABASE_URL"] = database_url
    os.environ["DJANGO_DEBUG"] = "false"
    os.environ["DJANGO_ALLOWED_HOSTS"] = "testserver"  # django.test.Client's host
    os.environ["LOG_LEVEL"] = "WARNING"
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    assert not settings.DEBUG
    call_command("migrate", verbosity=0, interactive=False)


# --- seeding -----------------------------------------------------------------------------------


def insert_rows(model, rows: list[dict]) -> None:
    """Plain dicts (attname -> value) into the model's table: COPY on PostgreSQL, executemany on SQLite.

    Not bulk_create: building instances and compiling SQL for 240,000 rows took most of a minute, and
    it overwrites the seeded times of auto_now_add fields (created_at) with now."""
    from django.db import connection, models

    if not rows:
        return
    names = list(rows[0])
    fields = [model._meta.get_field(name) for name in names]
    adapters = []
    for f in fields:  # UUIDs and datetimes as this database stores them; a job's id repeats in its batches
        if isinstance(f, models.DateTimeField):
            adapters.append(connection.ops.adapt_datetimefield_value)
        elif isinstance(f, models.UUIDField | models.ForeignKey):
            adapters.append(functools.cache(functools.partial(f.get_db_prep_save, connection=connection)))
        elif isinstance(f, models.JSONField):  # a batch's source (a list) as JSON text (get_db_prep_save
            adapters.append(functools.partial(json.dumps, cls=f.encoder))  # gives a psycopg adapter on PostgreSQL)
        else:
            adapters.append(None)
    values = [
        [adapt(row[name]) if adapt else row[name] for name, adapt in zip(names, adapters, strict=True)] for row in rows
    ]
    table = connection.ops.quote_name(model._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            text = io.StringIO()
            csv.writer(text, quoting=csv.QUOTE_NOTNULL).writerows(values)  # None unquoted: NULL
            text.seek(0)
            cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv)", text)
        else:
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})", values)


@dataclass
class Seeded:
    user: object
    job_ids: list = field(default_factory=list)  # newest first
    model_ids: list = field(default_factory=list)
    seconds: float = 0.0


def seed_catalog() -> tuple[list, list]:
    """The team, its users and its models, each with a build and an active batch config."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from builds.choices import ArtifactKind, BuildStatus
    from builds.models import BatchConfig, Build, InstanceType, MLModel

    team = Group.objects.create(name="fraud-team")
    users = []
    for name in USERS:
        user = get_user_model()(username=name, email=f"{name}@example.com")
        user.set_unusable_password()  # hashing passwords would take longer than the rest of the seeding
        user.save()
        user.groups.add(team)
        users.append(user)
    instance_type = InstanceType.objects.get(name="ml.m5.large")
    configs = []
    for model_id in MODELS:
        model = MLModel.objects.create(model_id=model_id, description=f"The {model_id} model", team=team)
        build = Build.objects.create(
            model=model,
            number=1,
            status=BuildStatus.SUCCEEDED,
            artifact_kind=ArtifactKind.SOURCE,
            artifact_path=f"builds/{model_id}/1/artifact.zip",
            artifact_name="model.zip",
            artifact_size=123_456,
            artifact_sha256="0" * 64,
            entrypoint="model:Model",
            schema={
                "features": [{"name": "amount", "type": "float"}],
                "predictions": [{"name": "score", "type": "float"}],
            },
        )
        configs.append(
            BatchConfig.objects.create(
                model=model, build=build, deployment_name=f"{model_id}-batch", instance_type=instance_type
            )
        )
    return users, configs


def defaults(model) -> dict:
    """A row of the model's table with every column at its default (no primary key)."""
    return {f.attname: f.get_default() for f in model._meta.concrete_fields if not f.primary_key}


def seed(jobs: int, batches_per_job: int) -> Seeded:
    from django.db import connection, transaction
    from django.utils import timezone

    from batchjobs.choices import BatchStatus, EventId, JobPhase, JobStatus
    from batchjobs.models import Batch, BatchAttempt, BatchJob, JobEvent

    rng = random.Random(SEED)
    started = time.perf_counter()
    now = timezone.now()
    job_defaults, batch_defaults, event_defaults = defaults(BatchJob), defaults(Batch), defaults(JobEvent)
    with transaction.atomic():
        users, configs = seed_catalog()
        # Oldest first; the newest are the running and then the queued jobs, at the top of the board.
        finished_jobs = jobs - QUEUED - RUNNING
        recent, span = now - timedelta(hours=3), timedelta(days=DAYS, hours=-3)
        created = sorted(recent - span * rng.random() for _ in range(finished_jobs))
        created += sorted(now - timedelta(minutes=rng.uniform(40, 90)) for _ in range(RUNNING))
        created += sorted(now - timedelta(minutes=rng.uniform(1, 30)) for _ in range(QUEUED))
        statuses = [rng.choices(["succeeded", "failed", "cancelled"], [85, 10, 5])[0] for _ in range(finished_jobs)]
        statuses += ["running"] * RUNNING + ["queued"] * QUEUED

        job_ids, job_rows, batch_rows, event_rows = [], [], [], []
        for number, (created_at, status) in enumerate(zip(created, statuses, strict=True)):
            config = rng.choice(configs)
            schema = config.model.model_id.replace("-", "_")
            job = dict(
                job_defaults,
                id=uuid.uuid4(),
                model_id=config.model_id,
                build_id=config.build_id,
                batch_config_id=config.pk,
                status=status,
                input_table=f"prod.{schema}.input_{number % 50}",
                output_table=f"prod.{schema}.scores_{number}",
                parallelism=PARALLELISM,
                requested_by_id=rng.choice(users).pk,
                created_at=created_at,
            )
            job_ids.append(job["id"])
            job_rows.append(job)
            if status == JobStatus.QUEUED:  # not extracted yet: no batches
                continue
            input_rows = rng.randint(10_000, 5_000_000)
            job_started = created_at + timedelta(seconds=rng.uniform(0.5, 120))
            extracted = job_started + timedelta(seconds=rng.uniform(5, 90))
            job |= {"input_rows": input_rows, "batches_total": batches_per_job}
            job |= {"started_at": job_started, "extracted_at": extracted}
            predict_s = (now - extracted).total_seconds() if status == JobStatus.RUNNING else rng.uniform(20, 1200)
            per_batch = timedelta(seconds=predict_s * PARALLELISM / batches_per_job)
            rows, extra = divmod(input_rows, batches_per_job)
            # How many batches ended, and how, follows the job's status (a failed job ran them all).
            done = {
                JobStatus.SUCCEEDED: batches_per_job,
                JobStatus.FAILED: batches_per_job,
                JobStatus.CANCELLED: rng.randint(0, batches_per_job - 1),
                JobStatus.RUNNING: rng.randint(0, batches_per_job - PARALLELISM - 3),
            }[status]
            failed = set(rng.sample(range(batches_per_job), rng.randint(1, 3))) if status == JobStatus.FAILED else set()
            batches = []
            for index in range(batches_per_job):
                batch = dict(batch_defaults, job_id=job["id"], index=index, rows=rows + (index < extra))
                start = extracted + per_batch * (index // PARALLELISM)
                if index < done or (index < done + PARALLELISM and status == JobStatus.RUNNING):
                    batch |= {"started_at": start, "queued_at": start - timedelta(seconds=0.2), "attempts": 1}
                    batch |= {"worker": f"predict@bench-{index % 2 + 1}", "worker_pid": 4100 + index % PARALLELISM}
                if index in failed:
                    batch |= {"status": BatchStatus.FAILED, "attempts": 3, "finished_at": start + per_batch}
                    batch |= {"error": TRACEBACK.splitlines()[-1], "traceback": TRACEBACK}
                elif index < done:
                    batch |= {"status": BatchStatus.SUCCEEDED, "finished_at": start + per_batch}
                    batch |= {"predict_seconds": per_batch.total_seconds() * 0.9, "peak_rss_mib": rng.uniform(300, 900)}
                elif batch["started_at"]:
                    batch |= {"status": BatchStatus.RUNNING, "lease_expires_at": now + timedelta(seconds=60)}
                elif status == JobStatus.RUNNING:
                    batch["status"] = BatchStatus.QUEUED if index < done + 2 * PARALLELISM else BatchStatus.PENDING
                else:
                    batch["status"] = BatchStatus.CANCELLED
                batches.append(batch)
            batch_rows += batches

            last = max(b["finished_at"] or b["started_at"] or extracted for b in batches)
            if status == JobStatus.RUNNING:
                job |= {"phase": JobPhase.PREDICTING, "lease_expires_at": now + timedelta(seconds=60)}
            else:
                job["phase"] = JobPhase.DONE
                job["finished_at"] = last + timedelta(seconds=rng.uniform(2, 30))  # the commit, or the cancel
                job["staging_removed"] = status != JobStatus.FAILED  # a failed job keeps its shards for a retry
            if status in (JobStatus.SUCCEEDED, JobStatus.FAILED):  # a cancelled job never reaches the commit
                job["predicted_at"] = last
            if status == JobStatus.SUCCEEDED:
                job["output_rows"] = input_rows
                job["message"] = f"{input_rows:,} rows predicted into {job['output_table']}."
            elif status == JobStatus.FAILED:
                shown = [b for b in batches if b["index"] in failed]
                job["message"] = (
                    f"{len(shown)} of {batches_per_job} batches failed ({sum(b['rows'] for b in shown):,} of "
                    f"{input_rows:,} rows), so no output table was written: "
                    + "; ".join(f"batch {b['index']} ({b['rows']:,} rows): {b['error']}" for b in shown)
                    + "."
                )
                job["error_detail"] = f"Batch {shown[0]['index']} ({shown[0]['rows']:,} rows), attempt 3: {TRACEBACK}"
            elif status == JobStatus.CANCELLED:
                job["message"] = "Cancelled: no output table was written."

            event = dict(event_defaults, job_id=job["id"], model_id=config.model.model_id, build_id=config.build_id)
            event |= {"endpoint_name": config.deployment_name, "job_start_time": job_started}
            event_rows.append(dict(event, evid=EventId.START, date_created=job_started, uuid=uuid.uuid4()))
            if status == JobStatus.SUCCEEDED:
                event_rows.append(dict(event, evid=EventId.SUCCESS, date_created=job["finished_at"], uuid=uuid.uuid4()))
            elif status == JobStatus.FAILED:
                event_rows.append(
                    dict(
                        event,
                        evid=EventId.FAILURE,
                        date_created=job["finished_at"],
                        error=job["message"],
                        uuid=uuid.uuid4(),
                    )
                )

            if len(batch_rows) >= CHUNK_ROWS:  # in chunks, jobs before their batches: memory stays flat
                insert_rows(BatchJob, job_rows)
                insert_rows(Batch, batch_rows)
                job_rows, batch_rows = [], []
        insert_rows(BatchJob, job_rows)
        insert_rows(Batch, batch_rows)
        insert_rows(JobEvent, event_rows)

        # One attempt, with a log of a few KB, for each batch that started in the newest jobs.
        attempt_rows = []
        newest = job_ids[-QUEUED - ATTEMPT_JOBS : -QUEUED]
        for batch in Batch.objects.filter(job_id__in=newest, started_at__isnull=False).values():
            chunks = rng.randint(20, 60)
            log = "".join(
                LOG_LINE.format(i=i + 1, n=chunks, rows=batch["rows"] // chunks, s=rng.uniform(0.1, 2))
                for i in range(chunks)
            )
            if batch["status"] == BatchStatus.FAILED:
                log += TRACEBACK + "\n"
            attempt_rows.append(
                dict(
                    defaults(BatchAttempt),
                    batch_id=batch["id"],
                    number=batch["attempts"],
                    status=batch["status"],
                    worker=batch["worker"],
                    error=batch["error"],
                    log=log,
                    started_at=batch["started_at"],
                    finished_at=batch["finished_at"],
                )
            )
        insert_rows(BatchAttempt, attempt_rows)

    # The seeded times, not the time of the insert (auto_now_add would give that). Compared with the
    # oldest time drawn, not with DAYS ago: a few jobs need not reach back to the start of the span.
    oldest = BatchJob.objects.order_by("created_at").values_list("created_at", flat=True).first()
    if abs(oldest - min(created)) > timedelta(seconds=1):
        raise SystemExit(
            f"seeding: created_at is not the seeded time (oldest job {oldest:%Y-%m-%d %H:%M}, "
            f"seeded {min(created):%Y-%m-%d %H:%M})"
        )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    seconds = time.perf_counter() - started
    return Seeded(user=users[0], job_ids=job_ids[::-1], model_ids=MODELS, seconds=seconds)


# --- measuring ---------------------------------------------------------------------------------


@dataclass
class Endpoint:
    label: str
    urls: list[str]  # requests rotate over these
    target: bool = True  # p95 <= TARGET_MS
    required: bool = True  # a status other than `ok` fails the run
    headers: dict = field(default_factory=dict)
    ok: tuple = (200,)


@dataclass
class Result:
    endpoint: Endpoint
    status: int = 200
    error: str = ""
    queries: int = 0
    sql_ms: list[float] = field(default_factory=list)  # of the warm-up requests
    times_ms: list[float] = field(default_factory=list)

    @property
    def answered(self) -> bool:
        return self.status in self.endpoint.ok

    def percentile(self, p: int) -> float:
        return statistics.quantiles(self.times_ms, n=100, method="inclusive")[p - 1] if len(self.times_ms) > 1 else 0.0

    @property
    def met(self) -> bool | None:
        if not self.endpoint.target or not self.answered:
            return None
        return self.percentile(95) <= TARGET_MS


def endpoints(seeded: Seeded) -> list[Endpoint]:
    rng = random.Random(SEED + 1)
    sample = rng.sample(seeded.job_ids, min(50, len(seeded.job_ids)))
    prefix = str(rng.choice(seeded.job_ids))[:8]
    htmx = {"HX-Request": "true", "HX-Target": "job-table"}
    return [
        Endpoint("board", ["/batch/"]),
        Endpoint("board ?status=failed", ["/batch/?status=failed"]),
        Endpoint("board ?page=50", ["/batch/?page=50"]),
        Endpoint("board htmx refresh", ["/batch/"], headers=htmx, ok=(200, 286)),
        Endpoint(f"board ?model={seeded.model_ids[0]}", [f"/batch/?model={seeded.model_ids[0]}"], required=False),
        Endpoint(f"board ?user={USERS[1]}", [f"/batch/?user={USERS[1]}"], required=False),
        Endpoint("board ?since=7d", ["/batch/?since=7d"], required=False),
        Endpoint(f"board ?q={prefix}", [f"/batch/?q={prefix}"], required=False),
        Endpoint("API job list", ["/api/v1/batch-jobs/"]),
        Endpoint("API job detail (50 jobs)", [f"/api/v1/batch-jobs/{pk}/" for pk in sample]),
        Endpoint("job page (50 jobs)", [f"/batch/{pk}/" for pk in sample], target=False, required=False),
    ]


def measure(client, endpoint: Endpoint, requests: int) -> Result:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    result = Result(endpoint)
    # Queries are counted and timed on the warm-up requests only: capturing them slows the cursor down.
    for i in range(WARMUP):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(endpoint.urls[i % len(endpoint.urls)], headers=endpoint.headers)
        result.queries = max(result.queries, len(queries))
        result.sql_ms.append(sum(float(q["time"]) for q in queries.captured_queries) * 1000)
        if response.status_code not in endpoint.ok:
            result.status = response.status_code
            if response.exc_info:
                result.error = "".join(traceback.format_exception_only(*response.exc_info[:2])).strip()
            return result
    for i in range(requests):
        url = endpoint.urls[i % len(endpoint.urls)]
        t0 = time.perf_counter()
        response = client.get(url, headers=endpoint.headers)
        result.times_ms.append((time.perf_counter() - t0) * 1000)
        if response.status_code not in endpoint.ok:
            result.status = response.status_code
            return result
    return result


def run(seeded: Seeded, requests: int) -> list[Result]:
    from django.test import Client

    client = Client(raise_request_exception=False)  # a view's error is a status in the table
    client.force_login(seeded.user)
    results = []
    for endpoint in endpoints(seeded):
        result = measure(client, endpoint, requests)
        results.append(result)
        print(f"  {endpoint.label:<34} {describe(result)}", flush=True)
    return results


def describe(result: Result) -> str:
    if not result.answered:
        return f"status {result.status}" + (f": {result.error}" if result.error else "")
    sql = statistics.median(result.sql_ms)
    return f"p95 {result.percentile(95):.1f} ms, {result.queries} queries taking {sql:.0f} ms"


# --- the driver ----------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="a postgresql:// URL: the run uses bench_board on its server")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--batches-per-job", type=int, default=20)
    parser.add_argument("--requests", type=int, default=200, help="timed requests per endpoint")
    parser.add_argument("--keep", action="store_true", help="keep the data dir and the bench_board database")
    args = parser.parse_args()
    if args.requests < 2:
        parser.error("--requests must be at least 2")
    if args.jobs < QUEUED + RUNNING + ATTEMPT_JOBS or args.batches_per_job < PARALLELISM + 3:
        parser.error(f"--jobs must be at least {QUEUED + RUNNING + ATTEMPT_JOBS}, --batches-per-job at least 5")
    if args.database_url and not args.database_url.startswith(("postgres://", "postgresql://")):
        parser.error("--database-url must be a postgresql:// URL (the default is SQLite)")

    data_dir = Path(tempfile.mkdtemp(prefix="bench-board-"))
    try:
        database_url = f"sqlite:///{data_dir / 'db.sqlite3'}"
        if args.database_url:
            database_url = fresh_postgres(args.database_url)
        django_setup(data_dir, database_url)
        print(f"seeding {args.jobs:,} jobs x {args.batches_per_job} batches ...", flush=True)
        seeded = seed(args.jobs, args.batches_per_job)
        print_database(seeded)
        print(f"timing {WARMUP} warm-up + {args.requests} requests per endpoint ({load()}) ...", flush=True)
        results = run(seeded, args.requests)
        print(f"done ({load()})")
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            if args.database_url:
                pgdb.drop_database(args.database_url, PG_DATABASE)
            shutil.rmtree(data_dir, ignore_errors=True)
        else:
            print(f"kept: {data_dir}" + (f" and the database {PG_DATABASE}" if args.database_url else ""))
    return report(results)


def load() -> str:
    """Other work on the machine moves the figures: say how busy it was."""
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"


def print_database(seeded: Seeded) -> None:
    from django.db import connection

    from batchjobs.models import Batch, BatchAttempt, BatchJob, JobEvent

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            engine = f"PostgreSQL {cursor.fetchone()[0]} (database {connection.settings_dict['NAME']})"
    else:
        import sqlite3

        engine = f"SQLite {sqlite3.sqlite_version} ({connection.settings_dict['NAME']})"
    counts = {"jobs": BatchJob, "batches": Batch, "attempts": BatchAttempt, "events": JobEvent}
    print(f"database: {engine}")
    print(
        ", ".join(f"{m.objects.count():,} {name}" for name, m in counts.items()) + f"; seeded in {seeded.seconds:.1f} s"
    )


def report(results: list[Result]) -> int:
    header = f"{'endpoint':<36}{'p50 ms':>8}{'p95 ms':>8}{'max ms':>8}{'queries':>9}{'sql ms':>8}  {'target':<16}met?"
    print(f"\n{header}")
    failed = False
    for result in results:
        target = f"p95 <= {TARGET_MS:.0f} ms" if result.endpoint.target else "-"
        if result.answered:
            times = result.times_ms
            figures = f"{result.percentile(50):>8.1f}{result.percentile(95):>8.1f}{max(times):>8.1f}"
        else:
            figures = f"{'status ' + str(result.status):>24}"
            failed |= result.endpoint.required
        met = {None: "n/a" if result.endpoint.target else "-", True: "met", False: "NOT MET"}[result.met]
        failed |= result.met is False
        sql = f"{statistics.median(result.sql_ms):>8.0f}" if result.sql_ms else f"{'':>8}"
        print(f"{result.endpoint.label:<36}{figures}{result.queries:>9}{sql}  {target:<16}{met}")
    print(
        "\n(server time in-process through django.test.Client, DEBUG off; queries: the most in one warm-up request; "
        "sql ms: the median warm-up request's time in SQL)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
