"""Tokens from Microsoft's identity platform (MSAL client credentials: a secret or a
certificate). Every client of one configuration in a process shares one MSAL application and its
token cache, so a worker asks Microsoft for a token about once an hour, whatever the number of
tasks."""

import base64
import hashlib
import hmac
import json
import os
import threading
import time
import uuid
from dataclasses import dataclass

import msal
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import pkcs12
from msal.exceptions import MsalServiceError

from ..clouds import Endpoints
from . import transport
from .errors import AuthenticationFailed
from .transport import first_line, json_or_none, retry_after_of, tls_error

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
        return (
            f"Credentials(tenant_id={self.tenant_id!r}, client_id={self.client_id!r}, "
            f"client_secret={secret}, pfx={pfx}, pfx_password={password})"
        )

    __str__ = __repr__

    def fingerprint(self) -> str:
        """A digest of every field, keyed per process: fit for cache keys, useless to guess
        secrets from."""
        mac = hmac.new(_PROCESS_KEY, digestmod=hashlib.sha256)
        for part in (
            self.tenant_id,
            self.client_id,
            self.client_secret or "",
            self.pfx_password or "",
        ):
            mac.update(part.encode() + b"\0")
        mac.update(self.pfx or b"")
        return mac.hexdigest()[:32]

    def scrub(self, text: str) -> str:
        for secret in (self.client_secret, self.pfx_password):
            if secret and len(secret) >= 4:
                text = text.replace(secret, "***")
        return text


class TransientTokenError(Exception):
    def __init__(
        self, detail, *, status=None, retry_after=None, code=None, message=None, request_id=None
    ):
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

    def set_timeout(self, timeout):
        """The (connect, read) timeout of this thread's next requests: the client's, cut to what
        is left of its deadline (MSAL itself passes none)."""
        self._local.timeout = timeout

    def _with_timeout(self, kwargs):
        timeout = getattr(self._local, "timeout", None)
        if kwargs.get("timeout") is None and timeout is not None:
            kwargs["timeout"] = timeout
        return kwargs

    def get(self, url, **kwargs):
        return self._keep(self.session.get(url, **self._with_timeout(kwargs)))

    def post(self, url, **kwargs):
        return self._keep(self.session.post(url, **self._with_timeout(kwargs)))

    def close(self):
        self.session.close()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class _CertificateAssertion:
    """Signs a fresh client assertion (RFC 7523, PS256 with x5t#S256) for every token request,
    from a PFX held in memory: the private key never touches the disk, and no assertion is
    replayed (MSAL's own would be reused for minutes)."""

    def __init__(self, client_id, pfx, password):
        try:
            key, cert, _ = pkcs12.load_key_and_certificates(
                pfx, password.encode() if password else None
            )
        except ValueError:
            raise AuthenticationFailed(
                "The certificate password does not open this PFX file (or the file is not a PFX). "
                "Check the certificate file and its password in the configuration.",
                code="invalid_certificate",
            ) from None
        if key is None or cert is None:
            raise AuthenticationFailed(
                "This PFX file lacks the private key or the certificate. Export the certificate "
                "again with its private key.",
                code="invalid_certificate",
            )
        self.client_id = client_id
        self._key = key
        der = cert.public_bytes(serialization.Encoding.DER)
        # MSAL's form (padding kept), which Entra ID accepts
        self._x5t_s256 = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).decode()
        # the thumbprint Entra ID shows for the certificate
        self.thumbprint = cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303
        self.not_valid_after = cert.not_valid_after_utc

    def __call__(self, context):
        now = int(time.time())
        header = {"alg": "PS256", "typ": "JWT", "x5t#S256": self._x5t_s256}
        claims = {
            "aud": context["token_endpoint"],
            "iss": self.client_id,
            "sub": self.client_id,
            "jti": str(uuid.uuid4()),
            "iat": now,
            "nbf": now,
            "exp": now + 600,
        }
        signing_input = (
            _b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + _b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        signature = self._key.sign(
            signing_input.encode(),
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH),
            hashes.SHA256(),
        )
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
    "invalid_tenant": "The tenant was not found. Check the tenant ID (Directory ID) and the cloud.",
}


def _aadsts(description):
    text = description or ""
    start = text.find("AADSTS")
    if start < 0:
        return None
    digits = ""
    for ch in text[start + 6 :]:
        if not ch.isdigit():
            break
        digits += ch
    return digits or None


class _Connection:
    """What every client of one configuration shares in a process: the MSAL application, its
    token cache, and the session MSAL talks through."""

    def __init__(self, credentials: Credentials, endpoints: Endpoints):
        self.credentials = credentials
        self.endpoints = endpoints
        self.lock = threading.Lock()
        self.session = transport.build_session(endpoints, pool_size=4)
        self.http = _RecordingHttpClient(self.session)
        self.http_cache: dict = {}  # MSAL's replay of recent errors; cleared before our own retries
        self.token_cache = msal.TokenCache()
        self.app: msal.ConfidentialClientApplication | None = None
        self.last_token: str | None = None
        self._shared_session: requests.Session | None = None

    def shared_session(self) -> requests.Session:
        """One session (connection pool) for every client of this configuration in the process
        that asks for it: runs after the first reuse its kept-alive TLS connections to Graph and
        to the download host instead of opening new ones. Sessions hold no tokens (each request
        carries its own), so sharing one between clients of one configuration is safe."""
        with self.lock:
            if self._shared_session is None:
                self._shared_session = transport.build_session(self.endpoints)
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
                self.credentials.client_id,
                client_credential=credential,
                authority=authority,
                http_client=self.http,
                http_cache=self.http_cache,
                instance_discovery=False,
                token_cache=self.token_cache,
            )
        except ValueError as exc:
            raise self._discovery_failed(authority, exc) from None
        except MsalServiceError as exc:
            raise self._transient(f"the sign-in service at {authority} failed", exc) from None

    def _discovery_failed(self, authority, exc):
        """MSAL raises ValueError when OpenID discovery answers 4xx (unknown tenant) or
        something that is not a sign-in service."""
        response = self.http.last
        status = response.status_code if response is not None else None
        body = json_or_none(response)
        if isinstance(body, dict) and body.get("error"):
            return self._sign_in_refused(body, status, response)
        return AuthenticationFailed(
            f"Kodo could not read the sign-in configuration of tenant {self.credentials.tenant_id} "
            f"at {authority} (HTTP {status or 'no answer'}). Check the tenant ID and the cloud.",
            code="invalid_authority",
            status=status,
            message=self.credentials.scrub(str(exc)),
        )

    def _sign_in_refused(self, body, status, response=None):
        code = body.get("error")
        description = self.credentials.scrub(first_line(body.get("error_description")))
        number = _aadsts(description)
        if number is None and body.get("error_codes"):
            number = str(body["error_codes"][0])
        advice = (
            _SIGN_IN_ADVICE.get(number or "")
            or _SIGN_IN_ADVICE.get(code or "")
            or ("Microsoft refused to sign Kodo in.")
        )
        request_id = (
            body.get("trace_id")
            or body.get("correlation_id")
            or (response.headers.get("x-ms-request-id") if response is not None else None)
        )
        return AuthenticationFailed(
            f"{advice} (Microsoft said: {description or code})",
            code=code,
            message=description,
            status=status,
            request_id=request_id,
            aadsts=f"AADSTS{number}" if number else None,
        )

    def _transient(self, what, exc=None, body=None):
        response = self.http.last
        status = response.status_code if response is not None else None
        body = body if body is not None else json_or_none(response)
        code = message = None
        if isinstance(body, dict):
            error = body.get("error")
            if isinstance(error, dict):
                code, message = error.get("code"), error.get("message")
            else:
                code, message = error, first_line(body.get("error_description"))
        detail = f"{what} (HTTP {status})" if status else f"{what}: {exc}"
        return TransientTokenError(
            detail, status=status, retry_after=retry_after_of(response), code=code, message=message
        )

    def acquire(self, timeout=None) -> str:
        """A valid token (MSAL's cached one while it has more than 5 minutes left). `timeout`:
        (connect, read) seconds for each request to the sign-in service."""
        with self.lock:
            self.http.set_timeout(timeout)
            try:
                if self.app is None:
                    self.app = self._build_app()
                self.http.forget()
                result = self.app.acquire_token_for_client(scopes=[self.endpoints.scope])
            except MsalServiceError as exc:
                raise self._transient("the token service failed", exc) from None
            except requests.exceptions.SSLError as exc:
                raise tls_error(self.endpoints.authority_host, exc) from None
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


def connection_for(cache_key: str, credentials: Credentials, endpoints: Endpoints) -> _Connection:
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


def token_claims(token: str) -> dict:
    """The JWT payload, not verified (Graph verifies it; Kodo only reads the roles)."""
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
