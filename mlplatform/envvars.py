"""Strict readers for environment variables: a malformed value stops the start with its name."""

from __future__ import annotations

import json
import os
from urllib.parse import urlparse

from django.core.exceptions import ImproperlyConfigured


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def env_str(name: str, default: str) -> str:
    return _raw(name) or default


def env_int(name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = int(value.replace("_", ""))
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number") from None
    if number < minimum:
        raise ImproperlyConfigured(f"{name}={value!r} must be at least {minimum}")
    if maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name}={value!r} must be at most {maximum}")
    return number


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} must be one of 1/0, true/false, yes/no, on/off")


def env_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return default
    return [part.strip() for part in value.split(",") if part.strip()]


def env_url(name: str, default: str, *, schemes: set[str]) -> str:
    value = _raw(name) or default
    scheme = urlparse(value).scheme
    if scheme not in schemes:
        allowed = ", ".join(sorted(f"{s}://" for s in schemes))
        raise ImproperlyConfigured(f"{name}={value!r} must be a URL starting with one of: {allowed}")
    return value


def env_json_object(name: str, default: dict) -> dict:
    """A JSON object of strings, e.g. WAREHOUSE_CATALOGS={"prod": "file:///data/lake"}."""
    value = _raw(name)
    if value is None:
        return default
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ImproperlyConfigured(f"{name} is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in parsed.items()):
        raise ImproperlyConfigured(f'{name} must be a JSON object of strings, like {{"prod": "file:///data/lake"}}')
    return parsed


def env_host_ports(name: str) -> list[tuple[str, int | None]]:
    """Comma-separated `host` or `host:port` (an IPv6 address in brackets: `[::1]:8080`), as
    (lowercased host, port or None for any port); e.g. NOTIFY_ALLOWED_HOSTS=hooks.internal:8443,10.0.0.7."""
    found = []
    for entry in env_list(name, []):
        if entry.startswith("["):
            host, _, rest = entry[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else rest or None
        elif entry.count(":") == 1:
            host, port = entry.split(":")
        else:  # a name, an IPv4 address, or a bare IPv6 address (any port)
            host, port = entry, None
        if not host or "/" in host or (port is not None and not (port.isdigit() and 0 < int(port) < 65536)):
            raise ImproperlyConfigured(f"{name}: {entry!r} is not a host or host:port (a port is 1-65535)")
        found.append((host.lower(), int(port) if port is not None else None))
    return found
