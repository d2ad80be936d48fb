"""Celery tasks of builds: ids in, a plain function called, nothing else."""

from builds import reaper
from builds.verification import build_verify
from mlplatform.celery import app


@app.task(name="builds.verify_build")
def verify_build(build_id: str) -> None:
    build_verify(build_id=build_id)


@app.task(name="builds.reap")
def reap() -> None:
    reaper.reap()
