from django.apps import AppConfig


class BatchJobsConfig(AppConfig):
    name = "batchjobs"
    verbose_name = "Batch jobs"

    def ready(self) -> None:
        from batchjobs import selectors
        from batchjobs.poststeps import receivers  # noqa: F401 - connects them
        from tables import selectors as table_selectors

        # A job's output table shows its predictions first on the table page too.
        if selectors.output_predictions not in table_selectors.LEADING_COLUMNS:
            table_selectors.LEADING_COLUMNS.append(selectors.output_predictions)
