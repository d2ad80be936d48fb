"""Notification URLs (Apprise): checked when a schedule is saved, shown masked everywhere else.

A URL often carries its secret in the path or the user part (slack://T…/B…/token,
mailto://user:password@host), so what is shown is the scheme and host only: scheme://host/…
"""

from __future__ import annotations

from urllib.parse import urlsplit

import apprise


def is_sendable(url: str) -> bool:
    """Whether Apprise knows how to send to this URL (it parses it without sending anything)."""
    return isinstance(url, str) and bool(url.strip()) and apprise.Apprise().add(url.strip())


def masked(url: str) -> str:
    """scheme://host/… — never a token, password or path."""
    try:
        parts = urlsplit(str(url).strip())
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "…"
    scheme = parts.scheme if parts.scheme.isalnum() else ""
    if not scheme:
        return "…"
    # A host with no dot may be a token (slack://T0123…/…, discord://webhook_id/…): cut like one.
    if "." not in host and host != "localhost":
        host = host[:1] + "…" if host else ""
    rest = "/…" if (parts.path.strip("/") or parts.query or parts.username) else ""
    return f"{scheme}://{host}{port}{rest}"


def masked_list(urls: list[str]) -> list[str]:
    return [masked(url) for url in urls or []]
