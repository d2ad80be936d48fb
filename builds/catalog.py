"""The instance types a new installation starts with (admins edit the catalog in the admin)."""

# Names in the cloud style users know. Each maps to a Celery queue of the same name; a worker
# serves an instance type by consuming its queue.
CATALOG = [
    ("ml.m5.large", 2, 8 * 1024, "General purpose, 2 vCPU, 8 GiB"),
    ("ml.m5.xlarge", 4, 16 * 1024, "General purpose, 4 vCPU, 16 GiB"),
    ("ml.m5.2xlarge", 8, 32 * 1024, "General purpose, 8 vCPU, 32 GiB"),
    ("ml.c5.xlarge", 4, 8 * 1024, "Compute optimised, 4 vCPU, 8 GiB"),
    ("ml.c5.2xlarge", 8, 16 * 1024, "Compute optimised, 8 vCPU, 16 GiB"),
    ("ml.r5.large", 2, 16 * 1024, "Memory optimised, 2 vCPU, 16 GiB"),
    ("ml.r5.xlarge", 4, 32 * 1024, "Memory optimised, 4 vCPU, 32 GiB"),
]
