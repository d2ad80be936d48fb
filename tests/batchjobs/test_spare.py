"""A predict worker's spare model process: numpy, pandas, pyarrow and scikit-learn imported before
a job arrives; the job's first batch loads its build into it, with the config's environment,
thread count and memory limit, as a freshly started process would have them."""

import psutil
import pytest

from batchjobs.choices import JobStatus
from batchjobs.models import BatchAttempt
from batchjobs.pipeline import predict
from tests.batchjobs.jobkit import IN_BATCHES, make_input, model_with_config, output_rows, run_job, trigger
from tests.conftest import model_process_name, wait_for

pytestmark = pytest.mark.usefixtures("job_storage")

REPORTS = IN_BATCHES + "\n        ".join(
    [
        "import os, resource, sys",
        "from threadpoolctl import threadpool_info",
        'threads = max(i["num_threads"] for i in threadpool_info())',
        "limit = resource.getrlimit(resource.RLIMIT_AS)[0] // 2**20",
        "print(f\"SCALE={os.environ.get('SCALE')} threads={threads} memory={limit}\", file=sys.stderr)",
        'return pd.DataFrame({"score": df["amount"] * float(os.environ.get("SCALE", "1"))})',
    ]
)


def test_the_first_batch_loads_its_build_into_the_spare_with_the_configs_environment_and_limits(ml_model, user):
    model_with_config(ml_model, user, REPORTS, env={"SCALE": "3"})
    make_input("prod.t.input", 2_000)
    predict.spare_start()
    spare = predict._spare
    process = psutil.Process(spare.proc.pid)
    wait_for(lambda: model_process_name(process) == "mlp-spare", timeout=10, message="the spare's start")

    job = run_job(trigger(ml_model, user, "prod.t.input"))
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert predict._loaded.process is spare  # the spare became the model process
    assert model_process_name(process) == "mlp-model"
    assert all(r["score"] == r["amount"] * 3 for r in output_rows("prod.out.scores"))
    # ml.m5.large (2 vCPUs, 8 GiB) with processes ALL: two processes, one thread and 4 GiB each.
    log = BatchAttempt.objects.filter(batch__job=job).first().log
    assert "SCALE=3 threads=1 memory=4096" in log, log
    assert predict._spare is not None and predict._spare is not spare  # a new spare for the next build


def test_a_config_that_sets_a_variable_libraries_read_at_import_gets_a_fresh_process(ml_model, user):
    model_with_config(ml_model, user, REPORTS, env={"SCALE": "2", "OMP_NUM_THREADS": "1"})
    make_input("prod.t.input", 1_000)
    predict.spare_start()
    spare = predict._spare

    job = run_job(trigger(ml_model, user, "prod.t.input"))
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert predict._loaded.process is not spare and not spare.alive  # closed, not leaked
    assert "SCALE=2 threads=1 memory=4096" in BatchAttempt.objects.filter(batch__job=job).first().log
