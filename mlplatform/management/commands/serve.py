"""`make run`'s web server: gunicorn, as in production, with a few worker processes of a few threads
each. Its requests (and so its database connections) are bounded: Django's runserver starts a
thread, and a connection, for every request it is sent, and ran PostgreSQL out of connections
under load. Once it listens it says where to log in (the line stays near the bottom of the
workers' start-up logs instead of scrolling away before them)."""

from __future__ import annotations

import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Serve the dashboard for one machine (make run), then print its address and the demo login."

    def add_arguments(self, parser) -> None:
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000", help="host:port")
        parser.add_argument("--workers", type=int, default=2)
        parser.add_argument("--threads", type=int, default=4, help="per worker: requests served at once")

    def handle(self, *args, addrport: str, workers: int, threads: int, **options) -> None:
        from gunicorn.app.base import BaseApplication

        host, _, port = addrport.rpartition(":")
        if not host or not port.isdigit():
            raise CommandError(f"{addrport!r} is not host:port")
        write, success = self.stdout.write, self.style.SUCCESS

        def when_ready(server) -> None:
            password = settings.DATA_DIR / "demo_password"
            login = f"  Log in as 'demo' with password: {password.read_text().strip()}\n" if password.exists() else ""
            write(
                success(
                    f"\n  ML Platform — Batch Prediction: http://{host}:{port}/\n{login}"
                    "  Celery beat and the control, io and predict workers run beside it. Ctrl-C stops all of them.\n"
                )
            )
            sys.stdout.flush()

        config = {
            "bind": f"{host}:{port}",
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread",
            "graceful_timeout": 3,  # Ctrl-C stops it within seconds
            "keepalive": 5,  # a job page polls every 2 s: its connection stays open between polls
            "timeout": 120,
            "loglevel": "warning",
            "when_ready": when_ready,
        }

        class Server(BaseApplication):
            def load_config(self) -> None:
                for key, value in config.items():
                    self.cfg.set(key, value)

            def load(self):
                from django.core.wsgi import get_wsgi_application

                return get_wsgi_application()

        Server().run()
