#!/usr/bin/env python3
"""Benchmark of table downloads: rows/s and the serving process's peak RSS, CSV and Parquet.

    .venv/bin/python bench/download.py [--rows 1000000] [--keep]

1. A fresh data dir (SQLite and the lake in it), `migrate` in-process, a user with an API token,
   and a lake table of --rows rows of the demo's transactions (examples/fraud_model/data.py:
   10 columns of numbers, text and booleans), written in chunks.
2. For each format, a fresh web server (`manage.py serve`, as `make run` starts it, with one worker
   process of one thread, so one process serves the download): a warm-up download of one row,
   then the whole table twice (cold: the server's first; warm: the next) through
   GET /api/v1/tables/{name}/download/?format=… with the token,
   read by this process in 1 MiB pieces into a file, whose rows are counted (CSV: parsed with
   pyarrow; Parquet: its footer). Peak RSS is the worker process's VmHWM (the kernel's high-water
   mark of its resident memory, start-up included) once each download ended.
3. The peer, in a fresh process: a plain "load the whole table into pandas" (deltalake's
   DeltaTable(...).to_pandas()), and the same followed by DataFrame.to_csv() into memory, which is
   what a download that is not streamed would hold; their peak RSS (VmHWM) and time.

Target (issue 13): peak RSS of the serving process under 300 MiB for both formats at 1M rows.
Exits 1 when a download fails, has the wrong number of rows, or misses the target.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET_MIB = 300
TABLE = "prod.bench.transactions"
CHUNK_ROWS = 100_000
SETTINGS_ENV = (
    "DJANGO_SETTINGS_MODULE DATABASE_URL CELERY_BROKER_URL WAREHOUSE_CATALOGS WAREHOUSE_DEFAULT_CATALOG "
    "STAGING_URL ARTIFACTS_URL DJANGO_DEBUG DJANGO_ALLOWED_HOSTS LOG_LEVEL"
).split()
MIB = 1024 * 1024


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def server_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV}
    return env | {
        "DJANGO_SETTINGS_MODULE": "mlplatform.settings",
        "MLPLATFORM_DATA_DIR": str(data_dir),
        "DJANGO_DEBUG": "false",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
    }


# --- 1. the data ----------------------------------------------------------------------------------


def prepare(data_dir: Path, rows: int) -> str:
    """Migrate, make a user and its token, write the table; the token."""
    os.environ.update(server_env(data_dir))
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    import pyarrow as pa
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from examples.fraud_model.data import generate
    from tables import selectors

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("bench", password=None)
    catalog, name = selectors.resolve(TABLE)
    chunks = (
        pa.RecordBatch.from_pandas(
            generate(min(CHUNK_ROWS, rows - start), seed=start, start_id=start).drop(columns=["label"]),
            preserve_index=False,
        )
        for start in range(0, rows, CHUNK_ROWS)
    )
    first = next(chunks)
    written = catalog.create(name, first.schema, itertools.chain([first], chunks))
    assert written == rows, (written, rows)
    return Token.objects.create(user=user).key


# --- 2. a download through a server ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(data_dir: Path, port: int) -> tuple[subprocess.Popen, int]:
    """`manage.py serve` with one worker process of one thread; the server and the worker's pid."""
    import psutil

    command = [sys.executable, "manage.py", "serve", f"127.0.0.1:{port}", "--workers", "1", "--threads", "1"]
    server = subprocess.Popen(
        command, cwd=REPO, env=server_env(data_dir), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                workers = psutil.Process(server.pid).children()
                if workers:
                    return server, workers[0].pid
        except OSError:
            if server.poll() is not None:
                raise SystemExit(f"the server did not start:\n{server.stderr.read().decode()[-2000:]}") from None
        time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not listen within 60 s")


def stop(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def download(port: int, token: str, fmt: str, target: Path, limit: int | None = None) -> tuple[int, float]:
    """Bytes received and seconds taken, the body written to `target`."""
    query = f"format={fmt}" + (f"&limit={limit}" if limit else "")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    start = time.perf_counter()
    conn.request("GET", f"/api/v1/tables/{TABLE}/download/?{query}", headers={"Authorization": f"Token {token}"})
    response = conn.getresponse()
    if response.status != 200:
        raise SystemExit(f"download {fmt}: HTTP {response.status}: {response.read()[:500]!r}")
    size = 0
    with target.open("wb") as out:
        while piece := response.read(MIB):
            out.write(piece)
            size += len(piece)
    conn.close()
    return size, time.perf_counter() - start


def count_rows(path: Path, fmt: str) -> int:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if fmt == "parquet":
        return pq.ParquetFile(path).metadata.num_rows
    return sum(batch.num_rows for batch in pacsv.open_csv(path))


def measure(data_dir: Path, token: str, fmt: str, rows: int) -> list[dict]:
    """The whole table twice from one fresh server: cold (its first whole download) and warm."""
    port = free_port()
    server, worker = start_server(data_dir, port)
    results = []
    try:
        target = data_dir / f"download.{fmt}"
        download(port, token, fmt, target, limit=1)  # warm-up: the first request's imports
        for run in ("cold", "warm"):
            before = rss_mib(worker)
            size, seconds = download(port, token, fmt, target)
            peak = peak_rss_mib(worker)
            got = count_rows(target, fmt)
            target.unlink()
            results.append(
                {
                    "what": f"download {fmt} ({run})",
                    "rows": got,
                    "ok": got == rows,
                    "seconds": seconds,
                    "mb": size / 1e6,
                    "before_mib": before,
                    "peak_mib": peak,
                }
            )
    finally:
        stop(server)
    return results


# --- 3. the peer ---------------------------------------------------------------------------------


def peer(data_dir: Path, to_csv: bool) -> dict:
    """In this (fresh) process: the whole table into pandas, then to CSV in memory if asked."""
    start = time.perf_counter()
    import io

    from deltalake import DeltaTable

    frame = DeltaTable(str(data_dir / "lake" / "bench" / "transactions")).to_pandas()
    size = 0
    if to_csv:
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False)
        size = len(buffer.getvalue())
    return {
        "what": "pandas load" + (" + to_csv" if to_csv else ""),
        "rows": len(frame),
        "ok": True,
        "seconds": time.perf_counter() - start,
        "mb": size / 1e6,
        "before_mib": None,
        "peak_mib": peak_rss_mib(os.getpid()),
    }


def run_peer(data_dir: Path, to_csv: bool) -> dict:
    command = [sys.executable, __file__, "--peer", str(data_dir)] + (["--to-csv"] if to_csv else [])
    out = subprocess.run(command, cwd=REPO, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


# --- the report ----------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the data dir (its path is printed)")
    parser.add_argument("--peer", help=argparse.SUPPRESS)  # internal: run the peer on this data dir
    parser.add_argument("--to-csv", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer:
        print(json.dumps(peer(Path(args.peer), args.to_csv)))
        sys.stdout.flush()
        os._exit(0)  # pyarrow's threads can abort an interpreter's exit; the figures are out

    data_dir = Path(tempfile.mkdtemp(prefix="bench-download-"))
    try:
        start = time.perf_counter()
        token = prepare(data_dir, args.rows)
        print(f"{args.rows:,} rows of the demo's transactions written in {time.perf_counter() - start:.1f} s")
        results = [result for fmt in ("csv", "parquet") for result in measure(data_dir, token, fmt, args.rows)]
        results += [run_peer(data_dir, to_csv=False), run_peer(data_dir, to_csv=True)]
    finally:
        if args.keep:
            print(f"data dir kept: {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)

    print(f"\n{'':26} {'rows':>10} {'s':>7} {'rows/s':>11} {'MB':>7} {'RSS before':>11} {'peak RSS':>9}")
    for r in results:
        before = f"{r['before_mib']:,.0f} MiB" if r["before_mib"] is not None else "-"
        print(
            f"{r['what']:26} {r['rows']:>10,} {r['seconds']:>7.2f} {r['rows'] / r['seconds']:>11,.0f} "
            f"{r['mb']:>7.1f} {before:>11} {r['peak_mib']:>5,.0f} MiB"
        )
    load = os.getloadavg()[0]
    print(f"(load average {load:.1f} on {os.cpu_count()} CPUs; peak RSS = VmHWM, start-up included)")
    failed = [r["what"] for r in results if not r["ok"]]
    over = [r["what"] for r in results if r["what"].startswith("download") and r["peak_mib"] >= TARGET_MIB]
    for what in failed:
        print(f"FAILED: {what} did not return {args.rows:,} rows")
    for what in over:
        print(f"MISSED: {what} peaked at or over {TARGET_MIB} MiB")
    if not failed and not over:
        print(f"target met: both downloads under {TARGET_MIB} MiB peak RSS")
    sys.stdout.flush()
    os._exit(1 if failed or over else 0)  # as above: an exit that pyarrow's threads cannot abort


if __name__ == "__main__":
    main()
