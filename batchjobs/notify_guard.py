"""Where a notification may go: a short list of Apprise schemes, webhooks that only POST their
message, and public addresses only (unless NOTIFY_ALLOWED_HOSTS lists the host).

Without this a schedule's URL is a request the workers make for its owner: Apprise's webhooks
(`json://`, `form://`, `xml://`) let a URL pick the method, add headers and name any host, and the
workers sit next to Redis, the database, Docker and a cloud's metadata service.

Each check returns why a URL or address is refused, or "" when it is fine. They are used when a
schedule is saved (without looking a name up in DNS) and again just before each send (looking it up).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

# Scheme → what it is, for the message listing them. Apprise 2.3 has no msteams:// any more
# (Microsoft retired its connectors): Teams is reached through workflows://.
ACCEPTED_SCHEMES = {
    "mailto": "email",
    "mailtos": "email over TLS",
    "slack": "Slack",
    "workflows": "Microsoft Teams (Power Automate workflows)",
    "discord": "Discord",
    "tgram": "Telegram",
    "ntfy": "ntfy",
    "ntfys": "ntfy over HTTPS",
    "json": "a JSON webhook",
    "jsons": "a JSON webhook over HTTPS",
    "form": "a form webhook",
    "forms": "a form webhook over HTTPS",
    "xml": "an XML webhook",
    "xmls": "an XML webhook over HTTPS",
}
# Apprise's plain webhooks: the URL could choose the method, headers (+Name=v) and query arguments (-name=v).
WEBHOOK_SCHEMES = frozenset({"json", "jsons", "form", "forms", "xml", "xmls"})
ALLOWED_SETTING = "NOTIFY_ALLOWED_HOSTS"


def scheme_of(url: str) -> str:
    try:
        return urlsplit(str(url).strip()).scheme.lower()
    except ValueError:
        return ""


def accepted_list() -> str:
    return ", ".join(f"{scheme}://" for scheme in ACCEPTED_SCHEMES)


def scheme_refusal(url: str) -> str:
    scheme = scheme_of(url)
    if scheme in ACCEPTED_SCHEMES:
        return ""
    named = f"the scheme {scheme}://" if scheme else "a URL without a scheme"
    return f"{named} is not one notifications use; use one of {accepted_list()}."


def webhook_refusal(service) -> str:
    """A webhook URL that asks for another method than POST, or for headers or query arguments."""
    if service.schema not in WEBHOOK_SCHEMES and service.secure_protocol not in WEBHOOK_SCHEMES:
        return ""
    if str(getattr(service, "method", "POST")).upper() != "POST":
        return f"it asks for method={service.method}: webhooks are sent with POST only (remove method=)."
    if getattr(service, "headers", None) or getattr(service, "params", None):
        return "it adds headers (+Name=value) or query arguments (-name=value): webhooks take neither (remove them)."
    return ""


def make_post_only(service) -> None:
    """At send, whatever the stored URL says: POST, no added headers or query arguments, and no
    redirect followed (a public host could send the request on to a private one)."""
    if service.schema in WEBHOOK_SCHEMES or service.secure_protocol in WEBHOOK_SCHEMES:
        service.method = "POST"
        service.headers = {}
        service.params = {}
    service.redirects = False


def target(service) -> tuple[str, int | None] | None:
    """The host and port this service connects to when the URL chooses it; None when Apprise
    always connects to the service's own host (hooks.slack.com, discord.com, api.telegram.org, ntfy.sh)."""
    smtp_host = getattr(service, "smtp_host", None)
    if smtp_host:  # email: the SMTP server (?smtp= or the one Apprise knows for the address's domain)
        return smtp_host.lower(), service.port
    if service.schema in ("slack", "discord", "tgram") or getattr(service, "mode", "") == "cloud":
        return None
    if not service.host:
        return None
    port = service.port if isinstance(service.port, int) else (443 if service.secure else 80)
    return service.host.lower().strip("[]"), port


def is_allowed(host: str, port: int | None) -> bool:
    host = host.lower().strip("[]")
    return any(h == host and (p is None or p == port) for h, p in settings.NOTIFY_ALLOWED_HOSTS)


def _kind(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """What makes an address not public ("" when it is public)."""
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 is 127.0.0.1
    address = mapped or address
    for test, kind in (
        ("is_unspecified", "an unspecified address"),
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address"),
        ("is_multicast", "a multicast address"),
        ("is_reserved", "a reserved address"),  # before private: Python counts 240.0.0.0/4 as both
        ("is_private", "a private address"),
    ):
        if getattr(address, test):
            return kind
    return "" if address.is_global else "not a public address"


def _refused(address, kind: str, host: str, *, looked_up: bool) -> str:
    named = f"the host {host} resolves to {address}, which" if looked_up else f"the address {address}"
    return f"{named} is {kind}: notifications go to public addresses only, or to hosts listed in {ALLOWED_SETTING}."


def address_refusal(host: str, port: int | None, *, resolve: bool) -> str:
    """Why this host may not be sent to: every address it has must be public, unless the host (or
    host:port) is in NOTIFY_ALLOWED_HOSTS. With resolve=False a name is not looked up (saving a schedule)."""
    host = host.lower().strip("[]")
    if is_allowed(host, port):
        return ""
    looked_up = False
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        looked_up = True
        if not resolve:
            return ""
        try:
            found = socket.getaddrinfo(host, port or None, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            return f"the host {host} could not be looked up ({getattr(exc, 'strerror', None) or exc})."
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found]
    for address in addresses:
        kind = _kind(address)
        if kind:
            return _refused(address, kind, host, looked_up=looked_up)
    return ""


def save_refusal(service) -> str:
    """Why a URL's service may not be saved: a webhook's method, headers or query arguments, or a
    host written as an address that is not public (a name is looked up only when sending)."""
    why = webhook_refusal(service)
    where = target(service)
    return why or (address_refusal(*where, resolve=False) if where else "")


def send_refusal(service) -> str:
    """Just before sending: POST only, no redirects, and every address of the host public.

    What remains: the host is looked up here, then again by requests or smtplib when they connect;
    a name server that answers a public address now and a private one a moment later (DNS
    rebinding) gets through that window. Closing it means connecting to the address checked here,
    which Apprise's plugins give no way to do; a network policy on the workers' egress is the
    defence in depth."""
    make_post_only(service)
    where = target(service)
    return address_refusal(*where, resolve=True) if where else ""
