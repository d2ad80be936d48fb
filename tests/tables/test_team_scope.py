"""A table the platform made (an upload, a job's output) belongs to its team: for another team's
users it does not exist, on every page and endpoint and as a job's input or output. A table found in
a catalog that the platform did not make is readable by every logged-in user, droppable by admins."""

import io

import pyarrow as pa
import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from batchjobs import services as job_services
from tables import selectors as table_selectors
from tables import services as table_services
from tables.models import TableRecord
from tests.batchjobs.jobkit import model_with_config
from tests.factories import MLModelFactory, UserFactory
from tests.tables.tablekit import CSV, csv_file

OURS = "prod.fraud.scores"
FOREIGN = "prod.shared.rates"  # in the catalog, not made by the platform
GONE = 'The table "prod.fraud.scores" does not exist.'


@pytest.fixture
def tables(user):
    table_services.table_upload(name=OURS, source=io.BytesIO(CSV), filename="s.csv", created_by=user)
    catalog, name = table_selectors.resolve(FOREIGN)
    data = pa.table({"currency": ["eur", "usd"], "rate": [1.0, 1.1]})
    catalog.create(name, data.schema, data.to_batches())
    return user


def as_user(user) -> tuple:
    from django.test import Client

    web, api = Client(), APIClient()
    web.force_login(user)
    api.force_authenticate(user)
    return web, api


def test_an_upload_belongs_to_the_uploaders_team(tables, team):
    assert TableRecord.objects.get(name=OURS).team == team


def test_another_teams_table_does_not_exist_on_any_page_or_endpoint(tables, outsider):
    web, api = as_user(outsider)
    listing = web.get(reverse("tables:list")).content.decode()
    assert OURS not in listing and FOREIGN in listing
    names = [t["name"] for t in api.get("/api/v1/tables/").json()]
    assert OURS not in names and FOREIGN in names
    for path in (reverse("tables:detail", args=[OURS]), reverse("tables:drop", args=[OURS])):
        assert web.get(path).status_code == 404
    assert web.post(reverse("tables:drop", args=[OURS]), {"confirm": OURS}).status_code == 404
    for path in (f"/api/v1/tables/{OURS}/", f"/api/v1/tables/{OURS}/rows/"):
        response = api.get(path)
        assert (response.status_code, response.json()) == (404, {"errors": {"name": [GONE]}})
    assert api.delete(f"/api/v1/tables/{OURS}/").status_code == 404
    # Its name is taken, without saying whose or what.
    check = web.get(reverse("tables:check-name"), {"name": OURS}).content.decode()
    assert "The name prod.fraud.scores is taken" in check and "already exists" not in check
    upload = api.post("/api/v1/tables/", {"name": OURS, "file": csv_file()}, format="multipart")
    assert upload.status_code == 409 and "is taken" in str(upload.json()) and "exists" not in str(upload.json())
    assert table_selectors.table_get(OURS, user=tables).rows == 3  # still there, untouched


def test_the_team_sees_and_drops_its_table_and_an_admin_sees_every_table(tables, team):
    teammate = UserFactory(username="bob", teams=[team])
    web, api = as_user(teammate)
    assert OURS in [t["name"] for t in api.get("/api/v1/tables/").json()]
    assert api.get(f"/api/v1/tables/{OURS}/rows/").status_code == 200
    assert web.get(reverse("tables:detail", args=[OURS])).status_code == 200
    admin_web, admin_api = as_user(UserFactory(username="root", is_staff=True))
    assert admin_api.get(f"/api/v1/tables/{OURS}/").status_code == 200
    assert api.delete(f"/api/v1/tables/{OURS}/").status_code == 204


def test_a_table_the_platform_did_not_make_is_readable_by_all_and_droppable_by_admins(tables, outsider):
    web, api = as_user(outsider)
    assert web.get(reverse("tables:detail", args=[FOREIGN])).status_code == 200
    assert api.get(f"/api/v1/tables/{FOREIGN}/rows/").json()["rows"] == [["eur", 1.0], ["usd", 1.1]]
    assert api.delete(f"/api/v1/tables/{FOREIGN}/").status_code == 403
    _, admin = as_user(UserFactory(username="root", is_staff=True))
    assert admin.delete(f"/api/v1/tables/{FOREIGN}/").status_code == 204


def test_a_job_reads_only_tables_its_team_may_read(tables, outsider, user):
    their_model = MLModelFactory(model_id="other-model", team=outsider.groups.first())
    model_with_config(their_model, outsider)
    check = job_services.job_preflight(model=their_model, input_table=OURS, output_table="prod.other.out")
    assert check.errors["input_table"] == ["The input table prod.fraud.scores does not exist."]
    check = job_services.job_preflight(model=their_model, input_table=FOREIGN, output_table=OURS)
    assert check.errors["output_table"] == ["The name prod.fraud.scores is taken; choose another name."]
    _, api = as_user(outsider)
    body = {"model_id": "other-model", "input_table": OURS, "output_table": "prod.other.out"}
    response = api.post("/api/v1/batch-jobs/", body, format="json")
    assert response.status_code == 400 and "does not exist" in str(response.json()["errors"]["input_table"])


def test_tables_uploaded_before_tables_had_teams_go_to_their_creators_team(tables, team, outsider):
    import importlib

    from django.apps import apps

    TableRecord.objects.filter(name=OURS).update(team=None)  # as an earlier version recorded it
    migration = importlib.import_module("tables.migrations.0002_records_get_their_creators_team")
    migration.give_teams(apps, None)
    assert TableRecord.objects.get(name=OURS).team == team
    assert not table_selectors.may_read(outsider, table_selectors.resolve(OURS)[1])


def test_the_demos_input_belongs_to_the_demo_team_and_its_model_reads_it(db, settings, tmp_path):
    from django.core.management import call_command

    from builds.models import MLModel

    call_command("load_demo", verbosity=0)
    model = MLModel.objects.get(model_id="ds-premium-fraud-detection")
    check = job_services.job_preflight(
        model=model, input_table="prod.fraud_in_premium_model.input", output_table="prod.fraud_in_premium_model.out"
    )
    assert check.ok, check.errors
    assert TableRecord.objects.get(name="prod.fraud_in_premium_model.input").team == model.team
