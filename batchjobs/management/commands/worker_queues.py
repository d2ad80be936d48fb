from django.core.management.base import BaseCommand

from batchjobs.dispatch import CONTROL_QUEUE
from builds.models import InstanceType


class Command(BaseCommand):
    help = "Print the Celery queues a worker should consume: `celery worker -Q $(manage.py worker_queues)`."

    def add_arguments(self, parser):
        parser.add_argument("--predict-only", action="store_true", help="only the instance types' queues")
        parser.add_argument("--control-only", action="store_true", help="only the control queue")

    def handle(self, *args, predict_only, control_only, **options):
        predict = sorted(set(InstanceType.objects.filter(is_active=True).values_list("queue", flat=True)))
        queues = [CONTROL_QUEUE] if control_only else predict if predict_only else [CONTROL_QUEUE, *predict]
        self.stdout.write(",".join(queues))
