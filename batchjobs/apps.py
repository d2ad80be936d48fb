from django.apps import AppConfig


class BatchJobsConfig(AppConfig):
    name = "batchjobs"
    verbose_name = "Batch jobs"

    def ready(self) -> None:
        from batchjobs import notify, selectors, signals
        from batchjobs.poststeps import receivers  # noqa: F401 - connects them
        from tables import selectors as table_selectors

        # A job's output table shows its predictions first on the table page too.
        if selectors.output_predictions not in table_selectors.LEADING_COLUMNS:
            table_selectors.LEADING_COLUMNS.append(selectors.output_predictions)

        # A scheduled job's end, or its failed post-step, is told to the schedule's URLs.
        signals.job_ended.connect(notify.on_job_ended, dispatch_uid="batchjobs.notify.job_ended")
        signals.post_step_failed.connect(notify.on_post_step_failed, dispatch_uid="batchjobs.notify.post_step_failed")
