import time
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from builds import services
from builds.choices import BuildStatus
from builds.management.lookup import user_and_model


class Command(BaseCommand):
    help = "Upload a build of a model: a .zip/.tar.gz of source with --entrypoint, or a .joblib/.pkl object."

    def add_arguments(self, parser):
        parser.add_argument("model_id")
        parser.add_argument("artifact", type=Path)
        parser.add_argument("--entrypoint", default="", help="module.path:ClassName (source archives)")
        parser.add_argument("--user", required=True, help="username of a member of the model's team")
        parser.add_argument("--wait", action="store_true", help="wait until a worker has verified the build")
        parser.add_argument("--timeout", type=int, default=900)

    def handle(self, *args, model_id, artifact, entrypoint, user, wait, timeout, **options):
        user, model = user_and_model(user, model_id)
        if not artifact.is_file():
            raise CommandError(f"artifact: {artifact} is not a file")
        try:
            with artifact.open("rb") as upload:
                build = services.build_register(
                    model=model, upload=upload, filename=artifact.name, entrypoint=entrypoint, created_by=user
                )
        except ValidationError as exc:
            raise CommandError("; ".join(f"{f}: {' '.join(m)}" for f, m in exc.message_dict.items())) from None
        self.stdout.write(f"Build {build.number} of {model.model_id} uploaded: {build.id} (pending)")
        if not wait:
            return
        deadline = time.monotonic() + timeout
        while build.status in BuildStatus.ACTIVE and time.monotonic() < deadline:
            time.sleep(1)
            build.refresh_from_db()
        self.stdout.write(build.log)
        if build.status != BuildStatus.SUCCEEDED:
            raise CommandError(f"build {build.number} is {build.status}")
        self.stdout.write(self.style.SUCCESS(f"Build {build.number} succeeded"))
