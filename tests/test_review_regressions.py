"""Regressions found in review: each would have been a 500, a leak or a silent bad state."""

import io
import json
import tarfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from builds.choices import BuildStatus
from builds.services import build_register
from builds.verification import build_verify
from tables import selectors as table_selectors
from tables import services as table_services
from tests.artifacts import GOOD_MODEL, GOOD_PREDICT, upload
from tests.factories import BuildFactory

pytestmark = pytest.mark.usefixtures("job_storage")


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


def test_an_unreachable_postgresql_catalog_is_a_sentence_not_a_500(api, web, settings):
    settings.WAREHOUSE_CATALOGS = {**settings.WAREHOUSE_CATALOGS, "pg": "postgresql://nobody@127.0.0.1:1/x"}
    response = api.get("/api/v1/tables/pg.s.t/")
    assert response.status_code == 503
    assert 'the catalog "pg" cannot be reached' in response.json()["errors"]["catalog"][0]
    assert api.get("/api/v1/tables/?catalog=pg").status_code == 503
    page = web.get("/tables/?catalog=pg")
    assert page.status_code == 200 and "cannot be read right now" in page.content.decode()
    assert web.get("/tables/pg.s.t/").status_code == 503


def test_nested_values_with_nan_preview_as_json(api, user):
    table = pa.table({"values": pa.array([[1.0, float("nan")], None], pa.list_(pa.float64()))})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    table_services.table_upload(
        name="prod.s.nested", source=io.BytesIO(buffer.getvalue()), filename="n.parquet", created_by=user
    )
    response = api.get("/api/v1/tables/prod.s.nested/rows/")
    assert response.status_code == 200
    assert response.json()["rows"] == [[[1.0, None]], [None]]


def test_nested_serializer_errors_keep_the_error_shape(api, ml_model):
    build = BuildFactory(model=ml_model)
    response = api.put(
        f"/api/v1/builds/{build.id}/batch-config/",
        {"deployment_name": "ok", "instance_type": "ml.m5.large", "env": {"A": None}},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["errors"]["env"] == ["A: This field may not be null."]


def test_a_model_cannot_be_named_new(api, team):
    response = api.post("/api/v1/models/", {"model_id": "new", "team": team.name}, format="json")
    assert response.status_code == 400 and "model_id" in response.json()["errors"]


def test_only_the_tables_creator_its_team_or_an_admin_may_drop_it(api, user, outsider):
    api.post(
        "/api/v1/tables/", {"name": "prod.s.mine", "file": SimpleUploadedFile("a.csv", b"a\n1\n")}, format="multipart"
    )
    other = APIClient()
    other.force_authenticate(outsider)
    response = other.delete("/api/v1/tables/prod.s.mine/")
    assert response.status_code == 403
    assert "Only whoever created prod.s.mine here" in json.dumps(response.json())
    assert table_selectors.table_get("prod.s.mine").rows == 1
    assert api.delete("/api/v1/tables/prod.s.mine/").status_code == 204


def test_an_environment_value_with_a_nul_is_refused(web, ml_model):
    build = BuildFactory(model=ml_model)
    html = web.post(
        f"/builds/{build.id}/batch-config/",
        {
            "deployment_name": "ok",
            "instance_type": "ml.m5.large",
            "processes": "ALL",
            "env_key": ["A"],
            "env_value": ["x\x00y"],
        },
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert "contains a NUL character" in html


def test_the_api_schema_needs_a_login(client, db):
    assert client.get("/api/schema/").status_code in (401, 403)
