"""What Microsoft Graph answered, as exceptions: code, message, HTTP status and request-id."""


class GraphError(Exception):
    """A Microsoft Graph (or sign-in) failure. `code`, `message`, `status` and `request_id` are
    Microsoft's when it answered; str(exc) is a sentence for an admin."""

    def __init__(self, text, *, code=None, message=None, status=None, request_id=None):
        super().__init__(text)
        self.code = code
        self.message = message
        self.status = status
        self.request_id = request_id


class AuthenticationFailed(GraphError):
    """Microsoft refused to give Kodo a token (wrong secret, unknown tenant, certificate...), or
    Graph kept refusing the token. `aadsts` is the AADSTS error number when there is one."""

    def __init__(self, text, *, aadsts=None, **kwargs):
        super().__init__(text, **kwargs)
        self.aadsts = aadsts


class PermissionDenied(GraphError):
    """403: the app lacks a permission (or the item is blocked, e.g. flagged as malware)."""


class NotFound(GraphError):
    """404, or a user whose OneDrive was never provisioned."""


class ResyncRequired(GraphError):
    """410: the delta token is no longer valid; start a fresh enumeration and reconcile."""


class Throttled(GraphError):
    """Still throttled (429/503/504/509) after the retries; `retry_after` is Microsoft's last
    Retry-After in seconds, if it sent one."""

    def __init__(self, text, *, retry_after=None, **kwargs):
        super().__init__(text, **kwargs)
        self.retry_after = retry_after


class GraphUnavailable(GraphError):
    """Microsoft could not be reached (connection failures, timeouts, server errors) after the
    retries, or its TLS certificate is not trusted."""


class DownloadUrlExpired(GraphError):
    """401 on a pre-authenticated download URL: get the item again for a fresh URL."""


class DestinationRefused(GraphError):
    """Kodo refused to connect: not https, not a host of the configuration's cloud, or a
    loopback/link-local/private address of a cloud not marked private. Nothing was sent; the
    message never says what (if anything) listens there."""
