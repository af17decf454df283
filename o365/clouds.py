"""The Microsoft clouds a configuration can sign in to, where their Graph lives, and which hosts
Kodo may connect to for each.

Hosts from https://learn.microsoft.com/graph/deployments. A national cloud's `.default` scope
uses that cloud's Graph host; a custom cloud (m365sim, a test double) keeps the global scope
because it stands in for the global service.

Built-in clouds are fixed here; custom clouds are defined by the server administrator
(o365.models.Cloud) and become Endpoints through custom_endpoints(). Every outgoing request of a
configuration goes only to the hosts of its Endpoints (o365.graph.transport enforces it).
"""

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography import x509

GLOBAL_SCOPE = "https://graph.microsoft.com/.default"

GLOBAL = "global"
US_GOVERNMENT = "usgov"
CHINA = "china"
CUSTOM = "custom"

BUILTIN_NAMES = {GLOBAL: "Global", US_GOVERNMENT: "US Government", CHINA: "China"}
# KodoADSettings.json's `Cloud` values for the built-in clouds (Register-KodoApp.ps1 writes these)
JSON_NAMES = {
    "global": GLOBAL,
    "usgovernment": US_GOVERNMENT,
    "usgov": US_GOVERNMENT,
    "china": CHINA,
}

HOST_PATTERN = re.compile(r"(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")


@dataclass(frozen=True)
class HostPattern:
    """`host`, `*.domain` (any name below domain, not domain itself) or an IP address, with a
    port (443 unless given)."""

    host: str
    port: int = 443

    @property
    def wildcard(self) -> bool:
        return self.host.startswith("*.")

    def matches(self, host: str, port: int) -> bool:
        host = host.lower().rstrip(".").strip("[]")
        if port != self.port:
            return False
        if self.wildcard:
            return host.endswith(self.host[1:]) and len(host) > len(self.host) - 1
        return host == self.host

    def __str__(self):
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == 443 else f"{host}:{self.port}"


def parse_host_pattern(text: str) -> HostPattern:
    """`*.sharepoint.com`, `files.example.com:8443`, `127.0.0.1:9444`, `[::1]:9444`; raises
    ValueError with a sentence for the server administrator."""
    value = (text or "").strip().lower()
    try:
        parts = urlsplit(f"//{value}")
        host, port = parts.hostname, parts.port or 443
    except ValueError:
        raise ValueError(f"The download host {text!r} is not host[:port].") from None
    if (
        not host
        or parts.path
        or parts.query
        or parts.fragment
        or parts.username is not None
        or value.count("*") > (1 if value.startswith("*.") else 0)
    ):
        raise ValueError(
            f"The download host {text!r} must be a host name (optionally *.domain) "
            "with an optional :port, without a scheme or path."
        )
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if len(host) > 253 or not HOST_PATTERN.fullmatch(host):
            raise ValueError(f"The download host {text!r} is not a valid host name.") from None
        if host.startswith("*.") and host.count(".") < 2:
            raise ValueError(
                f"The download host {text!r} is too wide: give at least *.domain.tld."
            ) from None
    return HostPattern(host, port)


def parse_host_patterns(text: str) -> tuple[HostPattern, ...]:
    """One pattern a line (or separated by commas or spaces)."""
    return tuple(
        dict.fromkeys(parse_host_pattern(item) for item in re.split(r"[\s,]+", text or "") if item)
    )


def url_host_pattern(url: str) -> HostPattern:
    parts = urlsplit(url)
    return HostPattern((parts.hostname or "").lower(), parts.port or 443)


@dataclass(frozen=True)
class Endpoints:
    """Where to get tokens and call Graph, and where else Kodo may connect for this cloud.

    `ca_pem` is a CA certificate (PEM) to trust instead of the public roots (custom clouds only).
    `download_hosts` are the hosts Graph's download and upload URLs may point to.
    `private_network`: the cloud may be on loopback, link-local or private addresses (only
    a custom cloud the server administrator marked so). `refusal`: when set, no connection is made
    at all and this sentence is the error (a cloud no longer enabled for the organization)."""

    authority_host: str
    graph_base: str
    scope: str = GLOBAL_SCOPE
    ca_pem: str | None = None
    download_hosts: tuple[HostPattern, ...] = ()
    private_network: bool = False
    name: str = ""
    refusal: str | None = None

    def authority(self, tenant_id: str) -> str:
        # MSAL wants https://host[:port]/<tenant> with no trailing slash
        return f"{self.authority_host}/{tenant_id}"

    def allowed_hosts(self) -> tuple[HostPattern, ...]:
        return (
            url_host_pattern(self.authority_host),
            url_host_pattern(self.graph_base),
            *self.download_hosts,
        )

    def allows_host(self, host: str, port: int) -> bool:
        return any(pattern.matches(host, port) for pattern in self.allowed_hosts())

    def __repr__(self):
        ca = "custom CA" if self.ca_pem else "public CAs"
        private = ", private network" if self.private_network else ""
        return f"Endpoints({self.authority_host}, {self.graph_base}, {self.scope}, {ca}{private})"


CLOUDS = {
    GLOBAL: Endpoints(
        authority_host="https://login.microsoftonline.com",
        graph_base="https://graph.microsoft.com/v1.0",
        scope=GLOBAL_SCOPE,
        # OneDrive for Business and SharePoint download/upload URLs; *.svc.ms serves media
        download_hosts=parse_host_patterns("*.sharepoint.com *.sharepoint-df.com *.svc.ms"),
        name=BUILTIN_NAMES[GLOBAL],
    ),
    US_GOVERNMENT: Endpoints(
        authority_host="https://login.microsoftonline.us",
        graph_base="https://graph.microsoft.us/v1.0",
        scope="https://graph.microsoft.us/.default",
        download_hosts=parse_host_patterns("*.sharepoint.us"),
        name=BUILTIN_NAMES[US_GOVERNMENT],
    ),
    CHINA: Endpoints(
        authority_host="https://login.chinacloudapi.cn",
        graph_base="https://microsoftgraph.chinacloudapi.cn/v1.0",
        scope="https://microsoftgraph.chinacloudapi.cn/.default",
        download_hosts=parse_host_patterns("*.sharepoint.cn"),
        name=BUILTIN_NAMES[CHINA],
    ),
}


def endpoints_for(
    cloud: str,
    *,
    authority_host: str | None = None,
    graph_base: str | None = None,
    ca_pem: str | None = None,
) -> Endpoints:
    """The endpoints of a built-in cloud; for CUSTOM, built from the given values (checked)."""
    if cloud in CLOUDS:
        return CLOUDS[cloud]
    if cloud != CUSTOM:
        names = ", ".join([*CLOUDS, CUSTOM])
        raise ValueError(f"Unknown cloud {cloud!r}: choose one of {names}.")
    return custom_endpoints(authority_host or "", graph_base or "", ca_pem)


def custom_endpoints(
    authority_host: str,
    graph_base: str,
    ca_pem: str | None = None,
    *,
    download_hosts=(),
    private_network: bool = False,
    name: str = "",
) -> Endpoints:
    if isinstance(download_hosts, str):
        download_hosts = parse_host_patterns(download_hosts)
    return Endpoints(
        authority_host=_authority_host(authority_host),
        graph_base=_graph_base(graph_base),
        scope=GLOBAL_SCOPE,
        ca_pem=_ca_pem(ca_pem),
        download_hosts=tuple(download_hosts),
        private_network=private_network,
        name=name,
    )


def _authority_host(value: str) -> str:
    value = value.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(
            f"The sign-in (authority) host {value!r} must be an https:// address, "
            "for example https://login.microsoftonline.com."
        )
    if parts.path or parts.query or parts.fragment:
        raise ValueError(
            f"The sign-in (authority) host {value!r} must be only "
            "https://host[:port], without a path: the tenant ID is added to it."
        )
    return value


def _graph_base(value: str) -> str:
    value = value.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(
            f"The Graph base URL {value!r} must be an https:// address, "
            "for example https://graph.microsoft.com/v1.0."
        )
    if parts.query or parts.fragment:
        raise ValueError(f"The Graph base URL {value!r} must not have a query or fragment.")
    return value


def _ca_pem(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    try:
        certificates = x509.load_pem_x509_certificates(value.encode())
    except ValueError:
        certificates = []
    if not certificates:
        raise ValueError(
            "The CA certificate is not a PEM certificate: paste the text that starts "
            "with -----BEGIN CERTIFICATE-----."
        )
    return value
