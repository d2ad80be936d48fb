#!/usr/bin/env python3
"""Benchmark of batch prediction jobs, end to end, with real processes; prints its figures.

    .venv/bin/python bench/jobs.py [--rows 1000,1000000,5000000] [--shapes demo,wide] [--repeat 2] [--keep]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres] [--broker-url redis://127.0.0.1:6379/14]

What it does, in one run:

1. A fresh data dir (MLPLATFORM_DATA_DIR=<tmp>) with every default: SQLite there, the
   filesystem broker, the local lake and staging. With --database-url postgresql://… a fresh
   database is created on that server for the run (and dropped after it); --broker-url is used
   as given. `manage.py migrate` and `manage.py load_demo` run in that environment.
2. Two shapes of data, each with its model: `demo` (the demo generator's card transactions,
   examples.fraud_model: 10 mixed columns, one-hot + scaling + logistic regression) and `wide`
   (examples.wide_model: 40 float64 columns, StandardScaler + LogisticRegression, registered and
   verified as a build by this script). For each shape and row count, fixed-seed rows (250,000 a
   chunk) become the lake table prod.bench.<shape>_<rows> and one Parquet file for the peers.
3. The processes of `make run`'s Procfile: beat, and the control (`-Q control -c 2`), io (`-Q io -c 2`)
   and predict (`-Q $(manage.py worker_queues --predict-only)`) workers.
   The demo model's active batch config is ml.m5.large (2 vCPUs) with processes ALL.
4. For each shape and row count the workers are started afresh, then the job runs twice: "cold"
   (fresh workers: no model loaded yet, only their spare model processes) and "warm" (the same job
   again, models loaded). Each job is triggered through the service the PREDICT tab, the API and `manage.py
   batch_predict` call (batchjobs.services.job_trigger), in a process of its own that polls the
   job row every 20 ms. Meanwhile this process samples, every 50 ms, the RSS of every process of
   the workers and beat: their pool processes, and the model processes (child.py, in
   sessions of their own) they start. The output table's row count is checked.
5. The `plain` and `multiprocessing` (2 workers) peers of ../shared/bench/peers.py run on the
   same rows (the Parquet file) and the same model class.
6. A table of figures, the worst ratio of each case over --repeat runs, the targets of issue 10
   (met or not, by how much), and where each job's time went (queue wait, plan/extract, predict
   span, commit) from the timestamps the job and its batches record.

Figures drift on shared 2-core machines: compare ratios within one run, not seconds across runs.
Exits 1 when a job fails its checks or a target is missed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pgdb  # bench/pgdb.py, beside this script
import psutil

REPO = Path(__file__).resolve().parent.parent
PEERS = REPO.parent / "shared" / "bench" / "peers.py"
PEER_WORKERS = 2  # the vCPUs of ml.m5.large, the demo config's instance type

MODEL_ID = "ds-premium-fraud-detection"  # what load_demo creates
DEMO_USER = "demo"
CHILD_MARKER = "builds/runtime/child.py"

DEFAULT_ROWS = "1000,1000000,5000000"
WIDE_MODEL_ID = "bench-wide-logreg"
# shape -> (the model that runs on it, the class the peers run, what the platform's build packages)
SHAPES = {
    "demo": (MODEL_ID, "examples.fraud_model:FraudModel"),
    "wide": (WIDE_MODEL_ID, "examples.wide_model:WideModel"),
}
CHUNK_ROWS = 250_000
SEED = 20_240_601
POLL_S = 0.02
RSS_SAMPLE_S = 0.05
# Finding processes walks /proc; a model process lives for many batches, so looking for new ones
# four times a second misses nothing that matters, and sampling known ones stays cheap.
DISCOVER_S = 0.25
READY_TIMEOUT_S = 120
STOP_GRACE_S = 15
MIB = 1024 * 1024
GIB_MIB = 1024

# Issue 10's targets: cold jobs against the faster peer, a small job's latency, the commit and the
# plan of a 5M-row lake table, and memory.
TARGET_RATIOS = {5_000_000: 0.8, 1_000_000: 1.0}
TARGET_RUNNING_S = 1.0
TARGET_SMALL_ROWS, TARGET_SMALL_S = 1_000, 1.5
TARGET_BIG_ROWS, TARGET_RSS_MIB = 5_000_000, 1.0 * GIB_MIB
TARGET_COMMIT_S, TARGET_PLAN_S = 0.3, 0.2

# Settings the platform reads from the environment: dropped from the inherited environment so
# that the run gets every default (its own data dir), except what the options set.
SETTINGS_ENV = (
    "DJANGO_SETTINGS_MODULE DATABASE_URL CELERY_BROKER_URL WAREHOUSE_CATALOGS WAREHOUSE_DEFAULT_CATALOG "
    "STAGING_URL ARTIFACTS_URL MAX_INPUT_ROWS MAX_CONCURRENT_JOBS PREDICT_TIMEOUT_S JOB_TIMEOUT_S "
    "MAX_ROW_BYTES MAX_BATCH_ATTEMPTS STAGING_RETENTION_H BATCH_LEASE_S REAPER_INTERVAL_S LOG_CAP_BYTES "
    "BUILD_TIMEOUT_S MAX_ARTIFACT_MB AWS_REGION CLOUDWATCH_LOG_GROUP DJANGO_SECRET_KEY DJANGO_DEBUG"
).split()


def input_table(shape: str, rows: int) -> str:
    return f"prod.bench.{shape}_{rows}"


# --- phases: run in a fresh process of this script, inside the platform's environment ----------


def _django_setup() -> None:
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlplatform.settings")
    import django

    django.setup()


def phase_input(shape: str, rows: int, parquet: Path) -> dict:
    """The lake table prod.bench.<shape>_<rows> and the same rows as one Parquet file, streamed."""
    _django_setup()
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tables import selectors as table_selectors

    if shape == "wide":
        from examples.wide_model.model import generate
    else:
        from examples.fraud_model.data import generate

    started = time.perf_counter()
    catalog, name = table_selectors.resolve(input_table(shape, rows))

    def chunks():
        for i, start in enumerate(range(0, rows, CHUNK_ROWS)):
            frame = generate(min(CHUNK_ROWS, rows - start), seed=SEED + i, start_id=start)
            yield pa.RecordBatch.from_pandas(frame.drop(columns=["label"], errors="ignore"), preserve_index=False)

    batches = chunks()
    first = next(batches)
    with pq.ParquetWriter(parquet, first.schema) as writer:

        def tee():
            for batch in itertools.chain([first], batches):
                writer.write_batch(batch)
                yield batch

        written = catalog.create(name, first.schema, tee())
    return {"rows": written, "table": str(name), "seconds": round(time.perf_counter() - started, 3)}


def phase_setup_wide() -> dict:
    """The wide model, as a user registers one: a .tar.gz build, verified, with a batch config like
    the demo's (ml.m5.large, processes ALL). Idempotent."""
    _django_setup()
    import tarfile
    import tempfile

    from django.contrib.auth import get_user_model

    from builds import selectors, services
    from builds.choices import BuildStatus, Processes
    from builds.models import InstanceType, MLModel
    from builds.verification import build_verify
    from examples.wide_model.model import train

    user = get_user_model().objects.get(username=DEMO_USER)
    model, _ = MLModel.objects.get_or_create(
        model_id=WIDE_MODEL_ID, defaults={"team": user.groups.first(), "created_by": user}
    )
    build = model.builds.filter(status=BuildStatus.SUCCEEDED).first()
    if build is None:
        with tempfile.TemporaryDirectory() as tmp:
            weights = train(Path(tmp) / "model.joblib")
            artifact = Path(tmp) / "wide_model.tar.gz"
            with tarfile.open(artifact, "w:gz") as archive:
                for name in ("__init__.py", "model.py"):
                    archive.add(REPO / "examples" / "wide_model" / name, arcname=f"wide_model/{name}")
                archive.add(weights, arcname="wide_model/model.joblib")
            with artifact.open("rb") as upload:
                build = services.build_register(
                    model=model,
                    upload=upload,
                    filename=artifact.name,
                    entrypoint="wide_model.model:WideModel",
                    created_by=user,
                )
        build = build_verify(build_id=build.id) or build
        build.refresh_from_db()
        if build.status != BuildStatus.SUCCEEDED:
            raise SystemExit(f"the wide model's build did not verify: {build.log[-2000:]}")
    if selectors.active_batch_config(model=model) is None:
        services.batch_config_set(
            build=build,
            deployment_name=f"{WIDE_MODEL_ID}-batch",
            instance_type=InstanceType.objects.get(name="ml.m5.large"),
            processes=Processes.ALL,
            env={},
            set_by=user,
        )
    return {"model": WIDE_MODEL_ID, "build": build.number}


def _epoch(value) -> float | None:
    return value.timestamp() if value is not None else None


def phase_job(shape: str, rows: int, number: int, timeout: float) -> dict:
    """Trigger one job as users do, poll its row every 20 ms until it ends, and report it."""
    _django_setup()
    from django.contrib.auth import get_user_model

    from batchjobs import services
    from batchjobs.choices import JobStatus
    from batchjobs.models import BatchJob
    from builds import selectors
    from tables import selectors as table_selectors

    user = get_user_model().objects.get(username=DEMO_USER)
    model = selectors.model_get(user=user, model_id=SHAPES[shape][0])
    output = f"prod.bench.{shape}_out_{rows}_{number}"

    # The service itself rather than `manage.py batch_predict`: the same code path, without
    # counting Django's start-up in "trigger -> running".
    trigger_epoch, t0 = time.time(), time.perf_counter()
    job = services.job_trigger(
        model=model, input_table=input_table(shape, rows), output_table=output, requested_by=user
    )
    t_triggered = time.perf_counter()
    t_running = None
    timed_out = False
    while True:
        status = BatchJob.objects.filter(pk=job.pk).values_list("status", flat=True).first()
        now = time.perf_counter()
        if t_running is None and status != JobStatus.QUEUED:
            t_running = now
        if status not in JobStatus.ACTIVE:
            break
        if now - t0 > timeout:
            timed_out = True
            break
        time.sleep(POLL_S)
    t_done = time.perf_counter()

    job.refresh_from_db()
    output_rows = None
    if job.status == JobStatus.SUCCEEDED:
        catalog, name = table_selectors.resolve(output)
        output_rows = catalog.row_count(name)
    batches = [
        {
            "index": b["index"],
            "rows": b["rows"],
            "status": b["status"],
            "attempts": b["attempts"],
            "worker_pid": b["worker_pid"],
            "started": _epoch(b["started_at"]),
            "finished": _epoch(b["finished_at"]),
            "predict_seconds": b["predict_seconds"],
            "peak_rss_mib": b["peak_rss_mib"],
        }
        for b in job.batches.order_by("index").values()
    ]
    return {
        "job_id": str(job.pk),
        "shape": shape,
        "rows": rows,
        "output_table": output,
        "status": job.status,
        "message": job.message,
        "timed_out": timed_out,
        "input_rows": job.input_rows,
        "output_rows": output_rows,
        "parallelism": job.parallelism,
        "wall_trigger_call": t_triggered - t0,
        "wall_running": (t_running - t0) if t_running is not None else None,
        "wall_done": t_done - t0,
        "trigger_epoch": trigger_epoch,
        "created": _epoch(job.created_at),
        "started": _epoch(job.started_at),
        "extracted": _epoch(job.extracted_at),
        "predicted": _epoch(job.predicted_at),
        "finished": _epoch(job.finished_at),
        "batches": batches,
    }


def run_phase(env: dict, *args: str) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), *args]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"phase {' '.join(args)} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(lines[-1])


# --- the platform under test: environment, database, workers -----------------------------------


def manage(env: dict, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return done.stdout.strip()


def fresh_postgres(url: str) -> tuple[str, str]:
    """A new, empty database on the server of ``url``: (its URL, its name)."""
    name = f"bench_jobs_{uuid.uuid4().hex[:10]}"
    return pgdb.create_database(url, name), name


def is_model_process(proc: psutil.Process, data_dir: str) -> bool:
    """A model process (child.py) of this run: its working folder is under this run's data dir (in a
    sandbox, the Python process, not the bubblewrap processes around it)."""
    try:
        return CHILD_MARKER in " ".join(proc.cmdline()) and proc.name() != "bwrap" and proc.cwd().startswith(data_dir)
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def model_processes(data_dir: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if CHILD_MARKER in " ".join(proc.info["cmdline"] or []) and is_model_process(proc, data_dir):
            found.append(proc)
    return found


@dataclass
class Workers:
    """Beat and the control, io and predict workers of `make run` (its Procfile), started and stopped like it does."""

    env: dict
    data_dir: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    model_pids: set[int] = field(default_factory=set)  # model processes seen in earlier jobs

    def start(self) -> None:
        celery = Path(sys.executable).with_name("celery")
        base = [str(celery)] if celery.exists() else [sys.executable, "-m", "celery"]
        queues = manage(self.env, "worker_queues", "--predict-only")
        commands = {
            "beat": [*base, "-A", "mlplatform", "beat"],
            "control": [*base, "-A", "mlplatform", "worker", "-n", "control@%h", "-Q", "control", "-c", "2"],
            "io": [*base, "-A", "mlplatform", "worker", "-n", "io@%h", "-Q", "io", "-c", "2"],
            "predict": [*base, "-A", "mlplatform", "worker", "-n", "predict@%h", "-Q", queues],
        }
        logs = self.data_dir / "log"
        logs.mkdir(exist_ok=True)
        for role, command in commands.items():
            with (logs / f"{role}-worker.log").open("w") as log:
                # A session of its own, so a last-resort SIGKILL reaches the pool processes too.
                self.procs[role] = subprocess.Popen(
                    [*command, "-l", "info"],
                    cwd=REPO,
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        deadline = time.monotonic() + READY_TIMEOUT_S
        for role, proc in self.procs.items():
            log = logs / f"{role}-worker.log"
            ready = "beat: Starting..." if role == "beat" else "ready."
            while ready not in log.read_text(errors="replace"):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the {role} worker did not start:\n{log.read_text(errors='replace')[-4000:]}")
                time.sleep(0.1)

    @property
    def pids(self) -> dict[str, int]:
        return {role: proc.pid for role, proc in self.procs.items()}

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # warm shutdown, as Ctrl-C on `make run`
        deadline = time.monotonic() + STOP_GRACE_S
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=10)
        # Model processes run in sessions of their own: a killed worker does not take them along.
        for child in model_processes(str(self.data_dir)):
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


class RssSampler(threading.Thread):
    """Peak RSS of every process of the workers' trees (and this run's model processes)."""

    def __init__(self, workers: dict[str, int], data_dir: Path) -> None:
        super().__init__(daemon=True)
        self.workers = workers
        self.data_dir = str(data_dir)
        self.halt = threading.Event()
        self.known: dict[int, tuple[psutil.Process, str]] = {}
        self.peak: dict[int, tuple[int, str]] = {}  # pid -> (bytes, role)

    def _add(self, proc: psutil.Process, role: str) -> None:
        if proc.pid not in self.known:
            self.known[proc.pid] = (proc, role)

    def _discover(self) -> None:
        for name, pid in self.workers.items():
            try:
                main = psutil.Process(pid)
                children = main.children(recursive=True)
            except psutil.NoSuchProcess:
                continue
            self._add(main, "beat" if name == "beat" else f"{name} worker")
            for child in children:
                if child.pid in self.known:
                    continue
                if is_model_process(child, self.data_dir):
                    self._add(child, "model process (child.py)")
                else:
                    self._add(child, f"{name} pool process")
        for child in model_processes(self.data_dir):
            self._add(child, "model process (child.py)")

    def _sample(self) -> None:
        for pid, (proc, role) in list(self.known.items()):
            try:
                rss = proc.memory_info().rss
            except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                del self.known[pid]
                continue
            if rss > self.peak.get(pid, (0, ""))[0]:
                self.peak[pid] = (rss, role)

    def run(self) -> None:
        next_discovery = 0.0
        while True:
            now = time.monotonic()
            if now >= next_discovery:
                self._discover()
                next_discovery = now + DISCOVER_S
            self._sample()
            if self.halt.wait(RSS_SAMPLE_S):
                break

    def finish(self) -> dict:
        self.halt.set()
        self.join()
        self._sample()
        by_role: dict[str, float] = {}
        for rss, role in self.peak.values():
            by_role[role] = max(by_role.get(role, 0.0), rss / MIB)
        models = [pid for pid, (_, role) in self.peak.items() if role.startswith("model process")]
        if not self.peak:
            return {"peak_mib": None, "peak_role": "", "by_role": by_role, "processes": 0, "model_pids": models}
        rss, role = max(self.peak.values())
        return {
            "peak_mib": rss / MIB,
            "peak_role": role,
            "by_role": by_role,
            "processes": len(self.peak),
            "model_pids": models,
        }


# --- peers ----------------------------------------------------------------------------------------


def run_peer(peer: str, parquet: Path, work: Path, model: str) -> dict:
    output = work / f"peer-{peer}.parquet"
    command = [sys.executable, str(PEERS), peer, "--input", str(parquet), "--output", str(output)]
    command += ["--model", model]
    if peer == "multiprocessing":
        command += ["--workers", str(PEER_WORKERS)]
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    output.unlink(missing_ok=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    result = json.loads(lines[-1]) if lines else {}
    if done.returncode != 0 or "seconds" not in result:
        error = result.get("error") or (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"peer": peer, "error": error[:200]}
    return result


# --- the driver -------------------------------------------------------------------------------------


def run_job(env: dict, workers: Workers, shape: str, rows: int, number: int, timeout: float) -> dict:
    sampler = RssSampler(workers.pids, workers.data_dir)
    sampler.start()
    try:
        job = run_phase(
            env,
            "--phase",
            "job",
            "--shapes",
            shape,
            "--rows",
            str(rows),
            "--number",
            str(number),
            "--job-timeout",
            str(timeout),
        )
    finally:
        rss = sampler.finish()
    job["rss"] = rss
    # A job whose batches start model processes pays for loading the model (about a second each):
    # say so, since the first job after the workers start is slower than the next ones.
    models = set(rss["model_pids"])
    job["new_models"] = len(models - workers.model_pids)
    workers.model_pids |= models
    problems = []
    if job["status"] != "succeeded":
        problems.append(
            f"status {job['status']}{' (timed out waiting)' if job['timed_out'] else ''}: {job['message'][:300]}"
        )
    if job["output_rows"] != rows:
        problems.append(f"output table has {job['output_rows']} rows for {rows:,} input rows")
    job["problems"] = problems
    return job


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default=DEFAULT_ROWS, help=f"comma-separated row counts (default {DEFAULT_ROWS})")
    parser.add_argument("--shapes", default="demo,wide", help="comma-separated: demo, wide (default both)")
    parser.add_argument("--repeat", type=int, default=1, help="run every case this many times; the worst counts")
    parser.add_argument(
        "--max-input-rows", type=int, help="MAX_INPUT_ROWS for the platform (for jobs over its 5,000,000 default)"
    )
    parser.add_argument("--peers", default="plain,multiprocessing", help="peers to run, comma-separated, or none")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data dir (and PostgreSQL database)")
    parser.add_argument("--database-url", help="postgresql://…: a fresh database is created on that server")
    parser.add_argument("--broker-url", help="e.g. redis://127.0.0.1:6379/14 (default: the local filesystem broker)")
    parser.add_argument("--job-timeout", type=float, default=1800, help="seconds to wait for one job")
    parser.add_argument("--phase", choices=["input", "job", "setup-wide"], help=argparse.SUPPRESS)
    parser.add_argument("--parquet", help=argparse.SUPPRESS)
    parser.add_argument("--number", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase == "input":
        print(json.dumps(phase_input(args.shapes, int(args.rows), Path(args.parquet))))
        return 0
    if args.phase == "job":
        print(json.dumps(phase_job(args.shapes, int(args.rows), args.number, args.job_timeout)))
        return 0
    if args.phase == "setup-wide":
        print(json.dumps(phase_setup_wide()))
        return 0

    row_counts = [int(r.replace("_", "")) for r in args.rows.split(",") if r.strip()]
    if not row_counts or min(row_counts) < 1:
        parser.error("--rows: give positive row counts, e.g. 1000,1000000")
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    if not shapes or set(shapes) - set(SHAPES):
        parser.error(f"--shapes: give some of {', '.join(SHAPES)}")
    work = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV}
    env["MLPLATFORM_DATA_DIR"] = str(work)
    if args.broker_url:
        env["CELERY_BROKER_URL"] = args.broker_url
    if args.max_input_rows:
        env["MAX_INPUT_ROWS"] = str(args.max_input_rows)
    peer_names = [p for p in args.peers.split(",") if p.strip() and p.strip() != "none"]
    broker = urlsplit(args.broker_url).scheme if args.broker_url else "filesystem (local default)"
    database, pg_name = "SQLite in the data dir", None
    workers = Workers(env=env, data_dir=work)
    jobs: list[dict] = []
    peers: dict[tuple, dict[str, dict]] = {}  # (run, shape, rows) -> peer -> result
    number = itertools.count(1)
    try:
        if args.database_url and args.database_url.startswith("postgres"):
            env["DATABASE_URL"], pg_name = fresh_postgres(args.database_url)
            database = f"PostgreSQL, fresh database {pg_name}"
        elif args.database_url:
            env["DATABASE_URL"] = database = args.database_url
        print(
            f"bench/jobs.py: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
            f"Python {sys.version.split()[0]}"
        )
        print(f"data dir {work}; database: {database}; broker: {broker}", flush=True)
        started = time.perf_counter()
        print("  migrate + load_demo ... ", end="", flush=True)
        manage(env, "migrate", "--noinput", "-v", "0")
        manage(env, "load_demo")
        if "wide" in shapes:
            run_phase(env, "--phase", "setup-wide")
        print(f"{time.perf_counter() - started:.1f} s", flush=True)
        for shape in shapes:
            for rows in row_counts:
                made = run_phase(
                    env,
                    "--phase",
                    "input",
                    "--shapes",
                    shape,
                    "--rows",
                    str(rows),
                    "--parquet",
                    str(work / f"in_{shape}_{rows}.parquet"),
                )
                print(
                    f"  input {made['table']}: {made['rows']:,} rows + Parquet in {made['seconds']:.1f} s", flush=True
                )

        for run in range(1, args.repeat + 1):
            for shape in shapes:
                for rows in row_counts:
                    workers.stop()
                    workers.procs, workers.model_pids = {}, set()
                    started = time.perf_counter()
                    workers.start()
                    print(f"  run {run}, {shape}: fresh workers ready in {time.perf_counter() - started:.1f} s")
                    for start in ("cold", "warm"):
                        job = run_job(env, workers, shape, rows, next(number), args.job_timeout)
                        job |= {"run": run, "start": start}
                        jobs.append(job)
                        verdict = "ok" if not job["problems"] else "FAIL: " + "; ".join(job["problems"])
                        print(
                            f"  platform {shape:<4} {start} {rows:>10,} rows: {job['wall_done']:7.2f} s, peak RSS "
                            f"{fmt_mib(job['rss']['peak_mib'])} ({job['rss']['peak_role']}) - {verdict}",
                            flush=True,
                        )
                    peers[(run, shape, rows)] = {}
                    if not PEERS.exists():
                        continue
                    for peer in peer_names:
                        result = run_peer(peer, work / f"in_{shape}_{rows}.parquet", work, SHAPES[shape][1])
                        peers[(run, shape, rows)][peer] = result
                        text = (
                            f"{result['seconds']:7.2f} s, peak RSS {fmt_mib(result['peak_rss_mib'])}"
                            if "seconds" in result
                            else f"FAIL: {result['error']}"
                        )
                        print(f"  {peer:<16} {shape:<4} {rows:>10,} rows: {text}", flush=True)
    finally:
        workers.stop()
        if pg_name and not args.keep:
            pgdb.drop_database(args.database_url, pg_name)
        if args.keep:
            print(f"  kept {work}" + (f" and database {pg_name}" if pg_name else ""))
        else:
            shutil.rmtree(work, ignore_errors=True)

    if not PEERS.exists():
        print(f"\npeers skipped: {PEERS} is absent (the shared folder sits beside the repo)")
    for job in jobs:
        job["peer"] = faster_peer(peers.get((job["run"], job["shape"], job["rows"]), {}))
        job["ratio"] = job["wall_done"] / job["peer"]["seconds"] if job["peer"] else None
    print()
    report(jobs, peers)
    print()
    worst(jobs)
    print()
    breakdown(jobs)
    print()
    ok = targets(jobs)
    failed = [job for job in jobs if job["problems"]]
    for job in failed:
        print(f"FAIL {job['shape']} {job['rows']:,} rows (job {job['job_id']}): {'; '.join(job['problems'])}")
    return 1 if failed or not ok else 0


# --- the report -------------------------------------------------------------------------------------


def fmt_mib(mib: float | None) -> str:
    if mib is None:
        return "-"
    return f"{mib / GIB_MIB:.2f} GiB" if mib >= GIB_MIB else f"{mib:.0f} MiB"


def fmt_s(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.2f}"


def faster_peer(results: dict[str, dict]) -> dict | None:
    ran = [r for r in results.values() if "seconds" in r]
    return min(ran, key=lambda r: r["seconds"]) if ran else None


def report(jobs: list[dict], peers: dict[tuple, dict[str, dict]]) -> None:
    """One line per job: the platform's wall time (trigger -> succeeded) and the peers' on the same rows."""
    print("platform: wall = this script's clock around the trigger (pre-flight included, 20 ms polling);")
    print("          db   = the job's own timestamps (created_at -> started_at / finished_at)")
    header = (
        f"{'run':>3} {'shape':<5} {'start':<5} {'rows':>10}  {'platform s':>16}  {'->running s':>13}  "
        f"{'platform peak RSS (process)':<36}{'plain s / RSS':>19}  {'multiproc(2) s / RSS':>20}  {'ratio':>6}  check"
    )
    print(header)
    print(f"{'':>27}  {'wall (db)':>16}  {'wall (db)':>13}")
    for job in jobs:
        db_total = job["finished"] - job["created"] if job["finished"] else None
        db_running = job["started"] - job["created"] if job["started"] else None
        rss = job["rss"]
        rss_text = f"{fmt_mib(rss['peak_mib'])} {rss['peak_role']}"
        cells = []
        for peer in ("plain", "multiprocessing"):
            result = peers.get((job["run"], job["shape"], job["rows"]), {}).get(peer)
            if result is None:
                cells.append("skipped")
            elif "seconds" in result:
                cells.append(f"{result['seconds']:.2f} / {fmt_mib(result['peak_rss_mib'])}")
            else:
                cells.append("FAIL")
        ratio = f"{job['ratio']:.2f}x" if job["ratio"] is not None else "-"
        check = "ok" if not job["problems"] else "FAIL"
        print(
            f"{job['run']:>3} {job['shape']:<5} {job['start']:<5} {job['rows']:>10,}  "
            f"{fmt_s(job['wall_done']):>7} ({fmt_s(db_total):>6})  "
            f"{fmt_s(job['wall_running']):>5} ({fmt_s(db_running):>5})  {rss_text:<36}"
            f"{cells[0]:>19}  {cells[1]:>20}  {ratio:>6}  {check}"
        )
    print("(ratio = platform wall / the faster peer on the same rows in the same run; peers' seconds are")
    print(" whole-process, imports included; platform peak RSS = the largest single process of the workers'")
    print(" trees, sampled every 50 ms; cold = fresh workers (their spare model processes imported the")
    print(" libraries, no model loaded), warm = the same job again)")


def worst(jobs: list[dict]) -> None:
    """The worst ratio of each case over the runs, and what a cold start costs over a warm one."""
    cases: dict[tuple, list[dict]] = {}
    for job in jobs:
        cases.setdefault((job["shape"], job["rows"], job["start"]), []).append(job)
    print("worst of the runs (ratio to the faster peer; cold - warm = what a cold start costs):")
    for (shape, rows, start), runs in cases.items():
        ratios = [j["ratio"] for j in runs if j["ratio"] is not None]
        walls = [j["wall_done"] for j in runs]
        text = f"worst {max(ratios):.2f}x, best {min(ratios):.2f}x" if ratios else "no peer"
        extra = ""
        if start == "cold":
            warm = cases.get((shape, rows, "warm"), [])
            if warm:
                extra = f"; cold - warm {max(walls) - max(j['wall_done'] for j in warm):+.2f} s (worst runs)"
        print(
            f"  {shape:<5} {rows:>10,} rows {start:<5}: {text} over {len(runs)} run(s); "
            f"wall worst {max(walls):.2f} s{extra}"
        )


def breakdown(jobs: list[dict]) -> None:
    """Where each job's time went, from the timestamps the job and its batches record."""
    print("where the time went (seconds, from the job's and its batches' timestamps):")
    for job in jobs:
        batches = [b for b in job["batches"] if b["started"] and b["finished"]]
        total = (job["finished"] - job["created"]) if job["finished"] else None
        print(
            f"  run {job['run']}, {job['shape']} {job['start']}, {job['rows']:,} rows, job {job['job_id']}: "
            f"{job['status']}, created -> finished {fmt_s(total)} s"
        )
        print(f"    trigger call (pre-flight + insert)      {job['wall_trigger_call']:7.2f}")
        if job["started"]:
            print(f"    queue wait (created -> started)         {job['started'] - job['created']:7.2f}")
        if job["extracted"] and job["started"]:
            sizes = sorted({b["rows"] for b in job["batches"]})
            size_text = f"{sizes[0]:,}" if len(sizes) == 1 else f"{sizes[0]:,}-{sizes[-1]:,}"
            print(
                f"    plan (started -> extracted)             {job['extracted'] - job['started']:7.2f}"
                f"   {len(job['batches'])} batch(es) of {size_text} rows (row groups of the lake table, not copied)"
            )
        if batches and job["started"]:
            first = min(b["started"] for b in batches)
            last = max(b["finished"] for b in batches)
            span = last - first
            busy = sum(b["finished"] - b["started"] for b in batches)
            predict = sum(b["predict_seconds"] or 0.0 for b in batches)
            slots = max(job["parallelism"], 1)
            print(f"    first batch starts (after started)      {first - job['started']:7.2f}")
            print(
                f"    predict span (first start -> last end)  {span:7.2f}"
                f"   {slots} slots busy {100 * busy / max(slots * span, 1e-9):.0f}%"
            )
            print(
                f"      batch time {busy:.2f} s = model predict() {predict:.2f} s + per-batch overhead "
                f"{busy - predict:.2f} s (read shard, to pandas, contract check, join, write the part, DB; "
                f"{(busy - predict) / len(batches):.2f} s/batch)"
            )
            print(
                "      first batch on each worker process:   "
                + ", ".join(
                    f"{b['finished'] - b['started']:.2f} s (predict {b['predict_seconds'] or 0:.2f})"
                    for b in first_per_worker(batches)
                )
                + (
                    f"   ({job['new_models']} model process(es) new in this job, spares included: the first batch"
                    " on each loads the model)"
                    if job["new_models"]
                    else "   (model processes warm from earlier jobs)"
                )
            )
            gaps = dispatch_gaps(batches)
            if gaps:
                print(
                    f"      idle gap between batches on a worker  mean {sum(gaps) / len(gaps):.3f} s, "
                    f"max {max(gaps):.3f} s over {len(gaps)} gaps (after_batch -> feed -> broker -> claim)"
                )
            model_rss = [b["peak_rss_mib"] for b in batches if b["peak_rss_mib"]]
            if model_rss:
                print(f"      model process peak RSS (its own ru_maxrss)  {fmt_mib(max(model_rss))}")
            if job["predicted"]:
                print(f"    commit wait (last batch -> commit claim) {job['predicted'] - last:7.2f}")
        if job["predicted"] and job["finished"]:
            print(
                f"    commit (claim -> finished)              {job['finished'] - job['predicted']:7.2f}"
                f"   commit the parts as {job['output_table']} (no data read)"
            )
        if job["finished"]:
            seen = job["trigger_epoch"] + job["wall_done"] - job["finished"]
            print(f"    seen by the poller after finished_at     {seen:7.2f}")
        roles = ", ".join(
            f"{role} {fmt_mib(mib)}" for role, mib in sorted(job["rss"]["by_role"].items(), key=lambda item: -item[1])
        )
        print(f"    peak RSS by process role ({job['rss']['processes']} processes): {roles}")


def first_per_worker(batches: list[dict]) -> list[dict]:
    firsts: dict[int, dict] = {}
    for batch in sorted(batches, key=lambda b: b["started"]):
        firsts.setdefault(batch["worker_pid"], batch)
    return list(firsts.values())


def dispatch_gaps(batches: list[dict]) -> list[float]:
    """Per worker process, the idle time between one batch's end and its next batch's start."""
    by_worker: dict[int, list[dict]] = {}
    for batch in batches:
        by_worker.setdefault(batch["worker_pid"], []).append(batch)
    gaps = []
    for runs in by_worker.values():
        runs.sort(key=lambda b: b["started"])
        gaps += [b["started"] - a["finished"] for a, b in itertools.pairwise(runs)]
    return gaps


def targets(jobs: list[dict]) -> bool:
    """Issue 10's targets, each on the worst job of its case (every shape and run)."""

    def missed(figure: float, target: float, unit: str) -> str:
        over = figure - target
        return f"NOT MET (by {over:.2f}{unit}, {100 * over / target:.0f}% over)"

    rows_out = []
    cold = [job for job in jobs if job["start"] == "cold"]
    for rows, target in TARGET_RATIOS.items():
        label = f"{rows:,} rows cold: platform wall <= {target:.1f}x faster peer"
        ran = [job for job in cold if job["rows"] == rows and job["ratio"] is not None]
        if ran:
            bad = max(ran, key=lambda j: j["ratio"])
            figure = (
                f"worst {bad['ratio']:.2f}x ({bad['shape']}, {bad['wall_done']:.2f} s / {bad['peer']['seconds']:.2f} s)"
            )
            rows_out.append((label, figure, "met" if bad["ratio"] <= target else missed(bad["ratio"], target, "x")))
        else:
            rows_out.append((label, "not run", "n/a"))

    label = f"trigger -> running <= {TARGET_RUNNING_S:.0f} s (empty queue)"
    running = [job["wall_running"] for job in jobs if job["wall_running"] is not None]
    if running:
        figure = f"max {max(running):.2f} s over {len(running)} jobs (wall)"
        ok = max(running) <= TARGET_RUNNING_S
        rows_out.append((label, figure, "met" if ok else missed(max(running), TARGET_RUNNING_S, " s")))
    else:
        rows_out.append((label, "no job started", "NOT MET"))

    label = f"{TARGET_SMALL_ROWS:,}-row job cold: trigger -> succeeded <= {TARGET_SMALL_S:.1f} s"
    small = [job for job in cold if job["rows"] == TARGET_SMALL_ROWS]
    if small:
        bad = max(small, key=lambda j: j["wall_done"])
        ok = all(j["status"] == "succeeded" for j in small) and bad["wall_done"] <= TARGET_SMALL_S
        figure = f"worst {bad['wall_done']:.2f} s (wall, {bad['shape']})"
        rows_out.append((label, figure, "met" if ok else missed(bad["wall_done"], TARGET_SMALL_S, " s")))
    else:
        rows_out.append((label, "not run", "n/a"))

    big = [job for job in jobs if job["rows"] == TARGET_BIG_ROWS and job["finished"]]
    for label, target, figure_of in (
        (
            f"{TARGET_BIG_ROWS:,} rows: commit <= {TARGET_COMMIT_S} s",
            TARGET_COMMIT_S,
            lambda j: j["finished"] - j["predicted"],
        ),
        (
            f"{TARGET_BIG_ROWS:,} rows: plan <= {TARGET_PLAN_S} s",
            TARGET_PLAN_S,
            lambda j: j["extracted"] - j["started"],
        ),
    ):
        if big:
            bad = max(big, key=figure_of)
            figure = f"worst {figure_of(bad):.2f} s ({bad['shape']} {bad['start']})"
            rows_out.append(
                (label, figure, "met" if figure_of(bad) <= target else missed(figure_of(bad), target, " s"))
            )
        else:
            rows_out.append((label, "not run", "n/a"))

    label = f"{TARGET_BIG_ROWS:,} rows: peak RSS of every platform process <= {fmt_mib(TARGET_RSS_MIB)}"
    if big:
        # 50 ms samples can miss a short peak; a model process's own ru_maxrss cannot.
        def peak(job: dict) -> float:
            reported = max((b["peak_rss_mib"] or 0.0 for b in job["batches"]), default=0.0)
            return max(job["rss"]["peak_mib"] or 0.0, reported)

        bad = max(big, key=peak)
        figure = f"worst {fmt_mib(peak(bad))} ({bad['shape']} {bad['start']}: {bad['rss']['peak_role']})"
        rows_out.append(
            (label, figure, "met" if peak(bad) <= TARGET_RSS_MIB else missed(peak(bad), TARGET_RSS_MIB, " MiB"))
        )
    else:
        rows_out.append((label, "not run", "n/a"))

    print(f"{'target':<62}{'figure':<58}verdict")
    for label, figure, verdict in rows_out:
        print(f"{label:<62}{figure:<58}{verdict}")
    return not any(verdict.startswith("NOT MET") for _, _, verdict in rows_out)


if __name__ == "__main__":
    sys.exit(main())
