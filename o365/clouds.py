"""The Microsoft clouds a configuration can sign in to, and where their Graph lives.

Hosts from https://learn.microsoft.com/graph/deployments. A national cloud's `.default` scope
uses that cloud's Graph host; a custom cloud (m365sim, a test double) keeps the global scope
because it stands in for the global service.
"""

from dataclasses import dataclass
from urllib.parse import urlsplit

GLOBAL_SCOPE = "https://graph.microsoft.com/.default"

GLOBAL = "global"
US_GOVERNMENT = "usgov"
CHINA = "china"
CUSTOM = "custom"

CLOUD_CHOICES = [
    (GLOBAL, "Global (Microsoft 365)"),
    (US_GOVERNMENT, "US Government L4 (GCC High)"),
    (CHINA, "China (operated by 21Vianet)"),
    (CUSTOM, "Custom endpoints"),
]


@dataclass(frozen=True)
class Endpoints:
    """Where to get tokens and call Graph. `ca_pem` is a CA certificate (PEM) to trust instead
    of the public roots; only custom clouds have one."""

    authority_host: str
    graph_base: str
    scope: str = GLOBAL_SCOPE
    ca_pem: str | None = None

    def authority(self, tenant_id: str) -> str:
        # MSAL wants https://host[:port]/<tenant> with no trailing slash
        return f"{self.authority_host}/{tenant_id}"

    def __repr__(self):
        ca = "custom CA" if self.ca_pem else "public CAs"
        return f"Endpoints({self.authority_host}, {self.graph_base}, {self.scope}, {ca})"


CLOUDS = {
    GLOBAL: Endpoints(
        authority_host="https://login.microsoftonline.com",
        graph_base="https://graph.microsoft.com/v1.0",
        scope=GLOBAL_SCOPE,
    ),
    US_GOVERNMENT: Endpoints(
        authority_host="https://login.microsoftonline.us",
        graph_base="https://graph.microsoft.us/v1.0",
        scope="https://graph.microsoft.us/.default",
    ),
    CHINA: Endpoints(
        authority_host="https://login.chinacloudapi.cn",
        graph_base="https://microsoftgraph.chinacloudapi.cn/v1.0",
        scope="https://microsoftgraph.chinacloudapi.cn/.default",
    ),
}


def endpoints_for(cloud: str, *, authority_host: str | None = None,
                  graph_base: str | None = None, ca_pem: str | None = None) -> Endpoints:
    """The endpoints of a named cloud; for CUSTOM, built from the given values (checked)."""
    if cloud in CLOUDS:
        return CLOUDS[cloud]
    if cloud != CUSTOM:
        names = ", ".join(name for name, _ in CLOUD_CHOICES)
        raise ValueError(f"Unknown cloud {cloud!r}: choose one of {names}.")
    return custom_endpoints(authority_host or "", graph_base or "", ca_pem)


def custom_endpoints(authority_host: str, graph_base: str, ca_pem: str | None = None) -> Endpoints:
    return Endpoints(
        authority_host=_authority_host(authority_host),
        graph_base=_graph_base(graph_base),
        scope=GLOBAL_SCOPE,
        ca_pem=_ca_pem(ca_pem),
    )


def _authority_host(value: str) -> str:
    value = value.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"The sign-in (authority) host {value!r} must be an https:// address, "
                         "for example https://login.microsoftonline.com.")
    if parts.path or parts.query or parts.fragment:
        raise ValueError(f"The sign-in (authority) host {value!r} must be only "
                         "https://host[:port], without a path: the tenant ID is added to it.")
    return value


def _graph_base(value: str) -> str:
    value = value.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"The Graph base URL {value!r} must be an https:// address, "
                         "for example https://graph.microsoft.com/v1.0.")
    if parts.query or parts.fragment:
        raise ValueError(f"The Graph base URL {value!r} must not have a query or fragment.")
    return value


def _ca_pem(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    from cryptography import x509

    try:
        certificates = x509.load_pem_x509_certificates(value.encode())
    except ValueError:
        certificates = []
    if not certificates:
        raise ValueError("The CA certificate is not a PEM certificate: paste the text that starts "
                         "with -----BEGIN CERTIFICATE-----.")
    return value
