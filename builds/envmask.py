"""Secret-looking environment variables: their values are never shown in a page or the API.

A form or API client that sends the mask back unchanged keeps the value already saved.
"""

from __future__ import annotations

SECRET_MARKERS = ("KEY", "TOKEN", "SECRET", "PASSWORD")
MASK = "••••••••"


def is_secret(name: str) -> bool:
    return any(marker in name.upper() for marker in SECRET_MARKERS)


def masked(env: dict[str, str]) -> dict[str, str]:
    return {name: MASK if is_secret(name) else value for name, value in env.items()}


def unmasked(env: dict[str, str], saved: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """``env`` with each masked value replaced by the saved one; and the names that had none."""
    result, missing = {}, []
    for name, value in env.items():
        if value == MASK:
            if name in saved:
                result[name] = saved[name]
            else:
                missing.append(name)
        else:
            result[name] = value
    return result, missing
