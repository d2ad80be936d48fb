"""Registering and verifying builds, with real model processes."""

import io
import subprocess
import sys
import tarfile
import zipfile

import pytest
from django.core.exceptions import ValidationError

from builds.choices import BuildStatus
from builds.models import Build
from builds.services import build_register
from builds.verification import build_verify
from tests.artifacts import GOOD_MODEL, GOOD_PREDICT, model_zip, source_zip, upload


def register_and_verify(ml_model, user, content: bytes, *, name="scorer.zip", entrypoint="scorer:Scorer") -> Build:
    build = build_register(
        model=ml_model, upload=upload(content, name), filename=name, entrypoint=entrypoint, created_by=user
    )
    assert build.status == BuildStatus.PENDING
    build_verify(build_id=build.id)
    build.refresh_from_db()
    return build


def test_a_good_build_succeeds_with_its_schema_and_a_readable_log(ml_model, user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        build = build_register(
            model=ml_model,
            upload=upload(model_zip()),
            filename="scorer.zip",
            entrypoint="scorer:Scorer",
            created_by=user,
        )
    assert len(callbacks) == 1  # verification is queued only once the build row is committed
    build_verify(build_id=build.id)
    build.refresh_from_db()
    assert build.status == BuildStatus.SUCCEEDED, build.log
    assert build.number == 1
    assert build.schema == {
        "features": [{"name": "amount", "type": "float"}, {"name": "country", "type": "str"}],
        "predictions": [{"name": "score", "type": "float"}],
    }
    assert "predict() returned 5 rows that meet the batch contract" in build.log
    assert build.log.rstrip().endswith("Build succeeded")
    assert build.artifact_path == f"builds/{build.id}/artifact.zip"


def test_verifying_twice_does_nothing_the_second_time(ml_model, user):
    build = register_and_verify(ml_model, user, model_zip())
    log = build.log
    assert build_verify(build_id=build.id) is None
    build.refresh_from_db()
    assert build.log == log and build.status == BuildStatus.SUCCEEDED


def test_an_uppercase_schema_name_fails_the_build_naming_the_rule(ml_model, user):
    schema = 'ModelSchema([Feature("Amount", "float")], [Prediction("score", "float")])'
    build = register_and_verify(ml_model, user, model_zip(schema=schema))
    assert build.status == BuildStatus.FAILED
    assert "FAILED rule: feature name 'Amount' breaks the naming rule: lowercase letters" in build.log
    assert build.schema is None


def test_a_predict_returning_the_wrong_row_count_fails_the_build(ml_model, user):
    build = register_and_verify(ml_model, user, model_zip('return pd.DataFrame({"score": df["amount"]}).iloc[:-1]'))
    assert build.status == BuildStatus.FAILED
    assert "predict() returned 4 rows for a batch of 5 rows" in build.log


def test_a_predict_that_raises_fails_the_build_with_the_error_and_traceback(ml_model, user):
    build = register_and_verify(ml_model, user, model_zip('print("scoring…"); raise KeyError("merchant_id")'))
    assert build.status == BuildStatus.FAILED
    assert "FAILED: predict() on sample rows: KeyError: 'merchant_id'" in build.log
    assert "scoring…" in build.log  # what the model printed
    assert "Traceback (most recent call last)" in build.log


def test_a_model_that_cannot_be_imported_fails_the_build(ml_model, user):
    build = register_and_verify(ml_model, user, source_zip("import not_installed_anywhere\n"))
    assert build.status == BuildStatus.FAILED
    assert "loading the model failed: ModuleNotFoundError: No module named 'not_installed_anywhere'" in build.log


def test_a_hanging_model_fails_the_build_at_the_timeout(ml_model, user, settings):
    settings.BUILD_TIMEOUT_S = 2
    build = register_and_verify(ml_model, user, model_zip("import time; time.sleep(60)"))
    assert build.status == BuildStatus.FAILED
    assert "did not answer within 2 s" in build.log


def test_a_sample_file_in_the_archive_is_used_for_verification(ml_model, user):
    content = source_zip(
        "import pandas as pd\nfrom mlplatform.sdk import *\nclass Scorer(Model):\n"
        "    def schema(self):\n        return ModelSchema([Feature('amount')], [Prediction('score')])\n"
        "    def predict(self, df):\n        return pd.DataFrame({'score': df['amount'] + 1})\n",
        extra={"sample.csv": "amount\n1.5\n2.5\n3.5\n"},
    )
    build = register_and_verify(ml_model, user, content)
    assert build.status == BuildStatus.SUCCEEDED, build.log
    assert "the sample file sample.csv" in build.log
    assert "returned 3 rows" in build.log


def test_a_pickled_model_object_is_verified(ml_model, user, tmp_path):
    script = tmp_path / "make.py"
    script.write_text(
        "import sys, cloudpickle, pandas as pd\n"
        "from mlplatform.sdk import Feature, Model, ModelSchema, Prediction\n"
        "class Pickled(Model):\n"
        "    def schema(self):\n        return ModelSchema([Feature('amount')], [Prediction('score')])\n"
        "    def predict(self, df):\n        return pd.DataFrame({'score': df['amount'] * 3}, index=df.index)\n"
        "open(sys.argv[1], 'wb').write(cloudpickle.dumps(Pickled()))\n"
    )
    subprocess.run(
        [sys.executable, str(script), str(tmp_path / "m.pkl")],
        check=True,
        cwd=str(tmp_path),
        env={"PYTHONPATH": str(__import__("django").conf.settings.BASE_DIR)},
    )
    build = register_and_verify(ml_model, user, (tmp_path / "m.pkl").read_bytes(), name="m.pkl", entrypoint="")
    assert build.status == BuildStatus.SUCCEEDED, build.log
    assert build.artifact_kind == "pickle"


def _zip_with(name: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, "x = 1\n")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("content", "name", "entrypoint", "field", "message"),
    [
        (b"abc", "model.exe", "m:M", "artifact", "must be a .zip or .tar.gz"),
        (b"not a zip", "model.zip", "m:M", "artifact", "not a readable .zip archive"),
        (b"", "model.pkl", "", "artifact", "empty"),
        (_zip_with("../evil.py"), "model.zip", "evil:M", "artifact", "points outside the archive"),
        (_zip_with("/etc/evil.py"), "model.zip", "evil:M", "artifact", "points outside the archive"),
        (_zip_with("scorer.py"), "model.zip", "other:Scorer", "entrypoint", "not in the archive"),
        (_zip_with("scorer.py"), "model.zip", "scorer", "entrypoint", "module.path:ClassName"),
        (b"\x80\x04N.", "model.pkl", "x:Y", "entrypoint", "a pickled artifact has no entrypoint"),
    ],
)
def test_an_unusable_upload_is_refused_naming_the_field_and_nothing_is_kept(
    ml_model, user, settings, tmp_path, content, name, entrypoint, field, message
):
    settings.ARTIFACTS_URL = tmp_path.as_uri()
    with pytest.raises(ValidationError) as refused:
        build_register(
            model=ml_model, upload=upload(content, name), filename=name, entrypoint=entrypoint, created_by=user
        )
    assert field in refused.value.message_dict
    assert message in " ".join(refused.value.message_dict[field])
    assert not Build.objects.exists()
    assert list(tmp_path.iterdir()) == []


def test_build_numbers_count_up_per_model(ml_model, user):
    first = build_register(
        model=ml_model, upload=upload(model_zip()), filename="a.zip", entrypoint="scorer:Scorer", created_by=user
    )
    second = build_register(
        model=ml_model, upload=upload(model_zip()), filename="b.zip", entrypoint="scorer:Scorer", created_by=user
    )
    assert (first.number, second.number) == (1, 2)


def tar_gz(members: list[tarfile.TarInfo], contents: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for info in members:
            data = contents.get(info.name)
            info.size = len(data) if data is not None else 0
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def test_a_tar_gz_source_build_is_verified(ml_model, user):
    code = GOOD_MODEL.replace("{predict}", GOOD_PREDICT).encode()
    content = tar_gz(
        [tarfile.TarInfo("pkg/__init__.py"), tarfile.TarInfo("pkg/scorer.py")],
        {"pkg/__init__.py": b"", "pkg/scorer.py": code},
    )
    build = build_register(
        model=ml_model,
        upload=upload(content, "m.tar.gz"),
        filename="m.tar.gz",
        entrypoint="pkg.scorer:Scorer",
        created_by=user,
    )
    assert build_verify(build_id=build.id).status == BuildStatus.SUCCEEDED


@pytest.mark.parametrize("kind", ["symlink", "hardlink", "dotdot"])
def test_a_tar_gz_with_links_or_escaping_paths_is_refused(ml_model, user, kind):
    link = tarfile.TarInfo("pkg/evil.py" if kind != "dotdot" else "../evil.py")
    if kind == "symlink":
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    elif kind == "hardlink":
        link.type, link.linkname = tarfile.LNKTYPE, "/etc/passwd"
    content = tar_gz([tarfile.TarInfo("pkg/scorer.py"), link], {"pkg/scorer.py": b"x = 1\n", "../evil.py": b""})
    with pytest.raises(ValidationError) as refused:
        build_register(
            model=ml_model,
            upload=upload(content, "m.tar.gz"),
            filename="m.tar.gz",
            entrypoint="pkg.scorer:Scorer",
            created_by=user,
        )
    assert any(word in refused.value.message_dict["artifact"][0] for word in ("link", "outside"))
