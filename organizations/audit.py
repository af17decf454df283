"""The audit log: one function to write an entry, one to tell where a request came from."""

import ipaddress
import logging

from django.conf import settings

from organizations.models import AuditEvent

log = logging.getLogger(__name__)


def client_ip(request) -> str | None:
    """The client's address; behind KODO_PROXY_COUNT trusted proxies, taken from X-Forwarded-For."""
    if request is None:
        return None
    candidate = request.META.get("REMOTE_ADDR", "")
    proxies = settings.KODO_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if len(hops) >= proxies:
            candidate = hops[-proxies]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None


def record(
    action: str, message: str, *, request=None, actor=None, organization=None, actor_email: str = ""
):
    if actor is None and request is not None and request.user.is_authenticated:
        actor = request.user
    event = AuditEvent.objects.create(
        action=action,
        message=message[:500],
        actor=actor,
        actor_email=(getattr(actor, "email", "") or actor_email)[:254],
        organization=organization,
        ip_address=client_ip(request),
    )
    log.info(
        "audit %s org=%s actor=%s", action, organization and organization.code, event.actor_email
    )
    return event
