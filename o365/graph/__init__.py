"""Kodo's one way to Microsoft Graph: tokens, retries, paging and error mapping.

client = GraphClient(credentials, endpoints, cache_key=f"configuration-{configuration.pk}")
for page in client.iter_pages("/users", params={"$top": 999}):
    ...

errors.py     GraphError and its kinds (what Microsoft answered, typed)
transport.py  sessions with timeouts and CA bundles; reading error answers
tokens.py     Credentials and tokens from MSAL, shared per configuration in a process
client.py     GraphClient: retries, paging, JSON batches, downloads
"""

from .client import BATCH_LIMIT, BatchResponse, GraphClient
from .errors import (
    AuthenticationFailed,
    DestinationRefused,
    DownloadUrlExpired,
    GraphError,
    GraphUnavailable,
    NotFound,
    PermissionDenied,
    ResyncRequired,
    Throttled,
)
from .tokens import Credentials, forget_tokens
from .transport import build_session, ca_bundle_path

__all__ = [
    "BATCH_LIMIT",
    "AuthenticationFailed",
    "BatchResponse",
    "Credentials",
    "DestinationRefused",
    "DownloadUrlExpired",
    "GraphClient",
    "GraphError",
    "GraphUnavailable",
    "NotFound",
    "PermissionDenied",
    "ResyncRequired",
    "Throttled",
    "build_session",
    "ca_bundle_path",
    "forget_tokens",
]
