"""`make run`'s web server: runserver, which says where to log in once it is listening (the line
stays near the bottom of the workers' start-up logs instead of scrolling away before them)."""

from django.conf import settings
from django.core.management.commands.runserver import Command as RunserverCommand


class Command(RunserverCommand):
    help = "Serve the dashboard for one machine (make run), then print its address and the demo login."

    def on_bind(self, server_port):
        super().on_bind(server_port)
        password = settings.DATA_DIR / "demo_password"
        login = f"  Log in as 'demo' with password: {password.read_text().strip()}\n" if password.exists() else ""
        self.stdout.write(
            self.style.SUCCESS(
                f"\n  ML Platform — Batch Prediction: http://{self.addr}:{server_port}/\n{login}"
                "  Celery beat and the control, io and predict workers run beside it. Ctrl-C stops all of them.\n"
            )
        )
