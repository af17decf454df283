"""HTTP for Graph and sign-in: sessions with timeouts, CA bundles, and reading error answers."""

import atexit
import hashlib
import json
import os
import ssl
import tempfile
import threading
import time
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from ..clouds import Endpoints
from .errors import GraphUnavailable

TIMEOUT = (10, 60)  # connect, read (seconds)


POOL_SIZE = 32  # connections per host: parallel downloads share one client


def _version():
    try:
        from importlib.metadata import version

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


def first_line(text):
    return (text or "").strip().splitlines()[0].strip() if (text or "").strip() else ""


def retry_after_of(response):
    return parse_retry_after(response.headers.get("Retry-After") if response is not None
                              else None)


def parse_retry_after(value):
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
        stack.extend([e.__cause__, e.__context__, *[a for a in getattr(e, "args", ())
                                                    if isinstance(a, BaseException)]])
        reason = getattr(e, "reason", None)
        if isinstance(reason, BaseException):
            stack.append(reason)
    return False


def tls_error(host, exc):
    if is_cert_verification_error(exc):
        return GraphUnavailable(
            f"The TLS certificate of {urlsplit(host).netloc or host} is not trusted. For a custom "
            "cloud, give the CA certificate that signed it in the configuration.",
            code="tlsCertificateNotTrusted")
    return GraphUnavailable(f"A secure connection to {urlsplit(host).netloc or host} failed: {exc}",
                            code="tlsError")


TRANSIENT_EXCEPTIONS = (requests.ConnectionError, requests.Timeout,
                         requests.exceptions.ChunkedEncodingError,
                         requests.exceptions.ContentDecodingError)
