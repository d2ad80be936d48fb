"""Notification URLs (Apprise): checked when a schedule is saved, shown masked everywhere else.

A URL often carries its secret in the path or the user part (slack://T…/B…/token,
mailto://user:password@host), so what is shown is the scheme, and the host where it is a server.
"""

from __future__ import annotations

import apprise

from batchjobs import notify_guard
from batchjobs.notify import apprise_log, mask_url


def refusal(url: str) -> str:
    """Why this URL cannot be saved ("" when it can): a scheme not on notify_guard's list, a URL
    Apprise cannot parse (nothing is sent), a webhook's method other than POST, its added headers
    or query arguments, or a host written as an address that is not public."""
    url = str(url).strip()
    why = notify_guard.scheme_refusal(url)
    if why:
        return why
    with apprise_log():  # Apprise's own log names the URL in full
        service = apprise.Apprise.instantiate(url)
    if service is None:
        return (
            "it is not one Apprise can send to: use a URL like mailtos://user:password@host?to=…, "
            "slack://TokenA/TokenB/TokenC/#channel, workflows://host/… or jsons://host/path."
        )
    return notify_guard.save_refusal(service)


def masked(url: str) -> str:
    """What pages, the API and the admin show of a URL: batchjobs.notify's mask (the notifications
    sent show the same)."""
    return mask_url(url)


def masked_list(urls: list[str]) -> list[str]:
    return [masked(url) for url in urls or []]
