"""The Celery app. Workers: `celery -A mlplatform worker -Q $(manage.py worker_queues)`.

Every process that sends or consumes tasks imports this module first (tasks and
batchjobs.dispatch use `app`), so the broker registration below is in place before any connection.
"""

import os

from celery import Celery
from kombu.transport import TRANSPORT_ALIASES

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlplatform.settings")

# The local broker (filesystem://) with atomic message writes: see mlplatform/broker.py.
TRANSPORT_ALIASES["filesystem"] = "mlplatform.broker:Transport"

app = Celery("mlplatform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
