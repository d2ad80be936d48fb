"""The project's start-up step: what settings describe but must not create when imported.

Every process starts Django (manage.py, wsgi, the Celery worker and beat through Celery's Django
fixup, the tests), so `ready()` is the one place that prepares the data dir before anything uses it.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.apps import AppConfig
from django.conf import settings


class MLPlatformConfig(AppConfig):
    name = "mlplatform"
    verbose_name = "ML Platform"

    def ready(self) -> None:
        prepare_data_dir()


def prepare_data_dir() -> None:
    """Make the data dir, the static root, the local broker's folders and the secret key (idempotent)."""
    settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
    if settings.CELERY_BROKER_URL.startswith("filesystem"):
        options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
            Path(options[key]).mkdir(parents=True, exist_ok=True)
    if settings.SECRET_KEY_FILE is not None:  # no DJANGO_SECRET_KEY: the data dir's key, made on first start
        settings.SECRET_KEY = _secret_key_from(settings.SECRET_KEY_FILE)


def _secret_key_from(path: Path) -> str:
    """The key in the file, written first if there is none.

    Processes of one installation start at the same time (web, beat, workers), so every one of them
    must end up with the same key: a new key is written whole under a private name, then linked
    into place, which fails if another process's key got there first.
    """
    if path.exists():
        return path.read_text().strip()
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secrets.token_urlsafe(50))
    try:
        os.link(partial, path)
    except FileExistsError:
        pass
    except OSError:  # a filesystem without hard links: the last writer's key wins, before any use
        if not path.exists():
            os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path.read_text().strip()
