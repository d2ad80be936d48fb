#!/usr/bin/env python3
"""Benchmark of the warehouse catalogs: how fast tables move, and how much memory that takes.

    .venv/bin/python bench/tables.py [--rows 5000000] [--postgres-url postgresql://...]

Generates the demo fraud table (fixed seed, in chunks), writes it to a Parquet file and into a
lake catalog in a temporary folder, then times, each phase in a fresh process of this script so
that peak RSS figures do not pollute each other:

  lake-read   read the lake table as Arrow batches
  lake-copy   read it and write it back as a new lake table
  pg-write    create a PostgreSQL table from the lake table (ADBC: Arrow into binary COPY)
  pg-read     read the PostgreSQL table as Arrow batches (COPY TO STDOUT)
  pg-copy     read the PostgreSQL table and create a copy of it

and runs the `io-floor` peer of ../shared/bench/peers.py on the same Parquet file in the same
run. PostgreSQL phases run when a URL is given (or DATABASE_URL is a PostgreSQL URL); they work
in a schema of their own, dropped at the end. Targets: lake copy <= 1.5 x io-floor, peak RSS
< 1 GiB for both catalogs, PostgreSQL >= 1,000,000 rows/s each way (issue 10).
"""

from __future__ import annotations

import time

T0 = time.perf_counter()  # like peers.py: a phase's process time counts its imports too

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from mlplatform.warehouse import LakeCatalog, PostgresCatalog, TableName  # noqa: E402

PEERS = REPO.parent / "shared" / "bench" / "peers.py"
DEFAULT_MODEL = "examples.fraud_model:FraudModel"
STUB_MODEL = "bench.tables:ConstantModel"
SEED = 20240601
CHUNK_ROWS = 131_072
GIB = 1024
TARGET_RATIO = 1.5
TARGET_PG_ROWS_PER_S = 1_000_000

SCHEMA = pa.schema(
    [
        ("transaction_id", pa.int64()),
        ("amount", pa.float64()),
        ("country", pa.string()),
        ("device", pa.string()),
        ("account_age_days", pa.int64()),
        ("hour_of_day", pa.int64()),
        ("num_prev_transactions", pa.int64()),
        ("avg_amount_30d", pa.float64()),
        ("is_foreign", pa.bool_()),
        ("merchant_category", pa.string()),
    ]
)
COUNTRIES = ["us", "gb", "de", "fr", "es", "it", "nl", "br", "in", "jp"]
DEVICES = ["mobile", "desktop", "tablet"]
CATEGORIES = ["grocery", "electronics", "travel", "fashion", "gaming", "restaurants", "fuel", "health"]


def _choice(rng: np.random.Generator, values: list[str], n: int) -> pa.Array:
    codes = pa.array(rng.integers(0, len(values), n, dtype=np.int32))
    return pa.DictionaryArray.from_arrays(codes, pa.array(values)).cast(pa.string())


def demo_batches(rows: int, seed: int = SEED) -> Iterator[pa.RecordBatch]:
    """The demo fraud table, generated chunk by chunk (same seed, same rows)."""
    rng = np.random.default_rng(seed)
    for start in range(0, rows, CHUNK_ROWS):
        n = min(CHUNK_ROWS, rows - start)
        amount = rng.lognormal(3.5, 1.2, n).round(2)
        yield pa.record_batch(
            [
                pa.array(np.arange(start, start + n, dtype=np.int64)),
                pa.array(amount),
                _choice(rng, COUNTRIES, n),
                _choice(rng, DEVICES, n),
                pa.array(rng.integers(0, 3650, n)),
                pa.array(rng.integers(0, 24, n)),
                pa.array(rng.poisson(40, n).astype(np.int64)),
                pa.array((amount * rng.uniform(0.5, 1.5, n)).round(2)),
                pa.array(rng.random(n) < 0.1),
                _choice(rng, CATEGORIES, n),
            ],
            schema=SCHEMA,
        )


class ConstantModel:
    """A stand-in model for the io-floor peer when the example model is not importable."""

    def predict(self, df):  # noqa: ANN001 - a pandas DataFrame, as the platform's models get
        import pandas as pd

        return pd.DataFrame({"fraud_probability": [0.5] * len(df), "is_fraud": [False] * len(df)})


# --- phases: each runs in a fresh process and prints one JSON line ------------------------------


def _lake(work: Path) -> LakeCatalog:
    return LakeCatalog("lake", (work / "lake").as_uri())


def _pg(args: argparse.Namespace) -> PostgresCatalog:
    return PostgresCatalog("pg", os.environ["BENCH_POSTGRES_URL"])


def _count(batches: Iterator[pa.RecordBatch]) -> int:
    return sum(b.num_rows for b in batches)


def phase(args: argparse.Namespace) -> dict:
    work = Path(args.work)
    source = TableName("lake", "default", "demo")
    pg_source = TableName("pg", args.pg_schema or "x", "demo")
    start = time.perf_counter()
    if args.phase == "generate":
        writer = pq.ParquetWriter(work / "in.parquet", SCHEMA)

        def tee() -> Iterator[pa.RecordBatch]:
            for batch in demo_batches(args.rows):
                writer.write_batch(batch)
                yield batch

        rows = _lake(work).create(source, SCHEMA, tee())
        writer.close()
    elif args.phase == "lake-read":
        rows = _count(_lake(work).read_batches(source))
    elif args.phase == "lake-copy":
        lake = _lake(work)
        rows = lake.create("default.demo_copy", SCHEMA, lake.read_batches(source))
    elif args.phase == "pg-write":
        rows = _pg(args).create(pg_source, SCHEMA, _lake(work).read_batches(source))
    elif args.phase == "pg-read":
        rows = _count(_pg(args).read_batches(pg_source))
    elif args.phase == "pg-copy":
        pg = _pg(args)
        copy = TableName("pg", pg_source.schema, "demo_copy")
        rows = pg.create(copy, pg.arrow_schema(pg_source), pg.read_batches(pg_source))
    else:
        raise SystemExit(f"unknown phase {args.phase}")
    end = time.perf_counter()
    return {
        "phase": args.phase,
        "rows": rows,
        "seconds": round(end - start, 3),
        "process_seconds": round(end - T0, 3),
        "rows_per_s": round(rows / (end - start)),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


# --- the driver ------------------------------------------------------------------------------------


def run_phase(name: str, args: argparse.Namespace, work: Path, pg_schema: str | None) -> dict:
    command = [sys.executable, __file__, "--phase", name, "--work", str(work), "--rows", str(args.rows)]
    if pg_schema:
        command += ["--pg-schema", pg_schema]
    env = dict(os.environ)
    if args.postgres_url:
        env["BENCH_POSTGRES_URL"] = args.postgres_url  # not on the command line: it may hold a password
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"phase {name} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        f"  {name:<10} {result['rows']:>10,} rows  {result['seconds']:>7.2f} s  "
        f"{result['rows_per_s']:>10,} rows/s  peak RSS {result['peak_rss_mib']:>7.1f} MiB",
        flush=True,
    )
    return result


def run_peer(work: Path, model: str) -> dict | None:
    """The io-floor peer on the same Parquet file; None (with a message) when it cannot run."""
    if not PEERS.exists():
        print(f"  io-floor   skipped: {PEERS} is absent (the shared folder sits beside the repo)")
        return None
    for candidate in dict.fromkeys([model, STUB_MODEL]):
        command = [sys.executable, str(PEERS), "io-floor", "--input", str(work / "in.parquet")]
        command += ["--output", str(work / "out.parquet"), "--model", candidate]
        done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, check=False)
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        result = json.loads(lines[-1]) if lines else {}
        if done.returncode == 0 and "seconds" in result:
            result["model"] = candidate
            print(
                f"  io-floor   {result['rows']:>10,} rows  {result['seconds']:>7.2f} s  "
                f"{result['rows_per_s']:>10,} rows/s  peak RSS {result['peak_rss_mib']:>7.1f} MiB"
                f"  (peer, model {candidate}, whole process)",
                flush=True,
            )
            return result
        error = (done.stderr.strip().splitlines() or [str(result)])[-1]
        print(f"  io-floor   with model {candidate} failed: {error}")
    return None


def drop_schema(url: str, schema: str) -> None:
    import psycopg2
    from psycopg2 import sql

    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    finally:
        conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--postgres-url", help="default: DATABASE_URL when it is a PostgreSQL URL")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="model class for the io-floor peer")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--pg-schema", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(phase(args)))
        return 0

    if not args.postgres_url and os.environ.get("DATABASE_URL", "").startswith("postgres"):
        args.postgres_url = os.environ["DATABASE_URL"]
    work = Path(tempfile.mkdtemp(prefix="bench-tables-"))
    pg_schema = f"bench_{uuid.uuid4().hex[:12]}" if args.postgres_url else None
    print(f"{args.rows:,} rows of the demo table in {work}")
    results: dict[str, dict] = {}
    try:
        for name in ["generate", "lake-read", "lake-copy"]:
            results[name] = run_phase(name, args, work, pg_schema)
        if pg_schema:
            for name in ["pg-write", "pg-read", "pg-copy"]:
                results[name] = run_phase(name, args, work, pg_schema)
        else:
            print("  postgres   skipped: no --postgres-url and DATABASE_URL is not a PostgreSQL URL")
        peer = run_peer(work, args.model)
    finally:
        if pg_schema:
            drop_schema(args.postgres_url, pg_schema)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    report(results, peer)
    return 0


def report(results: dict[str, dict], peer: dict | None) -> None:
    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else ("met" if ok else "NOT MET")

    rows = []
    copy = results["lake-copy"]
    if peer:
        ratio = copy["process_seconds"] / peer["seconds"]
        rows.append(
            (
                f"lake copy / io-floor <= {TARGET_RATIO}",
                f"{ratio:.2f} ({copy['process_seconds']:.2f} s / {peer['seconds']:.2f} s)",
                verdict(ratio <= TARGET_RATIO),
            )
        )
    else:
        rows.append((f"lake copy / io-floor <= {TARGET_RATIO}", "peer not run", verdict(None)))
    lake_peak = max(results[p]["peak_rss_mib"] for p in ("lake-read", "lake-copy"))
    rows.append(("lake peak RSS < 1 GiB", f"{lake_peak:.0f} MiB", verdict(lake_peak < GIB)))
    if "pg-read" in results:
        pg_peak = max(results[p]["peak_rss_mib"] for p in ("pg-write", "pg-read", "pg-copy"))
        rows.append(("PostgreSQL peak RSS < 1 GiB", f"{pg_peak:.0f} MiB", verdict(pg_peak < GIB)))
        for label, key in [("read", "pg-read"), ("write", "pg-write")]:
            speed = results[key]["rows_per_s"]
            rows.append(
                (
                    f"PostgreSQL {label} >= {TARGET_PG_ROWS_PER_S:,} rows/s",
                    f"{speed:,} rows/s",
                    verdict(speed >= TARGET_PG_ROWS_PER_S),
                )
            )
    else:
        rows.append(("PostgreSQL targets", "not run", verdict(None)))
    print("\ntarget                                figure                              verdict")
    for label, figure, result in rows:
        print(f"{label:<37} {figure:<35} {result}")
    print(
        "\n(seconds are the operation alone; the ratio compares whole-process times, imports "
        "included, as peers.py measures them)"
    )


if __name__ == "__main__":
    sys.exit(main())
