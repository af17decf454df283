"""Kodo's one way to Microsoft Graph: tokens, retries, paging and error mapping.

    client = GraphClient(credentials, endpoints, cache_key=f"service-{service.pk}")
    for page in client.iter_pages("/users", params={"$top": 999}):
        ...

Tokens come from MSAL (client credentials, with a secret or a certificate). Every client of one
configuration in a process shares one MSAL application and its token cache, so a worker asks
Microsoft for a token about once an hour, whatever the number of tasks.

Retries follow Microsoft's throttling guidance: 429/503/504 wait for Retry-After (exponential
backoff with jitter when it is absent), 500/502/509 and dropped connections back off too; 401
refreshes the token once. What cannot be retried becomes a typed GraphError carrying Microsoft's
code, message, HTTP status and request-id.

Many small reads go in JSON batches (POST $batch, 20 requests each; batch() and get_many()):
each answer is retried and typed like a direct request's, and while Graph has asked this client
to wait (Retry-After), its other batches wait too.
"""

import atexit
import base64
import hashlib
import hmac
import json
import logging
import os
import random
import ssl
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import msal
import requests
import urllib3
from msal.exceptions import MsalServiceError
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

from .clouds import Endpoints

log = logging.getLogger(__name__)

TIMEOUT = (10, 60)  # connect, read (seconds)
POOL_SIZE = 32  # connections per host: parallel downloads share one client
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504, 509})
THROTTLE_STATUSES = frozenset({429, 503, 504, 509})
NEVER_RETRY_CODES = frozenset({"pathistoolong"})
MAX_RETRY_AFTER = 300.0  # a longer Retry-After is the caller's to schedule (Throttled.retry_after)
BATCH_LIMIT = 20  # requests in one JSON batch (Graph refuses more)


def _version():
    try:
        from importlib.metadata import version

        return version("kodo")
    except Exception:
        return "0"


USER_AGENT = f"Kodo/{_version()} (+Microsoft 365 backup)"


# ----- errors ---------------------------------------------------------------------------


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


@dataclass
class BatchResponse:
    """The answer to one request of a JSON batch (GraphClient.batch, get_many). `body` is the
    JSON Graph sent (a base64 string for other content types); `error` is the typed GraphError a
    failure would have raised as a direct request (after the same retries), else None."""

    id: str
    status: int
    headers: CaseInsensitiveDict
    body: object = None
    error: GraphError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def json(self) -> dict:
        """The body of a success, or the typed error raised."""
        if self.error is not None:
            raise self.error
        return self.body if isinstance(self.body, dict) else {}


# ----- credentials ----------------------------------------------------------------------

_PROCESS_KEY = os.urandom(32)


@dataclass(frozen=True, repr=False)
class Credentials:
    """An app registration's credentials. With a PFX, the certificate is used (the secret is
    then ignored). repr() shows which credential is set, never its value."""

    tenant_id: str
    client_id: str
    client_secret: str | None = None
    pfx: bytes | None = None
    pfx_password: str | None = None

    def __post_init__(self):
        if not (self.tenant_id or "").strip():
            raise ValueError("The tenant ID is missing.")
        if not (self.client_id or "").strip():
            raise ValueError("The client (application) ID is missing.")
        if not self.client_secret and not self.pfx:
            raise ValueError("Give a client secret or a certificate (PFX) to sign in.")

    def __repr__(self):
        secret = "'***'" if self.client_secret else None
        pfx = f"<{len(self.pfx)} bytes>" if self.pfx else None
        password = "'***'" if self.pfx_password else None
        return (f"Credentials(tenant_id={self.tenant_id!r}, client_id={self.client_id!r}, "
                f"client_secret={secret}, pfx={pfx}, pfx_password={password})")

    __str__ = __repr__

    @property
    def uses_certificate(self) -> bool:
        return bool(self.pfx)

    def fingerprint(self) -> str:
        """A digest of every field, keyed per process: fit for cache keys, useless to guess
        secrets from."""
        mac = hmac.new(_PROCESS_KEY, digestmod=hashlib.sha256)
        for part in (self.tenant_id, self.client_id, self.client_secret or "",
                     self.pfx_password or ""):
            mac.update(part.encode() + b"\0")
        mac.update(self.pfx or b"")
        return mac.hexdigest()[:32]

    def scrub(self, text: str) -> str:
        for secret in (self.client_secret, self.pfx_password):
            if secret and len(secret) >= 4:
                text = text.replace(secret, "***")
        return text


# ----- sessions -------------------------------------------------------------------------


class _Session(requests.Session):
    """A session with a default timeout (requests has none)."""

    timeout = TIMEOUT

    def request(self, method, url, **kwargs):
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().request(method, url, **kwargs)


_ca_files: dict[str, str] = {}
_ca_lock = threading.Lock()


def ca_bundle_path(ca_pem: str) -> str:
    """A file holding this PEM, written once per process (requests needs a path)."""
    digest = hashlib.sha256(ca_pem.encode()).hexdigest()
    with _ca_lock:
        path = _ca_files.get(digest)
        if path is None or not os.path.exists(path):
            fd, path = tempfile.mkstemp(prefix="kodo-ca-", suffix=".pem")
            with os.fdopen(fd, "w") as f:
                f.write(ca_pem)
            _ca_files[digest] = path
            atexit.register(_remove_quietly, path)
        return path


def _remove_quietly(path):
    try:
        os.remove(path)
    except OSError:
        pass


def build_session(endpoints: Endpoints, *, pool_size: int = POOL_SIZE) -> requests.Session:
    """A session that trusts exactly the cloud's CAs. trust_env is off: otherwise
    REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE from the environment replace `verify` (psf/requests#3829)."""
    session = _Session()
    session.trust_env = False
    if endpoints.ca_pem:
        session.verify = ca_bundle_path(endpoints.ca_pem)
    else:
        import certifi

        session.verify = certifi.where()
    session.headers["User-Agent"] = USER_AGENT
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


# ----- tokens ---------------------------------------------------------------------------


class _TransientTokenError(Exception):
    def __init__(self, detail, *, status=None, retry_after=None, code=None, message=None,
                 request_id=None):
        super().__init__(detail)
        self.status = status
        self.retry_after = retry_after
        self.code = code
        self.message = message
        self.request_id = request_id


class _RecordingHttpClient:
    """The http_client given to MSAL: the session, remembering the last response of each thread
    so that a failed token request can be told apart (throttled, server error, refused)."""

    def __init__(self, session):
        self.session = session
        self._local = threading.local()

    @property
    def last(self):
        return getattr(self._local, "last", None)

    def forget(self):
        self._local.last = None

    def _keep(self, response):
        self._local.last = response
        return response

    def get(self, url, **kwargs):
        return self._keep(self.session.get(url, **kwargs))

    def post(self, url, **kwargs):
        return self._keep(self.session.post(url, **kwargs))

    def close(self):
        self.session.close()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class _CertificateAssertion:
    """Signs a fresh client assertion (RFC 7523, PS256 with x5t#S256) for every token request,
    from a PFX held in memory: the private key never touches the disk, and no assertion is
    replayed (MSAL's own would be reused for minutes)."""

    def __init__(self, client_id, pfx, password):
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.serialization import pkcs12

        try:
            key, cert, _ = pkcs12.load_key_and_certificates(
                pfx, password.encode() if password else None)
        except ValueError:
            raise AuthenticationFailed(
                "The certificate password does not open this PFX file (or the file is not a PFX). "
                "Check the certificate file and its password in the configuration.",
                code="invalid_certificate") from None
        if key is None or cert is None:
            raise AuthenticationFailed(
                "This PFX file lacks the private key or the certificate. Export the certificate "
                "again with its private key.", code="invalid_certificate")
        self.client_id = client_id
        self._key = key
        der = cert.public_bytes(serialization.Encoding.DER)
        # MSAL's form (padding kept), which Entra ID accepts
        self._x5t_s256 = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).decode()
        # the thumbprint Entra ID shows for the certificate
        self.thumbprint = cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303
        self.not_valid_after = cert.not_valid_after_utc

    def __call__(self, context):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        now = int(time.time())
        header = {"alg": "PS256", "typ": "JWT", "x5t#S256": self._x5t_s256}
        claims = {"aud": context["token_endpoint"], "iss": self.client_id, "sub": self.client_id,
                  "jti": str(uuid.uuid4()), "iat": now, "nbf": now, "exp": now + 600}
        signing_input = (_b64url(json.dumps(header, separators=(",", ":")).encode()) + "."
                         + _b64url(json.dumps(claims, separators=(",", ":")).encode()))
        signature = self._key.sign(
            signing_input.encode(),
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH),
            hashes.SHA256())
        return signing_input + "." + _b64url(signature)


# AADSTS number (or OAuth error) -> what the admin should do
_SIGN_IN_ADVICE = {
    "7000215": "The client secret is not valid for this app registration. Enter the secret's "
               "Value (not its Secret ID), or create a new client secret.",
    "7000222": "The client secret has expired. Create a new client secret and update the "
               "configuration.",
    "90002": "The tenant was not found. Check the tenant ID (Directory ID) and the cloud.",
    "900023": "The tenant ID is not valid. Check the tenant ID (Directory ID).",
    "700016": "The app (client ID) was not found in this tenant. Check the client ID, and that "
              "the app is registered in this tenant.",
    "700027": "Microsoft does not accept this certificate for the app. Upload the certificate "
              "(.cer) to the app registration, or check that the PFX is the right one.",
    "700024": "The certificate sign-in was refused as out of its time range. Check the server's "
              "clock.",
    "700025": "Microsoft refused a replayed certificate assertion.",
    "invalid_client": "Microsoft refused the app's credentials. Check the client ID, the secret "
                      "or the certificate.",
    "unauthorized_client": "The app is not allowed to sign in to this tenant. Check the client "
                           "ID and that an admin consented to the app.",
    "invalid_tenant": "The tenant was not found. Check the tenant ID (Directory ID) and the "
                      "cloud.",
}


def _first_line(text):
    return (text or "").strip().splitlines()[0].strip() if (text or "").strip() else ""


def _aadsts(description):
    text = description or ""
    start = text.find("AADSTS")
    if start < 0:
        return None
    digits = ""
    for ch in text[start + 6:]:
        if not ch.isdigit():
            break
        digits += ch
    return digits or None


def _retry_after(response):
    return _retry_after_value(response.headers.get("Retry-After") if response is not None
                              else None)


def _retry_after_value(value):
    """Seconds from a Retry-After header (seconds or an HTTP date), or None."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return max(0.0, seconds)


class _Connection:
    """What every client of one configuration shares in a process: the MSAL application, its
    token cache, and the session MSAL talks through."""

    def __init__(self, credentials: Credentials, endpoints: Endpoints):
        self.credentials = credentials
        self.endpoints = endpoints
        self.lock = threading.Lock()
        self.session = build_session(endpoints, pool_size=4)
        self.http = _RecordingHttpClient(self.session)
        self.http_cache = {}  # MSAL's replay of recent errors; cleared before our own retries
        self.token_cache = msal.TokenCache()
        self.app = None
        self.last_token = None
        self._shared_session = None

    def shared_session(self) -> requests.Session:
        """One session (connection pool) for every client of this configuration in the process
        that asks for it: runs after the first reuse its kept-alive TLS connections to Graph and
        to the download host instead of opening new ones. Sessions hold no tokens (each request
        carries its own), so sharing one between clients of one configuration is safe."""
        with self.lock:
            if self._shared_session is None:
                self._shared_session = build_session(self.endpoints)
            return self._shared_session

    def _credential(self):
        c = self.credentials
        if c.pfx:
            return {"client_assertion": _CertificateAssertion(c.client_id, c.pfx, c.pfx_password)}
        return c.client_secret

    def _build_app(self):
        authority = self.endpoints.authority(self.credentials.tenant_id)
        credential = self._credential()
        self.http.forget()
        try:
            return msal.ConfidentialClientApplication(
                self.credentials.client_id, client_credential=credential, authority=authority,
                http_client=self.http, http_cache=self.http_cache, instance_discovery=False,
                token_cache=self.token_cache)
        except ValueError as exc:
            raise self._discovery_failed(authority, exc) from None
        except MsalServiceError as exc:
            raise self._transient(f"the sign-in service at {authority} failed", exc) from None

    def _discovery_failed(self, authority, exc):
        """MSAL raises ValueError when OpenID discovery answers 4xx (unknown tenant) or
        something that is not a sign-in service."""
        response = self.http.last
        status = response.status_code if response is not None else None
        body = _json_or_none(response)
        if isinstance(body, dict) and body.get("error"):
            return self._sign_in_refused(body, status, response)
        return AuthenticationFailed(
            f"Kodo could not read the sign-in configuration of tenant {self.credentials.tenant_id} "
            f"at {authority} (HTTP {status or 'no answer'}). Check the tenant ID and the cloud.",
            code="invalid_authority", status=status, message=self.credentials.scrub(str(exc)))

    def _sign_in_refused(self, body, status, response=None):
        code = body.get("error")
        description = self.credentials.scrub(_first_line(body.get("error_description")))
        number = _aadsts(description)
        if number is None and body.get("error_codes"):
            number = str(body["error_codes"][0])
        advice = _SIGN_IN_ADVICE.get(number or "") or _SIGN_IN_ADVICE.get(code or "") or (
            "Microsoft refused to sign Kodo in.")
        request_id = body.get("trace_id") or body.get("correlation_id") or (
            response.headers.get("x-ms-request-id") if response is not None else None)
        return AuthenticationFailed(
            f"{advice} (Microsoft said: {description or code})",
            code=code, message=description, status=status, request_id=request_id,
            aadsts=f"AADSTS{number}" if number else None)

    def _transient(self, what, exc=None, body=None):
        response = self.http.last
        status = response.status_code if response is not None else None
        body = body if body is not None else _json_or_none(response)
        code = message = None
        if isinstance(body, dict):
            error = body.get("error")
            if isinstance(error, dict):
                code, message = error.get("code"), error.get("message")
            else:
                code, message = error, _first_line(body.get("error_description"))
        detail = f"{what} (HTTP {status})" if status else f"{what}: {exc}"
        return _TransientTokenError(detail, status=status, retry_after=_retry_after(response),
                                    code=code, message=message)

    def acquire(self) -> str:
        """A valid token (MSAL's cached one while it has more than 5 minutes left)."""
        with self.lock:
            try:
                if self.app is None:
                    self.app = self._build_app()
                self.http.forget()
                result = self.app.acquire_token_for_client(scopes=[self.endpoints.scope])
            except MsalServiceError as exc:
                raise self._transient("the token service failed", exc) from None
            except requests.exceptions.SSLError as exc:
                raise _tls_error(self.endpoints.authority_host, exc) from None
            except requests.RequestException as exc:
                raise self._transient("the token service could not be reached", exc) from None
            if "access_token" in result:
                self.last_token = result["access_token"]
                return self.last_token
            response = self.http.last
            status = response.status_code if response is not None else None
            if status == 429 or (status is not None and status >= 500):
                raise self._transient("the token service is busy", body=result)
            raise self._sign_in_refused(result, status, response)

    def before_retry(self):
        # MSAL replays a recent 429/5xx for its Retry-After without asking; we wait ourselves
        with self.lock:
            self.http_cache.clear()

    def drop_token(self, rejected: str):
        with self.lock:
            if self.app is not None and self.last_token == rejected:
                self.app.remove_tokens_for_client()
                self.last_token = None


_connections: dict[tuple, _Connection] = {}
_connections_lock = threading.Lock()


def _connection_for(cache_key: str, credentials: Credentials, endpoints: Endpoints) -> _Connection:
    key = (cache_key, credentials.fingerprint(), endpoints)
    with _connections_lock:
        connection = _connections.get(key)
        if connection is None:
            # new credentials or endpoints for this configuration: the old app is useless
            for old in [k for k in _connections if k[0] == cache_key]:
                del _connections[old]
            connection = _connections[key] = _Connection(credentials, endpoints)
        return connection


def forget_tokens(cache_key: str | None = None) -> None:
    """Drop the shared MSAL applications (and their tokens) of one configuration, or all."""
    with _connections_lock:
        for key in [k for k in _connections if cache_key is None or k[0] == cache_key]:
            del _connections[key]


# ----- helpers ----------------------------------------------------------------------------


def _json_or_none(response):
    if response is None:
        return None
    try:
        return json.loads(response.text)
    except (ValueError, TypeError):
        return None


def _safe_url(url):
    """Scheme, host and path: query strings can hold pre-authentication tokens."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _is_cert_verification_error(exc):
    seen = set()
    stack = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(e):
            return True
        stack.extend([e.__cause__, e.__context__, *[a for a in getattr(e, "args", ())
                                                    if isinstance(a, BaseException)]])
        reason = getattr(e, "reason", None)
        if isinstance(reason, BaseException):
            stack.append(reason)
    return False


def _tls_error(host, exc):
    if _is_cert_verification_error(exc):
        return GraphUnavailable(
            f"The TLS certificate of {urlsplit(host).netloc or host} is not trusted. For a custom "
            "cloud, give the CA certificate that signed it in the configuration.",
            code="tlsCertificateNotTrusted")
    return GraphUnavailable(f"A secure connection to {urlsplit(host).netloc or host} failed: {exc}",
                            code="tlsError")


_TRANSIENT_EXCEPTIONS = (requests.ConnectionError, requests.Timeout,
                         requests.exceptions.ChunkedEncodingError,
                         requests.exceptions.ContentDecodingError)


# ----- the client -----------------------------------------------------------------------


class GraphClient:
    """One configuration's door to Microsoft Graph. Thread-safe: parallel downloads may share
    one client. `sleep` is injectable so tests need not wait."""

    def __init__(self, credentials: Credentials, endpoints: Endpoints, *, cache_key: str,
                 max_retries: int = 6, backoff_base: float = 1.0, max_backoff: float = 60,
                 max_retry_after: float = MAX_RETRY_AFTER,
                 sleep: Callable[[float], None] = time.sleep, shared_session: bool = False):
        self.credentials = credentials
        self.endpoints = endpoints
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.sleep = sleep
        self._connection = _connection_for(cache_key, credentials, endpoints)
        # shared_session: reuse the configuration's process-wide session (its open connections),
        # which close() then leaves open; otherwise a session of this client's own.
        self._owns_session = not shared_session
        self.session = (self._connection.shared_session() if shared_session
                        else build_session(endpoints))
        graph = urlsplit(endpoints.graph_base)
        self._graph_origin = (graph.scheme, graph.netloc.lower())
        # monotonic time before which batches wait: Graph's last Retry-After to this client
        # (threads sending batches while one is throttled would only be throttled again)
        self._resume_at = 0.0
        self._resume_lock = threading.Lock()

    def __repr__(self):
        return f"GraphClient({self.credentials!r}, {self.endpoints!r})"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        if self._owns_session:
            self.session.close()

    # ----- tokens -----

    def token(self) -> str:
        """An access token for Graph, from the shared cache when still valid."""
        attempt = 0
        while True:
            try:
                return self._connection.acquire()
            except _TransientTokenError as exc:
                if attempt >= self.max_retries:
                    raise self._token_gave_up(exc) from None
                wait = self._wait(attempt, exc.retry_after)
                log.warning("Token request to %s failed: %s; retrying in %.1f s",
                            self.endpoints.authority_host, exc, wait)
                self.sleep(wait)
                self._connection.before_retry()
                attempt += 1

    def _token_gave_up(self, exc):
        host = urlsplit(self.endpoints.authority_host).netloc
        if exc.status in THROTTLE_STATUSES:
            return Throttled(f"Microsoft's sign-in service ({host}) is still throttling Kodo after "
                             f"{self.max_retries} retries. Try again later.",
                             code=exc.code, message=exc.message, status=exc.status,
                             retry_after=exc.retry_after)
        return GraphUnavailable(f"Microsoft's sign-in service ({host}) could not be reached after "
                                f"{self.max_retries} retries ({exc}). Try again later.",
                                code=exc.code, message=exc.message, status=exc.status)

    def roles(self) -> list[str]:
        """The application permissions granted to the app (the token's `roles` claim)."""
        return list(_token_claims(self.token()).get("roles") or [])

    # ----- requests -----

    def get(self, path_or_url: str, params: dict | None = None) -> dict:
        """GET a Graph resource and return its JSON."""
        _, payload = self._send("GET", path_or_url, params=params, want_json=True)
        return payload

    def batch(self, requests: list[dict], *, raise_errors: bool = False
              ) -> dict[str, BatchResponse]:
        """Send requests ({"id", "method", "url", optional "headers" and "body"}; url relative
        to the Graph base, or an absolute URL on it) as JSON batches of at most BATCH_LIMIT, one
        after the other, and return each answer by id. The batch itself is retried as any
        request; its throttled or failing requests (429/5xx) are sent again in a later batch
        after their Retry-After (or backoff), within max_retries. Failures that remain are
        BatchResponse.error (typed as a direct request's would be); with raise_errors, the
        first of them (in request order) is raised instead."""
        prepared, seen = [], set()
        for request in requests:
            request_id = str(request["id"])
            if request_id in seen:
                raise ValueError(f"Two requests of one batch have the id {request_id!r}.")
            seen.add(request_id)
            prepared.append({**request, "id": request_id, "method": request.get("method", "GET"),
                             "url": self._batch_url(request["url"])})
        answers = {}
        for start in range(0, len(prepared), BATCH_LIMIT):
            answers.update(self._batch_chunk(prepared[start:start + BATCH_LIMIT]))
        if raise_errors:
            for request in prepared:
                answers[request["id"]].json()
        return answers

    def get_many(self, paths: list[str], params: dict | None = None, *,
                 raise_errors: bool = False) -> dict[str, BatchResponse]:
        """GET each path (with the same query `params`) in JSON batches; answers by path."""
        query = f"?{urlencode(params, safe='$,')}" if params else ""
        unique = list(dict.fromkeys(paths))
        answers = self.batch([{"id": str(n), "method": "GET", "url": f"{path}{query}"}
                              for n, path in enumerate(unique)], raise_errors=raise_errors)
        return {path: answers[str(n)] for n, path in enumerate(unique)}

    def _batch_url(self, path_or_url):
        if path_or_url.startswith(("https://", "http://")):
            base = self.endpoints.graph_base.rstrip("/")
            if not path_or_url.lower().startswith(base.lower() + "/"):
                raise ValueError("A batch holds Graph requests only, not "
                                 f"{_safe_url(path_or_url)}.")
            path_or_url = path_or_url[len(base):]
        return "/" + path_or_url.lstrip("/")

    def _batch_chunk(self, chunk):
        pending = {request["id"]: request for request in chunk}
        answers = {}
        attempt = 0
        refreshed = False
        while pending:
            self._wait_for_throttle()
            _, payload = self._send("POST", "$batch", json={"requests": list(pending.values())},
                                    headers={"Accept": "application/json"}, want_json=True)
            received = {}
            for item in (payload or {}).get("responses") or ():
                if isinstance(item, dict) and str(item.get("id")) in pending:
                    received[str(item["id"])] = item
            again, waits, unauthorized = {}, [], False
            for request_id, request in pending.items():
                item = received.get(request_id) or {
                    "status": 502, "body": {"error": {
                        "code": "batchAnswerMissing",
                        "message": "The batch's answer lacked this request."}}}
                try:
                    status = int(item.get("status"))
                except (TypeError, ValueError):
                    status = 502
                headers = CaseInsensitiveDict(item.get("headers") or {})
                body = item.get("body")
                if status < 400:
                    answers[request_id] = BatchResponse(request_id, status, headers, body)
                    continue
                code, message, sub_request_id = _batch_error_fields(body, headers)
                retry_after = _retry_after_value(headers.get("Retry-After"))
                if status in THROTTLE_STATUSES:
                    self._note_throttle(retry_after)
                if status == 401 and not refreshed:
                    again[request_id] = request
                    unauthorized = True
                    continue
                if (status in RETRY_STATUSES and (code or "").lower() not in NEVER_RETRY_CODES
                        and attempt < self.max_retries
                        and (retry_after is None or retry_after <= self.max_retry_after)):
                    again[request_id] = request
                    waits.append(self._wait(attempt, retry_after))
                    continue
                url = f"{self.endpoints.graph_base}{request['url']}"
                answers[request_id] = BatchResponse(
                    request_id, status, headers, body,
                    self._error(status, code, message, sub_request_id, url, retry_after,
                                retries=attempt))
            if unauthorized:  # a fresh token, once
                self._connection.drop_token(self._connection.last_token)
                refreshed = True
            if waits:
                wait = max(waits)
                log.info("POST $batch: %d of %d requests throttled or failed; retry %d of %d "
                         "in %.2f s", len(again), len(pending), attempt + 1, self.max_retries,
                         wait)
                self.sleep(wait)
                attempt += 1
            pending = again
        return answers

    def iter_pages(self, path_or_url: str, params: dict | None = None) -> Iterator[dict]:
        """Each page of a collection, following @odata.nextLink (an opaque URL) to the end. The
        last page carries @odata.deltaLink for delta queries."""
        url, page_params = path_or_url, params
        while url:
            page = self.get(url, page_params)
            yield page
            url, page_params = page.get("@odata.nextLink"), None

    def request(self, method: str, path_or_url: str, *, params: dict | None = None,
                stream: bool = False, headers: dict | None = None, json: object = None,
                data: object = None, allow_redirects: bool = True,
                authenticated: bool = True) -> requests.Response:
        """Any request, with the retries and error mapping; the response is successful (2xx,
        or 3xx when redirects are not followed). With authenticated=False no token is sent
        (pre-authenticated download and upload URLs). A streamed body is the caller's to read
        and close; a failure while reading it is not retried here."""
        response, _ = self._send(method, path_or_url, params=params, stream=stream,
                                 headers=headers, json=json, data=data,
                                 allow_redirects=allow_redirects, authenticated=authenticated)
        return response

    def _url(self, path_or_url, authenticated):
        if path_or_url.startswith(("https://", "http://")):
            url = path_or_url
            parts = urlsplit(url)
            if authenticated and (parts.scheme, parts.netloc.lower()) != self._graph_origin:
                raise ValueError(f"Refusing to send Kodo's Graph token to {parts.netloc}: only "
                                 f"{self._graph_origin[1]} gets it (use authenticated=False).")
            return url
        return f"{self.endpoints.graph_base}/{path_or_url.lstrip('/')}"

    def _send(self, method, path_or_url, *, params=None, stream=False, headers=None, json=None,
              data=None, allow_redirects=True, authenticated=True, want_json=False):
        url = self._url(path_or_url, authenticated)
        rewind = _rewinder(data)
        refreshed = False
        attempt = 0
        while True:
            send_headers = dict(headers or {})
            token = None
            if authenticated:
                token = self.token()
                send_headers["Authorization"] = f"Bearer {token}"
            started = time.monotonic()
            try:
                response = None
                if (method == "GET" and stream and not authenticated and params is None
                        and json is None and data is None):
                    response = self._fast_get(url, send_headers)
                if response is None:
                    response = self.session.request(
                        method, url, params=params, headers=send_headers, json=json, data=data,
                        stream=stream, allow_redirects=allow_redirects)
                payload = None
                if want_json and response.status_code < 300:
                    payload = response.json()
            except requests.exceptions.SSLError as exc:
                if _is_cert_verification_error(exc) or attempt >= self.max_retries or not rewind():
                    raise _tls_error(url, exc) from None
                self._log_retry(method, url, f"TLS error {exc}", attempt)
                self.sleep(self._backoff(attempt))
                attempt += 1
                continue
            except (*_TRANSIENT_EXCEPTIONS, requests.exceptions.JSONDecodeError) as exc:
                # JSONDecodeError: a 2xx whose body was cut short
                if attempt >= self.max_retries or not rewind():
                    raise GraphUnavailable(
                        f"Microsoft Graph could not be reached at {urlsplit(url).netloc} after "
                        f"{attempt} retries ({type(exc).__name__}). Try again later.",
                        code="connectionFailed") from exc
                self._log_retry(method, url, type(exc).__name__, attempt)
                self.sleep(self._backoff(attempt))
                attempt += 1
                continue
            status = response.status_code
            log.debug("%s %s -> %s in %.2f s", method, _safe_url(url), status,
                      time.monotonic() - started)
            if status < 400:
                return response, payload
            code, message, request_id = _error_fields(_json_or_none(response), response)
            if authenticated and status in THROTTLE_STATUSES:
                self._note_throttle(_retry_after(response))
            if status == 401 and authenticated and not refreshed and rewind():
                response.close()
                self._connection.drop_token(token)
                refreshed = True
                continue
            retryable = (status in RETRY_STATUSES
                         and (code or "").lower() not in NEVER_RETRY_CODES)
            if retryable and attempt < self.max_retries and rewind():
                retry_after = _retry_after(response)
                if retry_after is not None and retry_after > self.max_retry_after:
                    response.close()
                    raise self._error(status, code, message, request_id, url, retry_after)
                wait = self._wait(attempt, retry_after)
                self._log_retry(method, url, f"HTTP {status} {code or ''}".strip(), attempt, wait)
                response.close()
                self.sleep(wait)
                attempt += 1
                continue
            retry_after = _retry_after(response)
            response.close()
            raise self._error(status, code, message, request_id, url, retry_after,
                              authenticated=authenticated, retries=attempt)

    def _fast_get(self, url, headers):
        """A streamed GET of a pre-authenticated URL (a file download) straight through the
        session's urllib3 connection pool, as requests would send it (same pool, TLS
        verification, default headers and timeout), without requests' per-request preparation,
        which costs about as much CPU as the urllib3 request itself (~0.6 ms a file). None when
        the session is not the plain one build_session() makes (then requests sends it), or for a
        redirect (requests follows it)."""
        session = self.session
        adapter = session.get_adapter(url)
        if type(adapter) is not HTTPAdapter or session.proxies or session.cert:
            return None
        prepared = requests.PreparedRequest()
        prepared.method, prepared.url = "GET", url
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        send_headers = dict(session.headers)
        send_headers.update(headers)
        timeout = getattr(session, "timeout", TIMEOUT)
        try:
            pool = adapter.get_connection_with_tls_context(prepared, session.verify)
            raw = pool.urlopen("GET", target, headers=send_headers, redirect=False,
                               assert_same_host=False, preload_content=False,
                               decode_content=False, retries=False,
                               timeout=urllib3.Timeout(connect=timeout[0], read=timeout[1]))
        except urllib3.exceptions.SSLError as exc:
            raise requests.exceptions.SSLError(exc) from exc
        except urllib3.exceptions.ConnectTimeoutError as exc:
            raise requests.exceptions.ConnectTimeout(exc) from exc
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise requests.exceptions.ReadTimeout(exc) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise requests.ConnectionError(exc) from exc
        if 300 <= raw.status < 400 and raw.headers.get("Location"):
            raw.close()
            return None
        response = requests.Response()
        response.status_code = raw.status
        response.headers = CaseInsensitiveDict(raw.headers)
        response.raw = raw
        response.reason = raw.reason
        response.url = url
        response.encoding = requests.utils.get_encoding_from_headers(response.headers)
        response.request = prepared
        response.connection = adapter
        return response

    def _note_throttle(self, retry_after):
        if retry_after is None or retry_after > self.max_retry_after:
            return
        until = time.monotonic() + retry_after
        with self._resume_lock:
            self._resume_at = max(self._resume_at, until)

    def _wait_for_throttle(self):
        remaining = self._resume_at - time.monotonic()
        if remaining > 0:
            self.sleep(remaining)

    def _wait(self, attempt, retry_after):
        if retry_after is not None:
            return retry_after
        return self._backoff(attempt)

    def _backoff(self, attempt):
        ceiling = min(self.max_backoff, self.backoff_base * (2 ** attempt))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _log_retry(self, method, url, why, attempt, wait=None):
        log.info("%s %s: %s; retry %d of %d%s", method, _safe_url(url), why, attempt + 1,
                 self.max_retries, f" in {wait:.2f} s" if wait is not None else "")

    def _error(self, status, code, message, request_id, url, retry_after=None, *,
               authenticated=True, retries=0):
        said = f"{code}: {message}" if code and message else (code or message or f"HTTP {status}")
        fields = {"code": code, "message": message, "status": status, "request_id": request_id}
        where = _safe_url(url)
        if status in THROTTLE_STATUSES:
            return Throttled(f"Microsoft Graph is still throttling Kodo after {retries} retries "
                             f"({said}). Try again later.", retry_after=retry_after, **fields)
        if status in (500, 502):
            return GraphUnavailable(f"Microsoft Graph kept failing after {retries} retries "
                                    f"({said}). Try again later.", **fields)
        if status == 401 and not authenticated:
            return DownloadUrlExpired(f"The download link has expired ({said}).", **fields)
        if status == 401:
            return AuthenticationFailed(f"Microsoft Graph refused Kodo's access token ({said}). "
                                        "Check the app registration and its admin consent.",
                                        **fields)
        if status == 403:
            return PermissionDenied(f"Microsoft Graph denied access to {where} ({said}). Check "
                                    "that the app has the application permissions Kodo needs, "
                                    "with admin consent.", **fields)
        if status == 404 or (status == 400 and "mysite" in (message or "").lower()):
            # 400 "Unable to retrieve user's mysite URL.": the user has no OneDrive
            return NotFound(f"Not found in Microsoft Graph: {where} ({said}).", **fields)
        if status == 410:
            return ResyncRequired(f"The delta link is no longer valid ({said}); a full "
                                  "enumeration is needed.", **fields)
        return GraphError(f"Microsoft Graph answered HTTP {status} for {where} ({said}).",
                          **fields)


def _error_fields(body, response):
    code = message = request_id = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            code, message = error.get("code"), error.get("message")
            inner = error.get("innerError") or error.get("innererror") or {}
            if isinstance(inner, dict):
                request_id = inner.get("request-id")
        elif isinstance(error, str):
            code, message = error, _first_line(body.get("error_description"))
    if request_id is None:
        request_id = response.headers.get("request-id") or response.headers.get("x-ms-request-id")
    if code is None and message is None:
        message = (response.reason or "").strip() or None
    return code, message, request_id


def _batch_error_fields(body, headers):
    code = message = request_id = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code, message = error.get("code"), error.get("message")
        inner = error.get("innerError") or error.get("innererror") or {}
        if isinstance(inner, dict):
            request_id = inner.get("request-id")
    return code, message, request_id or headers.get("request-id")


def _rewinder(data):
    """A function that makes `data` sendable again and says whether it could."""
    if data is None or isinstance(data, (bytes, bytearray, str, dict, list, tuple)):
        return lambda: True
    if hasattr(data, "seek") and hasattr(data, "tell"):
        start = data.tell()

        def rewind():
            data.seek(start)
            return True
        return rewind
    return lambda: False  # a generator: it cannot be sent twice


def _token_claims(token: str) -> dict:
    """The JWT payload, not verified (Graph verifies it; Kodo only reads the roles)."""
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
