"""Load the demo (idempotent): a user, a team, the fraud model with a verified build and a config,
and an input table that fits it."""

import itertools
import secrets
import tarfile
import tempfile
import time
from pathlib import Path

import pyarrow as pa
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

from builds import selectors, services
from builds.choices import BuildStatus, Processes
from builds.models import InstanceType, MLModel
from builds.verification import build_verify
from tables import selectors as table_selectors
from tables import services as table_services
from tables.models import TableRecord

MODEL_ID = "ds-premium-fraud-detection"
TEAM = "fraud-detection"
USERNAME = "demo"
EXAMPLE = settings.BASE_DIR / "examples" / "fraud_model"
INPUT_TABLE = "fraud_in_premium_model.input"  # in the default catalog: prod.fraud_in_premium_model.input
INPUT_ROWS = 100_000


def package_fraud_model(dest: Path) -> Path:
    """The demo model as users ship one: a .tar.gz of its package, weights and a sample file."""
    from examples.fraud_model.data import generate
    from examples.fraud_model.model import train

    weights = train(Path(tempfile.mkdtemp(dir=dest)) / "model.joblib")
    sample = dest / "sample.csv"
    generate(20, seed=99).drop(columns=["label"]).to_csv(sample, index=False)
    path = dest / "fraud_model.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for name in ("__init__.py", "data.py", "model.py"):
            archive.add(EXAMPLE / name, arcname=f"fraud_model/{name}")
        archive.add(weights, arcname="fraud_model/model.joblib")
        archive.add(sample, arcname="sample.csv")
    return path


class Command(BaseCommand):
    help = "Create the demo user, team and model ds-premium-fraud-detection (safe to run again)."

    def handle(self, *args, **options):
        team, _ = Group.objects.get_or_create(name=TEAM)
        user = self._user(team)
        model, _ = MLModel.objects.get_or_create(
            model_id=MODEL_ID,
            defaults={
                "team": team,
                "created_by": user,
                "description": "Scores card transactions of premium accounts for fraud (demo).",
            },
        )
        build = model.builds.filter(status=BuildStatus.SUCCEEDED).order_by("-number").first()
        if build is None:
            with tempfile.TemporaryDirectory() as tmp:
                artifact = package_fraud_model(Path(tmp))
                with artifact.open("rb") as upload:
                    build = services.build_register(
                        model=model,
                        upload=upload,
                        filename=artifact.name,
                        entrypoint="fraud_model.model:FraudModel",
                        created_by=user,
                    )
            # Verify here so the demo is ready at once; if a worker got there first, wait for it.
            if build_verify(build_id=build.id) is None:
                for _ in range(600):
                    build.refresh_from_db()
                    if build.status not in BuildStatus.ACTIVE:
                        break
                    time.sleep(1)
            build.refresh_from_db()
            self.stdout.write(f"Demo build {build.number}: {build.status}")
        if selectors.active_batch_config(model=model) is None and build.status == BuildStatus.SUCCEEDED:
            services.batch_config_set(
                build=build,
                deployment_name=f"{MODEL_ID}-batch",
                instance_type=InstanceType.objects.get(name="ml.m5.large"),
                processes=Processes.ALL,
                env={"FRAUD_THRESHOLD": "0.2"},
                set_by=user,
            )
        table = self._input_table(team)
        self.stdout.write(self.style.SUCCESS(f"Demo ready: model {MODEL_ID}, input table {table}, user {USERNAME!r}"))

    def _input_table(self, team: Group):
        """100,000 transactions that fit the model's schema (fixed seed), unless already there."""
        from examples.fraud_model.data import generate

        catalog, name = table_selectors.resolve(INPUT_TABLE)
        demo = get_user_model().objects.get(username=USERNAME)
        if catalog.exists(name):  # the demo's team owns it (a demo loaded before tables had teams too)
            TableRecord.objects.filter(name=str(name), team__isnull=True).update(team=team)
        else:
            chunks = (
                generate(20_000, seed=1000 + i, start_id=i * 20_000).drop(columns=["label"])
                for i in range(INPUT_ROWS // 20_000)
            )
            batches = (pa.RecordBatch.from_pandas(chunk, preserve_index=False) for chunk in chunks)
            first = next(batches)
            catalog.create(name, first.schema, itertools.chain([first], batches))
            table_services.table_record(name=str(name), created_by=demo, team=team)
        return name

    def _user(self, team: Group):
        password_file = settings.DATA_DIR / "demo_password"
        user, created = get_user_model().objects.get_or_create(
            username=USERNAME, defaults={"is_staff": True, "is_superuser": True, "email": "demo@example.com"}
        )
        if created or not password_file.exists():
            password = secrets.token_urlsafe(9)
            user.set_password(password)
            user.save()
            password_file.write_text(password)
            password_file.chmod(0o600)
        user.groups.add(team)
        return user
