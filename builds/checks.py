"""`manage.py check --deploy`: what a production installation should not run with."""

from django.core.checks import Tags, Warning, register

from builds.runtime import starter


@register(Tags.security, deploy=True)
def model_sandbox_check(app_configs, **kwargs) -> list:
    reason = starter.unsandboxed_reason()
    if not reason:
        return []
    return [
        Warning(
            f"Model code runs without a sandbox on this server: {reason}.",
            hint="Install the bubblewrap package on every worker host and set MODEL_SANDBOX=required.",
            id="builds.W001",
        )
    ]
