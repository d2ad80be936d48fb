from django.core.management.base import BaseCommand

from builds.models import InstanceType
from mlplatform.queues import CONTROL_QUEUE, IO_QUEUE


class Command(BaseCommand):
    help = "Print the Celery queues a worker should consume: `celery worker -Q $(manage.py worker_queues)`."

    def add_arguments(self, parser):
        only = parser.add_mutually_exclusive_group()
        only.add_argument("--control-only", action="store_true", help="only the control queue (short tasks)")
        only.add_argument("--io-only", action="store_true", help="only the io queue (reading and writing data)")
        only.add_argument("--predict-only", action="store_true", help="only the active instance types' queues")

    def handle(self, *args, control_only, io_only, predict_only, **options):
        if control_only:
            queues = [CONTROL_QUEUE]
        elif io_only:
            queues = [IO_QUEUE]
        else:
            predict = sorted(set(InstanceType.objects.filter(is_active=True).values_list("queue", flat=True)))
            queues = predict if predict_only else [CONTROL_QUEUE, IO_QUEUE, *predict]
        self.stdout.write(",".join(queues))
