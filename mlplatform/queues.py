"""The Celery queues by kind of work, named once. Settings route tasks to them by task name
(CELERY_TASK_ROUTES); `manage.py worker_queues` lists them for workers' `-Q`.

Predict queues are not here: each instance type names its own, and batches are sent to it.
"""

CONTROL_QUEUE = "control"  # short tasks only (admit, reapers), so they never wait behind data work
IO_QUEUE = "io"  # tasks that read or write data (extract, commit, build verification)
