"""HTTP for Graph and sign-in: sessions with timeouts, CA bundles, and reading error answers."""

import atexit
import hashlib
import ipaddress
import json
import os
import socket
import ssl
import tempfile
import threading
import time
from email.utils import parsedate_to_datetime
from importlib.metadata import version
from urllib.parse import urlsplit

import certifi
import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import _set_socket_options, allowed_gai_family
from urllib3.util.timeout import _DEFAULT_TIMEOUT

from ..clouds import Endpoints
from .errors import DestinationRefused, GraphUnavailable

TIMEOUT = (10, 60)  # connect, read (seconds)


POOL_SIZE = 32  # connections per host: parallel downloads share one client


def _version():
    try:
        return version("kodo")
    except Exception:
        return "0"


USER_AGENT = f"Kodo/{_version()} (+Microsoft 365 backup)"


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


# ----- where Kodo may connect (no server-side request forgery) -----------------------------
#
# Every request of a configuration (MSAL's token requests, Graph, downloads, uploads) goes through
# a session from build_session(), whose connections are made by _GuardedHTTPSConnection: https
# only, only to the hosts of the configuration's cloud, and -- unless the server administrator
# marked the cloud private -- only to public addresses. The address is checked after DNS
# resolution, and the socket connects to exactly the address checked (TLS still verifies the host
# name), so a name that resolves differently the second time (DNS rebinding) gains nothing.


def refused_address(address: str) -> bool:
    """Loopback, link-local, private, shared, unspecified, multicast, reserved: anything that is
    not a public unicast address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None and refused_address(str(embedded)):
            return True
    return not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_unspecified


def _refused(endpoints: Endpoints, where: str, why: str) -> DestinationRefused:
    cloud = f"the cloud {endpoints.name}" if endpoints.name else "this configuration's cloud"
    return DestinationRefused(
        f"Kodo did not connect to {where}: {why} of {cloud}.", code="destinationRefused"
    )


def check_destination(endpoints: Endpoints, scheme: str, host: str, port: int | None):
    """Raise DestinationRefused unless Kodo may send a request of this cloud to this place."""
    if endpoints.refusal:
        raise DestinationRefused(endpoints.refusal, code="cloudNotEnabled")
    host = (host or "").lower().strip("[]")
    port = port or (443 if scheme == "https" else 80)
    where = f"{host}:{port}" if port != 443 else host
    if scheme != "https":
        raise _refused(endpoints, f"{scheme}://{where}", "only https is allowed for the hosts")
    if not endpoints.allows_host(host, port):
        raise _refused(endpoints, where, "it is not a sign-in, Graph or download host")


def connect_checked(
    endpoints: Endpoints,
    host: str,
    port: int,
    timeout=_DEFAULT_TIMEOUT,
    source_address=None,
    socket_options=None,
) -> socket.socket:
    """urllib3's create_connection, but every resolved address is checked before it is used,
    and the socket connects to that very address."""
    check_destination(endpoints, "https", host, port)
    name = host.strip("[]")
    try:
        candidates = socket.getaddrinfo(name, port, allowed_gai_family(), socket.SOCK_STREAM)
    except UnicodeError:
        raise socket.gaierror(f"{host!r} is not a valid host name") from None
    allowed = [
        c for c in candidates if endpoints.private_network or not refused_address(str(c[4][0]))
    ]
    if candidates and not allowed:
        raise _refused(
            endpoints,
            f"{host}:{port}" if port != 443 else host,
            "it is on a loopback, link-local or private network, which is not "
            "allowed for the hosts",
        )
    error = None
    for family, socktype, proto, _, address in allowed:
        sock = None
        try:
            sock = socket.socket(family, socktype, proto)
            _set_socket_options(sock, socket_options)
            if timeout is not _DEFAULT_TIMEOUT:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(address)
            return sock
        except OSError as exc:
            error = exc
            if sock is not None:
                sock.close()
    if error is not None:
        raise error
    raise OSError("getaddrinfo returns an empty list")


class _GuardedHTTPSConnection(HTTPSConnection):
    endpoints: Endpoints  # set on the per-session subclass

    def _new_conn(self):
        try:
            sock = connect_checked(
                self.endpoints,
                self._dns_host,
                self.port,
                self.timeout,
                self.source_address,
                self.socket_options,
            )
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        except TimeoutError as exc:
            raise ConnectTimeoutError(
                self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
            ) from exc
        except OSError as exc:
            raise NewConnectionError(self, f"Failed to establish a new connection: {exc}") from exc
        return sock


class _RefusedHTTPConnection(HTTPConnection):
    endpoints: Endpoints

    def _new_conn(self):
        check_destination(self.endpoints, "http", self.host, self.port)
        raise AssertionError("unreachable: plain http is always refused")


class GuardedAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections can only reach the hosts of one cloud (see above)."""

    def __init__(self, endpoints: Endpoints, **kwargs):
        self.endpoints = endpoints
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        bound = {"endpoints": self.endpoints}
        https = type(
            "GuardedHTTPSConnectionPool",
            (HTTPSConnectionPool,),
            {"ConnectionCls": type("GuardedHTTPSConnection", (_GuardedHTTPSConnection,), bound)},
        )
        http = type(
            "RefusedHTTPConnectionPool",
            (HTTPConnectionPool,),
            {"ConnectionCls": type("RefusedHTTPConnection", (_RefusedHTTPConnection,), bound)},
        )
        self.poolmanager.pool_classes_by_scheme = {"https": https, "http": http}

    def send(self, request, *args, **kwargs):
        # refused before any pool or connection exists; connections check again (and the
        # addresses), which covers GraphClient's direct use of the pools
        parts = urlsplit(request.url)
        try:
            port = parts.port
        except ValueError:
            port = -1
        check_destination(self.endpoints, parts.scheme, parts.hostname or "", port)
        return super().send(request, *args, **kwargs)

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        raise DestinationRefused(
            "Kodo does not send Microsoft 365 requests through a proxy.", code="destinationRefused"
        )

    __attrs__ = [*HTTPAdapter.__attrs__, "endpoints"]


def build_session(endpoints: Endpoints, *, pool_size: int = POOL_SIZE) -> requests.Session:
    """A session that trusts exactly the cloud's CAs and connects only where the cloud allows
    (GuardedAdapter). trust_env is off: otherwise REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE from the
    environment replace `verify` (psf/requests#3829), and proxies would come from it."""
    session = _Session()
    session.trust_env = False
    if endpoints.ca_pem:
        session.verify = ca_bundle_path(endpoints.ca_pem)
    else:
        session.verify = certifi.where()
    session.headers["User-Agent"] = USER_AGENT
    adapter = GuardedAdapter(endpoints, pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def first_line(text):
    return (text or "").strip().splitlines()[0].strip() if (text or "").strip() else ""


def retry_after_of(response):
    return parse_retry_after(response.headers.get("Retry-After") if response is not None else None)


def parse_retry_after(value):
    """Seconds from a Retry-After header (seconds or an HTTP date), or None."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return max(0.0, seconds)


def json_or_none(response):
    if response is None:
        return None
    try:
        return json.loads(response.text)
    except (ValueError, TypeError):
        return None


def safe_url(url):
    """Scheme, host and path: query strings can hold pre-authentication tokens."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def is_cert_verification_error(exc):
    seen = set()
    stack = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(e):
            return True
        stack.extend(
            [
                e.__cause__,
                e.__context__,
                *[a for a in getattr(e, "args", ()) if isinstance(a, BaseException)],
            ]
        )
        reason = getattr(e, "reason", None)
        if isinstance(reason, BaseException):
            stack.append(reason)
    return False


def tls_error(host, exc):
    if is_cert_verification_error(exc):
        return GraphUnavailable(
            f"The TLS certificate of {urlsplit(host).netloc or host} is not trusted. For a custom "
            "cloud, the server administrator gives the CA certificate that signed it (Clouds).",
            code="tlsCertificateNotTrusted",
        )
    return GraphUnavailable(
        f"A secure connection to {urlsplit(host).netloc or host} failed: {exc}", code="tlsError"
    )


TRANSIENT_EXCEPTIONS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)
