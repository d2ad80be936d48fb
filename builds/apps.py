from django.apps import AppConfig


class BuildsConfig(AppConfig):
    name = "builds"
    verbose_name = "Models and builds"

    def ready(self) -> None:
        from builds import checks  # noqa: F401 - registers the deploy check
