"""What other parts of the platform hear about a job's end, without the pipeline knowing them.

Both are sent after the database transaction that recorded the change has committed, so a receiver
reads the final state; a receiver must not raise (log, record, and return) and must be quick
(send a task for anything slow).
"""

from django.dispatch import Signal

# A job reached a final status (succeeded, failed, cancelled). kwargs: job_id, status, occurrence
# (the uuid of the 400 or 401 event it recorded; "" for a cancellation). A retried job that ends
# again sends it again, with its new event's uuid.
job_ended = Signal()

# A post-step of a scheduled run failed (its job's output stays). kwargs: job_id, step_id, error,
# occurrence (the uuid of the 403 event it recorded).
post_step_failed = Signal()
