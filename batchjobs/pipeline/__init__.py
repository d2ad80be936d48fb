"""A batch job's run: extract the input into shards, predict every batch, commit the output.

Plain functions that tests call directly; Celery tasks (batchjobs/tasks.py) only pass ids.
"""
