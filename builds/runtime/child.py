"""The model process: loads one build and answers requests from its parent (a worker).

Model code is untrusted, so it runs only here: a separate process with a clean environment (the
batch config's variables and nothing of the platform's), its own memory limit, and no Django.
It is started as ``python -I -u child.py --root REPO --cmd-fd R --res-fd W [--memory-mb N]``.

Protocol: one JSON object per line on the command fd, one JSON reply per line on the result fd.
The model's stdout and stderr go to fd 1, which the parent captures; after each request the child
writes END_OF_REQUEST there so the parent can cut the captured output per request.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import sys
import time
import traceback

END_OF_REQUEST = b"\n\x1e--mlplatform-end-of-request--\x1e\n"
ORDINAL = "_mlp_ordinal"

_model = None
_schema = None
_thread_limits = None  # threadpoolctl's limits, kept for the process's life

# What a spare process imports before it knows its model (the common stack: most of a cold
# start is these imports). Absent ones are skipped.
PREIMPORTS = (
    "numpy",
    "pandas",
    "pyarrow",
    "pyarrow.parquet",
    "joblib",
    "threadpoolctl",
    "sklearn",
    "sklearn.base",
    "sklearn.pipeline",
    "sklearn.preprocessing",
    "sklearn.linear_model",
    "sklearn.ensemble",
)
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _preimport() -> None:
    for name in PREIMPORTS:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001, S112 - a library missing or broken here is the model's concern
            continue


def _adopt(message: dict) -> None:
    """A spare process takes on its model's environment and limits (a fresh one got them at start):
    the config's variables, the thread counts (applied to the already-loaded libraries), memory."""
    global _thread_limits
    if message.get("env") is not None:
        os.environ.clear()
        os.environ.update(message["env"])
        threads = next((os.environ[v] for v in THREAD_VARIABLES if os.environ.get(v, "").isdigit()), None)
        if threads and "threadpoolctl" in sys.modules:
            _thread_limits = sys.modules["threadpoolctl"].threadpool_limits(limits=int(threads))
    if message.get("memory_mb"):
        limit = int(message["memory_mb"]) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if message.get("cpu_seconds"):
        _limit_cpu(int(message["cpu_seconds"]))


def _limit_cpu(seconds: int) -> None:
    """CPU time (all its threads): SIGXCPU at the limit, SIGKILL a little after if it is ignored."""
    resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 5))


def _limit(args) -> None:
    """The limits model code cannot lift (it has no privileges to raise a hard limit): a sandboxed
    root worker's model first becomes nobody for good (see builds/runtime/sandbox.py), so that the
    process limit counts its processes."""
    if args.drop_to is not None:
        os.setgroups([])
        os.setresgid(args.drop_to, args.drop_to, args.drop_to)
        os.setresuid(args.drop_to, args.drop_to, args.drop_to)
    if args.memory_mb:
        limit = args.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if args.max_processes:
        resource.setrlimit(resource.RLIMIT_NPROC, (args.max_processes, args.max_processes))
    if args.max_file_mb:
        limit = args.max_file_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    if args.cpu_seconds:
        _limit_cpu(args.cpu_seconds)


def _load(message: dict) -> dict:
    global _model, _schema
    from mlplatform.sdk import ModelSchema, check_schema
    from mlplatform.sdk.contract import platform_process

    platform_process()  # this process checks every predict() call itself: the model's own checks stay off
    _adopt(message)
    _set_name(b"mlp-model")
    if message["kind"] == "source":
        sys.path.insert(0, message["path"])
        module_name, _, class_name = message["entrypoint"].partition(":")
        cls = getattr(importlib.import_module(module_name), class_name)
        _model = cls()
    else:
        with open(message["path"], "rb") as handle:
            if message["path"].endswith(".joblib"):
                import joblib

                _model = joblib.load(handle)
            else:
                import pickle

                _model = pickle.load(handle)  # noqa: S301 - untrusted by design, hence this process
    for method in ("schema", "predict"):
        if not callable(getattr(_model, method, None)):
            raise TypeError(f"the loaded object ({type(_model).__name__}) has no {method}() method")
    schema = _model.schema()
    errors = check_schema(schema)
    _schema = schema if not errors else None
    return {"schema": schema.to_dict() if isinstance(schema, ModelSchema) else None, "schema_errors": errors}


def _require_model():
    if _model is None or _schema is None:
        raise RuntimeError("no model with a valid schema is loaded in this process")
    return _model, _schema


def _verify(message: dict) -> dict:
    """The platform's whole contract check (mlplatform.sdk.check_model) on sample rows."""
    import pandas as pd

    from mlplatform.sdk import check_model
    from mlplatform.sdk.contract import MAX_ROW_BYTES

    model, _ = _require_model()
    sample_path = message.get("sample")
    sample = None
    if sample_path and sample_path.endswith(".csv"):
        sample = pd.read_csv(sample_path).head(20)
    elif sample_path:
        sample = pd.read_parquet(sample_path).head(20)
    limit = message.get("max_row_bytes", MAX_ROW_BYTES)
    report = check_model(model, sample, call=_quietly(model.predict), max_row_bytes=limit)
    return {"rows": report.rows, "notes": report.notes}


def _predict(message: dict) -> dict:
    """Read a batch (an Arrow file, mapped, or a Parquet file), predict, check the contract, and write
    the predictions: an Arrow file for a batch job's worker, or Parquet with the ordinal."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlplatform.sdk import check_predict

    model, schema = _require_model()
    if message["input"].endswith(".arrow"):
        with pa.memory_map(message["input"]) as source:
            table = pa.ipc.open_file(source).read_all()
    else:
        table = pq.read_table(message["input"])
    ordinals = table.column(ORDINAL) if ORDINAL in table.column_names else None
    if ordinals is not None:
        table = table.drop_columns([ORDINAL])
    frame = table.to_pandas()
    # Each row's position in the input is its index: rows a model returns in another order carry it.
    first = int(message.get("first_ordinal") or 0)
    frame.index = (
        pd.Index(ordinals.to_numpy(), name=None) if ordinals is not None else pd.RangeIndex(first, first + len(frame))
    )
    started = time.perf_counter()
    output = model.predict(frame.copy(deep=False))  # copy-on-write (pandas 3): the model cannot change ours
    seconds = time.perf_counter() - started
    # Each prediction column in the Arrow type of the build's verified schema (the output table's).
    result, notes = check_predict(
        model,
        frame,
        output,
        schema,
        call=_quietly(model.predict),
        max_row_bytes=message.get("max_row_bytes"),
        types=message.get("types") or None,
        seed=first,
    )
    if message.get("format", "arrow") == "arrow":  # a batch job's: the worker joins them with the rows it read
        with pa.OSFile(message["output"], "wb") as sink, pa.ipc.new_file(sink, result.schema) as writer:
            writer.write_table(result)
    else:  # "Try on 100 rows": Parquet, with the ordinal
        if ordinals is None:
            ordinals = pa.array(range(len(frame)), type=pa.int64())
        pq.write_table(result.append_column(ORDINAL, ordinals), message["output"], compression="snappy")
    reply = {"rows": len(frame), "notes": notes, "predict_seconds": seconds}
    if message.get("pace"):
        reply |= _pace(model, frame, seconds)
    return reply


PACE_MAX_ROWS = 10_000
PACE_BUDGET_S = 1.0  # the longest call the pace measure makes


def _pace(model, frame, first_seconds: float) -> dict:
    """predict()'s cost per call and per row, for projecting a whole job from a try: the try's rows
    alone mostly measure a call's fixed cost. The rows are drawn again (with repeats) into calls ten
    times larger, up to PACE_MAX_ROWS rows, while a call stays within PACE_BUDGET_S; the cost per row
    is the slope between the two largest calls. Nothing of these calls is kept or printed."""
    call = _quietly(model.predict)

    def timed(rows: int) -> float:
        sample = frame.sample(n=rows, replace=rows > len(frame), random_state=rows).reset_index(drop=True)
        started = time.perf_counter()
        call(sample)
        return time.perf_counter() - started

    if len(frame) == 0:
        return {}
    try:
        points = [(len(frame), min(first_seconds, timed(len(frame))))]  # a second call: no first-call warm-up
        while points[-1][0] < PACE_MAX_ROWS and points[-1][1] * 10 <= PACE_BUDGET_S:
            rows = min(points[-1][0] * 10, PACE_MAX_ROWS)
            points.append((rows, timed(rows)))
    except Exception:  # noqa: BLE001 - a model that fails on drawn rows: the try's own pace stands
        return {}
    if len(points) < 2:
        (rows, seconds) = points[0]
        return {"per_row_seconds": seconds / rows, "call_seconds": 0.0, "paced_rows": rows}
    (small, t_small), (large, t_large) = points[-2], points[-1]
    per_row = max(t_large - t_small, 0.0) / (large - small)
    return {"per_row_seconds": per_row, "call_seconds": max(t_small - small * per_row, 0.0), "paced_rows": large}


def _quietly(function):
    """`function`, with what it prints (Python's and C's writes to stdout and stderr) discarded: the
    row-order check calls predict() a second time, and its output would only repeat the first's."""

    def call(*args, **kwargs):
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, 1)
            os.dup2(null, 2)
            return function(*args, **kwargs)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in (*saved, null):
                os.close(fd)

    return call


def _handle(message: dict) -> dict:
    op = message.get("op")
    handler = {"load": _load, "verify": _verify, "predict": _predict}.get(op)
    if handler is None:
        raise ValueError(f"unknown request {op!r}")
    return handler(message)


def _error_reply(exc: BaseException) -> dict:
    if isinstance(exc, SystemExit):
        error = f"the model called sys.exit({exc.code!r})"
    elif isinstance(exc, MemoryError):
        error = "MemoryError: the model ran out of memory (the instance type's memory is the limit)"
    else:
        error = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
    return {"ok": False, "error": error, "traceback": _model_traceback(exc)}


def _model_traceback(exc: BaseException) -> str:
    """The traceback from the model's own code down (with any chained causes): the platform's
    frames above it tell the model's author nothing. A fault in the platform keeps every frame."""
    report = traceback.TracebackException.from_exception(exc)
    frames = list(report.stack)
    first = next((i for i, frame in enumerate(frames) if frame.filename != __file__), None)
    if first:  # None: the fault is the platform's own, every frame stays
        report.stack = traceback.StackSummary.from_list(frames[first:])
    return "".join(report.format())


def _libc():
    """The C library this process has loaded (not ctypes.util.find_library: it runs ldconfig and
    gcc, tens of milliseconds at every start)."""
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def _no_new_privileges() -> None:
    """Nothing this process runs can gain privileges (setuid programs stay unprivileged)."""
    _libc().prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS


def _set_name(name: bytes) -> None:
    """The name `ps -o comm`, top and psutil show: mlp-spare while it waits for a model, mlp-model after."""
    _libc().prctl(15, name, 0, 0, 0)  # PR_SET_NAME


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    parser.add_argument("--cmd-fd", type=int, required=True)
    parser.add_argument("--res-fd", type=int, required=True)
    parser.add_argument("--memory-mb", type=int, default=0)
    parser.add_argument("--preimport", action="store_true", help="a spare: import the common libraries now")
    parser.add_argument("--drop-to", type=int, help="the user (and group) to become before anything else")
    parser.add_argument("--max-processes", type=int, default=0, help="processes and threads (RLIMIT_NPROC)")
    parser.add_argument("--max-file-mb", type=int, default=0, help="the largest file it may write (RLIMIT_FSIZE)")
    parser.add_argument("--cpu-seconds", type=int, default=0, help="CPU time of its threads (RLIMIT_CPU)")
    args = parser.parse_args()
    _limit(args)
    _no_new_privileges()
    sys.path.insert(0, args.root)
    if args.preimport:
        _set_name(b"mlp-spare")
        _preimport()
    commands = os.fdopen(args.cmd_fd, "rb")
    results = os.fdopen(args.res_fd, "wb", buffering=0)
    for line in commands:
        started = time.perf_counter()
        try:
            reply = {"ok": True, **_handle(json.loads(line))}
        except BaseException as exc:  # noqa: BLE001 - every failure of model code is reported
            reply = _error_reply(exc)
        reply["seconds"] = time.perf_counter() - started
        reply["peak_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        sys.stdout.flush()
        sys.stderr.flush()
        os.write(1, END_OF_REQUEST)
        results.write(json.dumps(reply).encode() + b"\n")


if __name__ == "__main__":
    main()
