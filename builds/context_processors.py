"""Template context every page gets."""

from builds.runtime import starter


def sandbox_warning(request) -> dict:
    """For staff: why model code runs without a sandbox on this server ("" when it does not)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_staff:
        return {}
    return {"sandbox_warning": starter.unsandboxed_reason()}
