"""How long a whole job would take, projected from "Try on 100 rows": an estimate, said to be one."""

from __future__ import annotations

import math
from dataclasses import dataclass

from batchjobs.pipeline.extract import choose_batch_rows


@dataclass
class Projection:
    seconds: float  # predict() time for every row, plus starting the model once
    rows: int
    parallelism: int  # batches predicted at the same time
    batches: int
    ms_per_row: float  # as measured on the try, at scale
    measured_rows: int  # the largest call the measure made
    ms_per_call: float  # predict()'s fixed cost per call (per batch)
    start_seconds: float  # starting the model (its first batch pays it)


def project_job(
    *,
    rows: int,
    ms_per_row: float,
    measured_rows: int,
    start_seconds: float,
    parallelism: int,
    bytes_per_row: float,
    ms_per_call: float = 0.0,
) -> Projection:
    """The job's batches as the platform would cut them, run `parallelism` at a time at the measured
    pace; each model process starts the model once. Queueing, reading and writing come on top."""
    parallelism = max(1, parallelism)
    batch_rows = choose_batch_rows(rows=rows, bytes_per_row=bytes_per_row, parallelism=parallelism)
    batches = math.ceil(rows / batch_rows) if rows else 0
    waves = math.ceil(batches / parallelism)
    seconds = start_seconds + waves * (ms_per_call + batch_rows * ms_per_row) / 1000 if batches else 0.0
    return Projection(
        seconds, rows, min(parallelism, batches) or 1, batches, ms_per_row, measured_rows, ms_per_call, start_seconds
    )
