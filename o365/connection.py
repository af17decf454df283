"""From a stored configuration to a working Graph connection, and TEST CONNECTION."""

import hashlib
import logging
from dataclasses import dataclass, field

from django.conf import settings

from kodo import crypto
from o365.clouds import endpoints_for
from o365.graph import AuthenticationFailed, Credentials, GraphClient, GraphError
from o365.permissions import missing_permissions
from organizations import audit

log = logging.getLogger(__name__)

CONSENT_STEPS = (
    "In the Azure portal open Microsoft Entra ID → App registrations → the Kodo app → "
    "API permissions, add the missing Microsoft Graph application permissions, then click "
    "\"Grant admin consent\"."
)


def credentials_for(service) -> Credentials:
    def text(token):
        return crypto.decrypt_text(token) if token else None

    return Credentials(
        tenant_id=str(service.tenant_id),
        client_id=str(service.client_id),
        client_secret=text(service.client_secret_encrypted),
        pfx=crypto.decrypt(service.certificate_pfx_encrypted)
        if service.certificate_pfx_encrypted else None,
        pfx_password=text(service.certificate_password_encrypted),
    )


def _cache_key(service) -> str:
    """Changes whenever the credentials or endpoints change, so no stale token is reused."""
    material = b"|".join([
        str(service.pk).encode(), str(service.tenant_id).encode(), str(service.client_id).encode(),
        bytes(service.client_secret_encrypted), bytes(service.certificate_pfx_encrypted),
        bytes(service.certificate_password_encrypted), service.cloud.encode(),
        service.authority_host.encode(), service.graph_base_url.encode(),
    ])
    return f"service-{service.pk}-{hashlib.sha256(material).hexdigest()[:16]}"


def graph_client_for(service, **options) -> GraphClient:
    options.setdefault("max_retries", settings.KODO_GRAPH_MAX_RETRIES)
    options.setdefault("backoff_base", settings.KODO_GRAPH_BACKOFF_SECONDS)
    endpoints = endpoints_for(service.cloud, authority_host=service.authority_host,
                              graph_base=service.graph_base_url,
                              ca_pem=service.ca_certificate_pem or None)
    return GraphClient(credentials_for(service), endpoints, cache_key=_cache_key(service),
                       **options)


@dataclass
class ConnectionResult:
    ok: bool
    summary: str
    missing: list = field(default_factory=list)
    roles: list = field(default_factory=list)


def check_connection(service) -> ConnectionResult:
    client = graph_client_for(service, max_retries=2)
    try:
        roles = client.roles()
    except AuthenticationFailed as error:
        return ConnectionResult(False, f"Kodo could not sign in to the tenant: {error}")
    except GraphError as error:
        return ConnectionResult(False, f"Kodo could not reach Microsoft 365: {error}")
    finally:
        client.close()
    missing = missing_permissions(roles)
    client = graph_client_for(service, max_retries=2)
    try:
        client.get("/users", params={"$top": "1", "$select": "id"})
    except GraphError as error:
        if not missing:
            return ConnectionResult(False, f"Signed in, but reading users failed: {error}",
                                    roles=roles)
    finally:
        client.close()
    if missing:
        return ConnectionResult(
            False,
            f"Signed in, but the app lacks these permissions: {', '.join(missing)}. "
            + CONSENT_STEPS,
            missing=missing, roles=roles,
        )
    return ConnectionResult(True, "Connection OK: signed in, read users, and every required "
                                  "permission is granted.", roles=roles)


def do_test_connection(*, request, service) -> ConnectionResult:
    result = check_connection(service)
    service.record_test(ok=result.ok, message=result.summary, missing=result.missing,
                        roles=result.roles)
    audit.record("configuration_tested",
                 f"Tested Office 365 configuration {service.name}: "
                 + ("success." if result.ok else "failed."),
                 request=request, organization=service.organization)
    return result
