"""Verifying a build: load it in a model process, check its schema, run predict() on sample rows."""

from __future__ import annotations

import logging
import shutil
import uuid

from django.conf import settings
from django.utils import timezone

from builds import transitions
from builds.choices import ArtifactKind
from builds.models import Build
from builds.runtime import artifacts, starter
from builds.runtime.process import ModelProcess, ModelProcessError

logger = logging.getLogger(__name__)


def _count(items: list, noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, text: str) -> None:
        stamp = timezone.now().strftime("%H:%M:%S")
        self.lines.append(f"[{stamp}] {text}")

    def block(self, title: str, text: str) -> None:
        if text.strip():
            self.lines.append(f"----- {title} -----\n{text.rstrip()}\n----- end of {title} -----")

    def text(self) -> str:
        joined = "\n".join(self.lines)
        cap = settings.LOG_CAP_BYTES
        return joined if len(joined) <= cap else joined[:cap] + "\n[truncated]"


def _failed(log: _Log, exc: ModelProcessError, *, failure: str) -> None:
    log.block("model output", exc.log)
    log(f"FAILED: {failure}: {exc}")
    log.block("traceback", exc.traceback)


def _step(process: ModelProcess, log: _Log, message: dict, *, failure: str) -> dict | None:
    """One request to the model process; its output goes to the log. None when it failed."""
    try:
        reply = process.call(message, timeout=settings.BUILD_TIMEOUT_S)
    except ModelProcessError as exc:
        _failed(log, exc, failure=failure)
        return None
    log.block("model output", reply.log)
    return reply.result


def _verify(build: Build, log: _Log) -> bool:
    """Run every check, writing what happens to ``log``; True when the build is good."""
    kind = ArtifactKind(build.artifact_kind)
    log(
        f"Verifying build {build.number} of {build.model.model_id}: {kind.label.lower()} {build.artifact_name!r}"
        + (f", entrypoint {build.entrypoint}" if build.entrypoint else "")
    )
    try:
        local = artifacts.materialize(build_id=str(build.id), kind=build.artifact_kind, relative=build.artifact_path)
    except (OSError, artifacts.ArtifactError) as exc:
        log(f"FAILED: the artifact could not be unpacked: {exc}")
        return False
    workdir = settings.DATA_DIR / "work" / f"verify-{uuid.uuid4().hex}"
    log(f"Starting a model process (clean environment, {settings.BUILD_TIMEOUT_S} s per step)")
    try:
        try:
            process, load = starter.start_model(
                build,
                workdir=workdir,
                resources=starter.verification_resources(),
                log_cap=settings.LOG_CAP_BYTES // 2,
                timeout=settings.BUILD_TIMEOUT_S,
            )
        except ModelProcessError as exc:
            _failed(log, exc, failure="loading the model failed")
            return False
        with process:
            log.block("model output", load.log)
            result = load.result
            for error in result["schema_errors"]:
                log(f"FAILED rule: {error}")
            if result["schema_errors"]:
                return False
            build.schema = result["schema"]
            features, predictions = build.schema["features"], build.schema["predictions"]
            log(
                f"Loaded in {result['seconds']:.2f} s; "
                f"schema(): {_count(features, 'feature')}, {_count(predictions, 'prediction')}"
            )
            source = f"the sample file {local.sample.name}" if local.sample else "sample rows built from the schema"
            log(f"Calling predict() on {source}")
            sample = None
            if local.sample:  # handed over: the model process sees nothing else of the cache
                sample = process.input_dir / f"sample{local.sample.suffix}"
                shutil.copyfile(local.sample, sample)
                sample = process.hand_over(sample)
            verify = {"op": "verify", "sample": sample, "max_row_bytes": settings.MAX_ROW_BYTES}
            result = _step(process, log, verify, failure="predict() on sample rows")
            if result is None:
                return False
            for note in result["notes"]:
                log(f"Note: {note}")
            log(
                f"predict() returned {result['rows']} rows that meet the batch contract in {result['seconds']:.2f} s "
                f"(model process peak memory {result['peak_rss_kib'] / 1024:.0f} MiB)"
            )
            return True
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def build_verify(*, build_id: str) -> Build | None:
    """Verify a pending build. A redelivered task finds it claimed and does nothing."""
    if not transitions.build_claim(build_id):
        return None
    build = Build.objects.select_related("model").get(pk=build_id)
    log = _Log()
    try:
        ok = _verify(build, log)
    except Exception as exc:  # a platform fault: still end the build, with the reason
        logger.exception("verifying build %s failed", build_id)
        log(f"FAILED: the platform could not verify the build: {type(exc).__name__}: {exc}")
        ok = False
    log("Build succeeded" if ok else "Build failed")
    transitions.build_end(build_id, ok=ok, schema=build.schema, log=log.text())
    build.refresh_from_db()
    return build
