"""Notification URLs (Apprise): checked when a schedule is saved, shown masked everywhere else.

A URL often carries its secret in the path or the user part (slack://T…/B…/token,
mailto://user:password@host), so what is shown is the scheme, and the host where it is a server.
"""

from __future__ import annotations

import apprise

from batchjobs.notify import mask_url


def is_sendable(url: str) -> bool:
    """Whether Apprise knows how to send to this URL (it parses it without sending anything)."""
    return isinstance(url, str) and bool(url.strip()) and apprise.Apprise().add(url.strip())


def masked(url: str) -> str:
    """What pages, the API and the admin show of a URL: batchjobs.notify's mask (the notifications
    sent show the same)."""
    return mask_url(url)


def masked_list(urls: list[str]) -> list[str]:
    return [masked(url) for url in urls or []]
