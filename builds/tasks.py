from mlplatform.celery import app

from builds.verification import build_verify


@app.task(name="builds.verify_build")
def verify_build(build_id: str) -> None:
    build_verify(build_id=build_id)
