#!/usr/bin/env python3
"""Load benchmark of the web server: N concurrent clients polling for T seconds; prints its figures.

    .venv/bin/python bench/load.py --database-url postgresql://postgres@127.0.0.1:5432/test
        [--server make-run|gunicorn] [--clients 50] [--seconds 30] [--interval 0] [--scenario mixed|poll]
        [--jobs 2000] [--workers 4]

1. A fresh data dir and the database bench_load on the server of --database-url (dropped and
   created anew; SQLite in the data dir without it), migrated and seeded as bench/board.py does
   (--jobs jobs, 20 batches each; 20 queued and 5 running at the top of the board).
2. A web server on 127.0.0.1, started the way its users start it: `make-run` as `make run` does
   (`manage.py serve`: gunicorn, 2 processes of 4 threads), or `gunicorn` as the README's production
   section does (`-w --workers` sync workers, with DB_CONN_MAX_AGE=60). DEBUG off.
3. --clients threads, each with its own keep-alive connection and a logged-in session, for
   --seconds seconds:
   - `mixed`: each client in turn opens the board, a running job's page and that job's API
     record, waiting --interval seconds between requests (0: as fast as the server answers);
   - `poll`: each client polls one running job's live fragment (what the job page's htmx asks for
     every 2 s) every --interval seconds (2 unless given).
   Meanwhile the database's connections are counted every 0.25 s (PostgreSQL: pg_stat_activity).
4. Per kind of request: count, p50, p95 and max in ms, and errors (statuses other than 200/286/304,
   and refused or reset connections), then the peak number of database connections.
   Target (issue 12): `poll` with 100 clients every 2 s against gunicorn: p95 <= 300 ms, no errors
   (each client's first request, the page's first view, is reported apart: it renders in full).

Exits 1 when a request failed or, for `poll`, the target is missed. Figures drift on a shared 2-core
machine: the load average is printed beside them.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import board  # bench/board.py, beside this script: seeding
import pgdb

REPO = Path(__file__).resolve().parent.parent
PG_DATABASE = "bench_load"
TARGET_P95_MS = 300.0
OK = {200, 286, 304}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def session_cookie(user) -> str:
    """A logged-in session for `user`, as the login page would make it."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return f"sessionid={session.session_key}"


def start_server(kind: str, port: int, data_dir: Path, database_url: str, workers: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in board.SETTINGS_ENV}
    env |= {
        "MLPLATFORM_DATA_DIR": str(data_dir),
        "DATABASE_URL": database_url,
        "DJANGO_DEBUG": "false",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
    }
    python = sys.executable
    if kind == "make-run":
        command = [python, "manage.py", "serve", f"127.0.0.1:{port}"]
    else:
        env["DB_CONN_MAX_AGE"] = "60"
        gunicorn = str(Path(python).with_name("gunicorn"))
        command = [gunicorn, "mlplatform.wsgi", "-w", str(workers), "-b", f"127.0.0.1:{port}", "--log-level", "warning"]
    server = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            if server.poll() is not None:
                raise SystemExit(f"the server did not start:\n{server.stderr.read().decode()[-2000:]}") from None
            time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not listen within 60 s")


class Client(threading.Thread):
    def __init__(self, port: int, cookie: str, requests: list[tuple[str, str, dict]], interval: float, until: float):
        super().__init__(daemon=True)
        self.port, self.cookie, self.requests, self.interval, self.until = port, cookie, requests, interval, until
        self.times: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, list[str]] = defaultdict(list)
        self.etags: dict[str, str] = {}
        self.seen: set[str] = set()

    def _connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def run(self) -> None:
        time.sleep(random.uniform(0, self.interval))  # browsers are not opened in the same instant
        connection, turn = self._connection(), 0
        while time.monotonic() < self.until:
            label, path, headers = self.requests[turn % len(self.requests)]
            turn += 1
            headers = {"Cookie": self.cookie, **headers}
            if path in self.etags:  # a browser revalidates what it has
                headers["If-None-Match"] = self.etags[path]
            started = time.perf_counter()
            try:
                try:
                    connection.request("GET", path, headers=headers)
                    response = connection.getresponse()
                except (ConnectionResetError, http.client.RemoteDisconnected, BrokenPipeError):
                    # The server closed the kept-alive connection as it was reused: a browser sends
                    # the request again on a new one, and so does this client.
                    connection.close()
                    connection = self._connection()
                    connection.request("GET", path, headers=headers)
                    response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as exc:
                self.errors[label].append(type(exc).__name__)
                connection.close()
                connection = self._connection()
                time.sleep(0.1)
                continue
            # A browser's first request is the page's first view (rendered in full): polls come after.
            self.times[label if path in self.seen else f"{label} (first view)"].append(
                (time.perf_counter() - started) * 1000
            )
            self.seen.add(path)
            if response.status not in OK:
                self.errors[label].append(str(response.status))
            if response.getheader("ETag"):
                self.etags[path] = response.getheader("ETag")
            if response.getheader("Connection", "").lower() == "close":
                connection.close()
                connection = self._connection()
            if self.interval:
                time.sleep(self.interval)
        connection.close()


def count_connections(database_url: str, database: str) -> int:
    from django.db import connection

    if not database_url.startswith("postgres"):
        return 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [database])
        return cursor.fetchone()[0] - 1  # not this sampler's own


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="a postgresql:// URL: the run uses bench_load on its server")
    parser.add_argument("--server", choices=["make-run", "gunicorn"], default="make-run")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn's worker processes")
    parser.add_argument("--scenario", choices=["mixed", "poll"], default="mixed")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--interval", type=float, help="seconds a client waits between requests (mixed 0, poll 2)")
    parser.add_argument("--jobs", type=int, default=2_000)
    args = parser.parse_args()
    interval = args.interval if args.interval is not None else (2.0 if args.scenario == "poll" else 0.0)

    data_dir = Path(tempfile.mkdtemp(prefix="bench-load-"))
    server = None
    try:
        database_url = f"sqlite:///{data_dir / 'db.sqlite3'}"
        if args.database_url:
            database_url = pgdb.create_database(args.database_url, PG_DATABASE, replace=True)
        board.django_setup(data_dir, database_url)
        print(f"seeding {args.jobs:,} jobs ...", flush=True)
        seeded = board.seed(args.jobs, 20)
        from batchjobs.choices import JobStatus
        from batchjobs.models import BatchJob

        running = [str(pk) for pk in BatchJob.objects.filter(status=JobStatus.RUNNING).values_list("pk", flat=True)]
        cookie = session_cookie(seeded.user)
        port = free_port()
        server = start_server(args.server, port, data_dir, database_url, args.workers)
        print(
            f"{args.clients} clients, {args.scenario}, every {interval:g} s, for {args.seconds:g} s against "
            f"{args.server}{f' -w {args.workers}' if args.server == 'gunicorn' else ''} ({board.load()}) ...",
            flush=True,
        )
        until = time.monotonic() + args.seconds
        clients = []
        for i in range(args.clients):
            job = running[i % len(running)]
            live = {"HX-Request": "true", "HX-Target": "job-live"}
            if args.scenario == "poll":
                requests = [("job page fragment", f"/batch/{job}/", live)]
            else:
                requests = [
                    ("board", "/batch/", {}),
                    ("job page", f"/batch/{job}/", {}),
                    ("job API", f"/api/v1/batch-jobs/{job}/", {}),
                ]
            clients.append(Client(port, cookie, requests, interval, until))
        peak = 0
        for client in clients:
            client.start()
        while any(client.is_alive() for client in clients):
            peak = max(peak, count_connections(database_url, PG_DATABASE))
            time.sleep(0.25)
        print(f"done ({board.load()})")
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        from django.db import connections

        connections.close_all()
        if args.database_url:
            pgdb.drop_database(args.database_url, PG_DATABASE)
        shutil.rmtree(data_dir, ignore_errors=True)

    times: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, list[str]] = defaultdict(list)
    for client in clients:
        for label, values in client.times.items():
            times[label] += values
        for label, values in client.errors.items():
            errors[label] += values
    failed = False
    for label in sorted(set(times) | set(errors)):
        values = times[label]
        p50, p95 = (
            (statistics.quantiles(values, n=100, method="inclusive")[i] for i in (49, 94))
            if len(values) > 1
            else (0, 0)
        )
        kinds = ", ".join(f"{e} x{errors[label].count(e)}" for e in sorted(set(errors[label])))
        print(
            f"  {label:<20} {len(values):6,} answers  p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  "
            f"max {max(values, default=0):7.1f} ms  errors {len(errors[label]):,}{f' ({kinds})' if kinds else ''}"
        )
        failed |= bool(errors[label])
        if args.scenario == "poll" and "first view" not in label:
            met = p95 <= TARGET_P95_MS
            print(f"  target p95 <= {TARGET_P95_MS:g} ms: {'met' if met else 'MISSED'}")
            failed |= not met
    print(
        f"  peak database connections: {peak}"
        if database_url.startswith("postgres")
        else "  (SQLite: no connection count)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
