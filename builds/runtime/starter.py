"""The one way to start a model process and load a build in it: build verification, "Try on 100
rows" and batch prediction all come through here, so limits and the environment are set once.

A config's share of its instance type: ``ONE`` runs one model process at a time, ``ALL`` one per
vCPU; each process gets memory ÷ parallelism and vCPUs ÷ parallelism threads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from builds.choices import Processes
from builds.models import BatchConfig, Build
from builds.runtime import artifacts
from builds.runtime.process import ModelProcess, Reply
from mlplatform.sdk import TYPES

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
MIN_MEMORY_MB = 256


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
    """The Arrow type of each prediction column, from the build's verified schema."""
    return {p["name"]: TYPES[p["type"]] for p in build.schema["predictions"]}


def start_model(
    build: Build,
    *,
    workdir: Path,
    resources: Resources,
    env: dict[str, str] | None = None,
    log_cap: int,
    timeout: float,
) -> tuple[ModelProcess, Reply]:
    """Start a model process with these limits and the config's environment, and load the build.

    Returns the running process (close it, or use it as a context manager) and the load's reply.
    A load that fails closes the process and raises ModelProcessError (with the model's output).
    """
    local = artifacts.materialize(build_id=str(build.id), kind=build.artifact_kind, relative=build.artifact_path)
    threads = {name: str(resources.threads) for name in THREAD_VARIABLES} if resources.threads else {}
    process = ModelProcess(
        env={**threads, **(env or {})}, workdir=workdir, memory_mb=resources.memory_mb, log_cap=log_cap
    ).start()
    try:
        reply = process.call(
            {"op": "load", "kind": build.artifact_kind, "path": str(local.path), "entrypoint": build.entrypoint},
            timeout=timeout,
        )
    except BaseException:
        process.close()
        raise
    return process, reply
