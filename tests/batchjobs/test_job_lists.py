"""Lists of jobs (the board, a model's Jobs tab) in a bounded number of queries."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.batchjobs.jobkit import post_job

pytestmark = pytest.mark.usefixtures("job_storage")
HX = {"HTTP_HX_REQUEST": "true"}


def test_the_board_and_jobs_tab_list_jobs_with_a_bounded_number_of_queries(web, api, ready):
    for i in range(3):
        post_job(api, output=f"prod.out.o{i}")
    with CaptureQueriesContext(connection) as few:
        web.get(reverse("batchjobs:board"))
    for i in range(3, 12):
        post_job(api, output=f"prod.out.o{i}")
    with CaptureQueriesContext(connection) as many:
        board = web.get(reverse("batchjobs:board")).content.decode()
    assert len(many.captured_queries) == len(few.captured_queries)
    assert board.count("in queue") == 12
    tab = web.get(
        reverse("batchjobs:model-jobs", args=["ds-premium-fraud-detection"]), HTTP_HX_TARGET="job-table", **HX
    )
    assert tab.status_code == 200 and "<html" not in tab.content.decode()
