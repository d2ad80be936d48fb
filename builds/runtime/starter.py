"""The one way to start a model process and load a build in it: build verification, "Try on 100
rows" and batch prediction all come through here, so limits and the environment are set once.

A config's share of its instance type: ``ONE`` runs one model process at a time, ``ALL`` one per
vCPU; each process gets memory ÷ parallelism and vCPUs ÷ parallelism threads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import psutil
from django.conf import settings

from builds.choices import Processes
from builds.models import BatchConfig, Build
from builds.runtime import artifacts
from builds.runtime.child import THREAD_VARIABLES
from builds.runtime.process import Limits, ModelProcess, Reply, child_environment
from builds.runtime.sandbox import Sandbox, SandboxUnavailable, bwrap_path, bwrap_refusal, sandbox_for
from mlplatform.sdk.schema import arrow_type_name

MIN_MEMORY_MB = 256
# Variables that libraries a spare has already imported read when they are imported: a config that
# sets one gets a fresh process, so they take effect.
IMPORT_TIME_ENV_PREFIXES = (
    "OMP_", "OPENBLAS_", "MKL_", "BLIS_", "GOTO", "VECLIB_", "KMP_", "NUMEXPR_", "NUMPY_", "PANDAS_",
    "ARROW_", "PYARROW_", "SKLEARN_", "SCIPY_", "JOBLIB_", "MALLOC_",
)  # fmt: skip


@dataclass(frozen=True)
class Resources:
    """What one model process may use. ``threads`` None leaves numerical libraries their default."""

    memory_mb: int
    threads: int | None = None


def parallelism_for(config: BatchConfig) -> int:
    """ONE: one model process per instance; ALL: one per vCPU of the instance type."""
    return 1 if config.processes == Processes.ONE else max(1, config.instance_type.vcpus)


def resources_for(config: BatchConfig, parallelism: int) -> Resources:
    """Each model process's share of the instance type's memory and vCPUs."""
    share = max(parallelism, 1)
    return Resources(
        memory_mb=max(MIN_MEMORY_MB, config.instance_type.memory_mib // share),
        threads=max(1, config.instance_type.vcpus // share),
    )


def verification_resources() -> Resources:
    return Resources(memory_mb=settings.BUILD_MEMORY_MB)


def prediction_types(build: Build) -> dict[str, str]:
    """The Arrow type (its name) of each prediction column, from the build's verified schema, whose
    type names are the author's (aliases too: see mlplatform.sdk.schema)."""
    return {p["name"]: arrow_type_name(p["type"]) for p in build.schema["predictions"]}


def model_sandbox(*, allow_network: bool = False) -> Sandbox | None:
    """The sandbox model processes run in under MODEL_SANDBOX (None: without one)."""
    return sandbox_for(settings.MODEL_SANDBOX, allow_network=allow_network, tmp_mb=settings.MODEL_DISK_MB)


def limits_for(timeout: float) -> Limits:
    """What a model process may use besides memory: MODEL_MAX_PROCESSES processes and threads,
    files of MODEL_DISK_MB, and the CPU time every core of this machine gives in two timeouts (a
    batch that keeps within its time never reaches it; a model that keeps threads spinning
    between batches does, and a process past half of it is replaced before its next batch)."""
    return Limits(
        processes=settings.MODEL_MAX_PROCESSES,
        file_mb=settings.MODEL_DISK_MB,
        cpu_seconds=int(2 * timeout * (os.cpu_count() or 1)) + 1,
    )


def worn_out(process: ModelProcess) -> bool:
    """Whether a loaded model process has used half its CPU time: the next batch gets a new one."""
    return bool(process.limits.cpu_seconds) and process.cpu_seconds() > process.limits.cpu_seconds / 2


def unsandboxed_reason() -> str:
    """Why model code would run without a sandbox on this machine ("" when it runs in one)."""
    if settings.MODEL_SANDBOX == "off":
        return "MODEL_SANDBOX=off"
    try:
        made = model_sandbox()
    except SandboxUnavailable as exc:
        return f"{exc} (model processes refuse to start)"
    if made is None:
        found = bwrap_path()
        return (
            "bubblewrap (bwrap) is not installed" if found is None else f"bubblewrap fails here: {bwrap_refusal(found)}"
        )
    return ""


def start_spare(*, workdir: Path, log_cap: int) -> ModelProcess:
    """A model process that imports the common libraries (numpy, pandas, pyarrow, scikit-learn) now,
    and waits to be given a build: most of a cold start is those imports, done ahead of time."""
    return ModelProcess(
        env={},
        workdir=workdir,
        log_cap=log_cap,
        preimport=True,
        sandbox=model_sandbox(),
        limits=limits_for(settings.PREDICT_TIMEOUT_S),
    ).start()


def spare_current(spare: ModelProcess | None, *, workdir: Path, log_cap: int, allow_network: bool = False) -> bool:
    """Whether `spare` is alive and was started as a process for this folder, log cap and sandbox
    would be started now."""
    return (
        spare is not None
        and spare.alive
        and spare.workdir == Path(workdir)
        and spare.log_cap == log_cap
        and spare.sandbox == model_sandbox(allow_network=allow_network)
    )


def spare_fits(
    spare: ModelProcess | None,
    *,
    workdir: Path,
    log_cap: int,
    env: dict[str, str] | None,
    memory_mb: int,
    allow_network: bool = False,
) -> bool:
    """Whether `spare` can become this model's process: alive, the same folder and log cap, no
    config variable that its already-imported libraries would have read at import, and a memory
    limit at least twice the address space its imports hold (the limit counts address space: a
    small one is better spent by a fresh process that imports only what its model needs)."""
    return (
        spare_current(spare, workdir=workdir, log_cap=log_cap, allow_network=allow_network)
        and not any(name.startswith(IMPORT_TIME_ENV_PREFIXES) for name in (env or {}))
        and 2 * _address_space_mb(spare.proc.pid) <= memory_mb
    )


def _address_space_mb(pid: int) -> float:
    """The largest virtual memory size (what RLIMIT_AS limits) of a process and its descendants (a
    sandboxed model process is bubblewrap's child); infinite when it cannot be read."""
    try:
        root = psutil.Process(pid)
        sizes = [p.memory_info().vms for p in [root, *root.children(recursive=True)]]
    except psutil.Error:
        return float("inf")
    return max(sizes) / (1024 * 1024)


def start_model(
    build: Build,
    *,
    workdir: Path,
    resources: Resources,
    env: dict[str, str] | None = None,
    log_cap: int,
    timeout: float,
    spare: ModelProcess | None = None,
    allow_network: bool = False,
    on_wait=None,
    wait_interval: float = 15.0,
) -> tuple[ModelProcess, Reply]:
    """Start a model process with these limits and the config's environment, and load the build.

    With a `spare` that fits (see spare_fits), that process loads the build instead of a new one
    being started; it takes the same environment and limits first. The caller closes a spare that
    does not fit. Returns the running process (close it, or use it as a context manager) and the
    load's reply. A load that fails closes the process and raises ModelProcessError. `on_wait` is
    called every `wait_interval` seconds while the model loads (a batch's heartbeat).
    """
    local = artifacts.materialize(build_id=str(build.id), kind=build.artifact_kind, relative=build.artifact_path)
    threads = {name: str(resources.threads) for name in THREAD_VARIABLES} if resources.threads else {}
    load = {"op": "load", "kind": build.artifact_kind, "entrypoint": build.entrypoint}
    fits = dict(workdir=workdir, log_cap=log_cap, env=env, memory_mb=resources.memory_mb, allow_network=allow_network)
    if spare_fits(spare, **fits):
        process = spare
        process.limits = limits_for(timeout)
        process.memory_mb = resources.memory_mb
        load |= {
            "env": child_environment({**threads, **(env or {})}, process.home),
            "memory_mb": resources.memory_mb,
            "cpu_seconds": process.limits.cpu_seconds,
        }
    else:
        process = ModelProcess(
            env={**threads, **(env or {})},
            workdir=workdir,
            memory_mb=resources.memory_mb,
            log_cap=log_cap,
            sandbox=model_sandbox(allow_network=allow_network),
            limits=limits_for(timeout),
        ).start()
    try:
        load["path"] = str(process.provide_build(local.path))
        reply = process.call(load, timeout=timeout, on_wait=on_wait, wait_interval=wait_interval)
    except BaseException:
        process.close()
        raise
    return process, reply
