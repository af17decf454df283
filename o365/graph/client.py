"""GraphClient: requests with retries, paging, JSON batches and typed errors.

Retries follow Microsoft's throttling guidance: 429/503/504 wait for Retry-After (exponential
backoff with jitter when it is absent), 500/502/509 and dropped connections back off too; 401
refreshes the token once. One RetryRule decides "again? after how long?" for every request, batch
answer and token request. What cannot be retried becomes a typed GraphError carrying Microsoft's
code, message, HTTP status and request-id.

Many small reads go in JSON batches (POST $batch, 20 requests each; batch() and get_many()):
each answer is retried and typed like a direct request's, and while Graph has asked this client
to wait (Retry-After), its other batches wait too.
"""

import json as jsonlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import requests
import urllib3
from requests.structures import CaseInsensitiveDict

from ..clouds import Endpoints
from . import transport
from .errors import (
    AuthenticationFailed,
    DownloadUrlExpired,
    GraphError,
    GraphUnavailable,
    NotFound,
    PermissionDenied,
    ResyncRequired,
    Throttled,
)
from .tokens import Credentials, TransientTokenError, connection_for, token_claims
from .transport import (
    TIMEOUT,
    TRANSIENT_EXCEPTIONS,
    first_line,
    is_cert_verification_error,
    json_or_none,
    parse_retry_after,
    retry_after_of,
    safe_url,
    tls_error,
)

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504, 509})


THROTTLE_STATUSES = frozenset({429, 503, 504, 509})


NEVER_RETRY_CODES = frozenset({"pathistoolong"})


MAX_RETRY_AFTER = 300.0  # a longer Retry-After is the caller's to schedule (Throttled.retry_after)


BATCH_LIMIT = 20  # requests in one JSON batch (Graph refuses more)


@dataclass(frozen=True)
class RetryRule:
    """The client's one answer to "send it again? after how long?" (Graph requests, the requests
    of a JSON batch, downloads and token requests all ask it)."""

    max_retries: int = 6
    backoff_base: float = 1.0
    max_backoff: float = 60
    max_retry_after: float = MAX_RETRY_AFTER

    def wait(
        self,
        attempt: int,
        *,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> float | None:
        """Seconds to wait before sending again after failure number `attempt` (0 for the first
        send), or None: give up. With `status`, an HTTP answer of Graph or a download host:
        retried when it is in RETRY_STATUSES (unless its code is in NEVER_RETRY_CODES) and its
        Retry-After, if any, is at most max_retry_after. Without, a failure the caller already
        judged transient (a dropped connection, a TLS error, a sign-in service failing): retried,
        after its Retry-After if it had one. The wait is the Retry-After, else exponential
        backoff with jitter."""
        if attempt >= self.max_retries:
            return None
        if status is not None:
            if status not in RETRY_STATUSES or (code or "").lower() in NEVER_RETRY_CODES:
                return None
            if retry_after is not None and retry_after > self.max_retry_after:
                return None  # the caller's to schedule (Throttled.retry_after)
        if retry_after is not None:
            return retry_after
        ceiling = min(self.max_backoff, self.backoff_base * (2**attempt))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


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


class GraphClient:
    """One configuration's door to Microsoft Graph. Thread-safe: parallel downloads may share
    one client. `sleep` is injectable so tests need not wait.

    Every request (token, Graph, download) has `timeout`, a (connect, read) pair of seconds. With
    a `deadline` (a time.monotonic() value) no request or retry wait goes past it: the client
    gives up with GraphUnavailable(code="deadlineExceeded") instead."""

    def __init__(
        self,
        credentials: Credentials,
        endpoints: Endpoints,
        *,
        cache_key: str,
        max_retries: int = 6,
        backoff_base: float = 1.0,
        max_backoff: float = 60,
        max_retry_after: float = MAX_RETRY_AFTER,
        sleep: Callable[[float], None] = time.sleep,
        shared_session: bool = False,
        timeout: tuple[float, float] | None = None,
        deadline: float | None = None,
        shared_throttle=None,
    ):
        self.credentials = credentials
        self.timeout = tuple(timeout) if timeout else TIMEOUT
        self.deadline = deadline
        self.endpoints = endpoints
        self.retry = RetryRule(max_retries, backoff_base, max_backoff, max_retry_after)
        self.sleep = sleep
        self._connection = connection_for(cache_key, credentials, endpoints)
        # shared_session: reuse the configuration's process-wide session (its open connections),
        # which close() then leaves open; otherwise a session of this client's own.
        self._owns_session = not shared_session
        self.session = (
            self._connection.shared_session()
            if shared_session
            else transport.build_session(endpoints)
        )
        graph = urlsplit(endpoints.graph_base)
        self._graph_origin = (graph.scheme, graph.netloc.lower())
        # monotonic time before which batches wait: Graph's last Retry-After to this client
        # (threads sending batches while one is throttled would only be throttled again)
        self._resume_at = 0.0
        self._resume_lock = threading.Lock()
        # the same window shared with the other processes of this app and tenant (o365.throttle)
        self.shared_throttle = shared_throttle

    def __repr__(self):
        return f"GraphClient({self.credentials!r}, {self.endpoints!r})"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        if self._owns_session:
            self.session.close()

    def token(self) -> str:
        """An access token for Graph, from the shared cache when still valid."""
        attempt = 0
        host = self.endpoints.authority_host
        while True:
            try:
                return self._connection.acquire(timeout=self._request_timeout(host))
            except TransientTokenError as exc:
                self._check_deadline(host)
                wait = self.retry.wait(attempt, retry_after=exc.retry_after)
                if wait is None:
                    raise self._token_gave_up(exc) from None
                log.warning("Token request to %s failed: %s; retrying in %.1f s", host, exc, wait)
                self._pause(wait, host)
                self._connection.before_retry()
                attempt += 1

    def _token_gave_up(self, exc):
        host = urlsplit(self.endpoints.authority_host).netloc
        if exc.status in THROTTLE_STATUSES:
            return Throttled(
                f"Microsoft's sign-in service ({host}) is still throttling Kodo after "
                f"{self.retry.max_retries} retries. Try again later.",
                code=exc.code,
                message=exc.message,
                status=exc.status,
                retry_after=exc.retry_after,
            )
        return GraphUnavailable(
            f"Microsoft's sign-in service ({host}) could not be reached after "
            f"{self.retry.max_retries} retries ({exc}). Try again later.",
            code=exc.code,
            message=exc.message,
            status=exc.status,
        )

    def roles(self) -> list[str]:
        """The application permissions granted to the app (the token's `roles` claim)."""
        return list(token_claims(self.token()).get("roles") or [])

    def get(self, path_or_url: str, params: dict | None = None) -> dict:
        """GET a Graph resource and return its JSON."""
        _, payload = self._send("GET", path_or_url, params=params, want_json=True)
        return payload

    def batch(
        self, requests: list[dict], *, raise_errors: bool = False
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
            prepared.append(
                {
                    **request,
                    "id": request_id,
                    "method": request.get("method", "GET"),
                    "url": self._batch_url(request["url"]),
                }
            )
        answers = {}
        for start in range(0, len(prepared), BATCH_LIMIT):
            answers.update(self._batch_chunk(prepared[start : start + BATCH_LIMIT]))
        if raise_errors:
            for request in prepared:
                answers[request["id"]].json()
        return answers

    def get_many(
        self, paths: list[str], params: dict | None = None, *, raise_errors: bool = False
    ) -> dict[str, BatchResponse]:
        """GET each path (with the same query `params`) in JSON batches; answers by path."""
        query = f"?{urlencode(params, safe='$,')}" if params else ""
        unique = list(dict.fromkeys(paths))
        answers = self.batch(
            [
                {"id": str(n), "method": "GET", "url": f"{path}{query}"}
                for n, path in enumerate(unique)
            ],
            raise_errors=raise_errors,
        )
        return {path: answers[str(n)] for n, path in enumerate(unique)}

    def _batch_url(self, path_or_url):
        if path_or_url.startswith(("https://", "http://")):
            base = self.endpoints.graph_base.rstrip("/")
            if not path_or_url.lower().startswith(base.lower() + "/"):
                raise ValueError(f"A batch holds Graph requests only, not {safe_url(path_or_url)}.")
            path_or_url = path_or_url[len(base) :]
        return "/" + path_or_url.lstrip("/")

    def _batch_chunk(self, chunk):
        pending = {request["id"]: request for request in chunk}
        answers = {}
        attempt = 0
        refreshed = False
        while pending:
            _, payload = self._send(
                "POST",
                "$batch",
                json={"requests": list(pending.values())},
                headers={"Accept": "application/json"},
                want_json=True,
            )
            received = {}
            for item in (payload or {}).get("responses") or ():
                if isinstance(item, dict) and str(item.get("id")) in pending:
                    received[str(item["id"])] = item
            again, waits, unauthorized = {}, [], False
            for request_id, request in pending.items():
                item = received.get(request_id) or {
                    "status": 502,
                    "body": {
                        "error": {
                            "code": "batchAnswerMissing",
                            "message": "The batch's answer lacked this request.",
                        }
                    },
                }
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
                retry_after = parse_retry_after(headers.get("Retry-After"))
                if status in THROTTLE_STATUSES:
                    self._note_throttle(retry_after)
                if status == 401 and not refreshed:
                    again[request_id] = request
                    unauthorized = True
                    continue
                wait = self.retry.wait(attempt, status=status, code=code, retry_after=retry_after)
                if wait is not None:
                    again[request_id] = request
                    waits.append(wait)
                    continue
                url = f"{self.endpoints.graph_base}{request['url']}"
                answers[request_id] = BatchResponse(
                    request_id,
                    status,
                    headers,
                    body,
                    self._error(
                        status, code, message, sub_request_id, url, retry_after, retries=attempt
                    ),
                )
            if unauthorized:  # a fresh token, once
                self._connection.drop_token(self._connection.last_token)
                refreshed = True
            if waits:
                wait = max(waits)
                log.info(
                    "POST $batch: %d of %d requests throttled or failed; retry %d of %d in %.2f s",
                    len(again),
                    len(pending),
                    attempt + 1,
                    self.retry.max_retries,
                    wait,
                )
                self._pause(wait, self.endpoints.graph_base)
                attempt += 1
            pending = again
        return answers

    def iter_pages(self, path_or_url: str, params: dict | None = None) -> Iterator[dict]:
        """Each page of a collection, following @odata.nextLink (an opaque URL) to the end. The
        last page carries @odata.deltaLink for delta queries."""
        url: str | None = path_or_url
        page_params = params
        while url:
            page = self.get(url, page_params)
            yield page
            url, page_params = page.get("@odata.nextLink"), None

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: dict | None = None,
        stream: bool = False,
        headers: dict | None = None,
        json: object = None,
        data: object = None,
        allow_redirects: bool = True,
        authenticated: bool = True,
    ) -> requests.Response:
        """Any request, with the retries and error mapping; the response is successful (2xx,
        or 3xx when redirects are not followed). With authenticated=False no token is sent
        (pre-authenticated download and upload URLs). A streamed body is the caller's to read
        and close; a failure while reading it is not retried here."""
        response, _ = self._send(
            method,
            path_or_url,
            params=params,
            stream=stream,
            headers=headers,
            json=json,
            data=data,
            allow_redirects=allow_redirects,
            authenticated=authenticated,
        )
        return response

    def _url(self, path_or_url, authenticated):
        if path_or_url.startswith(("https://", "http://")):
            url = path_or_url
            parts = urlsplit(url)
            if authenticated and (parts.scheme, parts.netloc.lower()) != self._graph_origin:
                raise ValueError(
                    f"Refusing to send Kodo's Graph token to {parts.netloc}: only "
                    f"{self._graph_origin[1]} gets it (use authenticated=False)."
                )
            return url
        return f"{self.endpoints.graph_base}/{path_or_url.lstrip('/')}"

    def _send(
        self,
        method,
        path_or_url,
        *,
        params=None,
        stream=False,
        headers=None,
        json=None,
        data=None,
        allow_redirects=True,
        authenticated=True,
        want_json=False,
    ):
        url = self._url(path_or_url, authenticated)
        rewind = _rewinder(data)
        refreshed = False
        attempt = 0
        while True:
            send_headers = dict(headers or {})
            token = None
            # Microsoft throttles an app, not a request: while it has asked any thread of this
            # client to wait (Graph, or a download host), every request, a retry too, waits, or
            # it would be throttled again and extend the wait for all.
            self._wait_for_throttle(url)
            if authenticated:
                token = self.token()
                send_headers["Authorization"] = f"Bearer {token}"
            started = time.monotonic()
            timeout = self._request_timeout(url)
            try:
                response = None
                if params is None and json is None and not authenticated:
                    if method == "GET" and stream and data is None:
                        response = self._fast_get(url, send_headers, timeout)
                    elif method == "PUT" and data is not None and hasattr(data, "__len__"):
                        # an upload session's fragment (o365/onedrive.py)
                        response = self._fast_send("PUT", url, send_headers, timeout, data)
                        if response is None:
                            rewind()  # a redirect: requests sends it all again
                elif params is None and json is not None and data is None and method == "POST":
                    # e.g. createUploadSession, once per restored file
                    body = jsonlib.dumps(json, allow_nan=False).encode()
                    headers_json = {**send_headers, "Content-Type": "application/json"}
                    response = self._fast_send("POST", url, headers_json, timeout, body)
                if response is None:
                    response = self.session.request(
                        method,
                        url,
                        params=params,
                        headers=send_headers,
                        json=json,
                        data=data,
                        stream=stream,
                        allow_redirects=allow_redirects,
                        timeout=timeout,
                    )
                payload = None
                if want_json and response.status_code < 300:
                    payload = response.json()
            except requests.exceptions.SSLError as exc:
                if is_cert_verification_error(exc):
                    raise tls_error(url, exc) from None
                self._check_deadline(url)
                wait = self.retry.wait(attempt)
                if wait is None or not rewind():
                    raise tls_error(url, exc) from None
                self._log_retry(method, url, f"TLS error {exc}", attempt)
                self._pause(wait, url)
                attempt += 1
                continue
            except (*TRANSIENT_EXCEPTIONS, requests.exceptions.JSONDecodeError) as exc:
                # JSONDecodeError: a 2xx whose body was cut short
                self._check_deadline(url)
                wait = self.retry.wait(attempt)
                if wait is None or not rewind():
                    raise GraphUnavailable(
                        f"Microsoft Graph could not be reached at {urlsplit(url).netloc} after "
                        f"{attempt} retries ({type(exc).__name__}). Try again later.",
                        code="connectionFailed",
                    ) from exc
                self._log_retry(method, url, type(exc).__name__, attempt)
                self._pause(wait, url)
                attempt += 1
                continue
            status = response.status_code
            log.debug(
                "%s %s -> %s in %.2f s", method, safe_url(url), status, time.monotonic() - started
            )
            if status < 400:
                return response, payload
            code, message, request_id = _error_fields(json_or_none(response), response)
            if status in THROTTLE_STATUSES:
                self._note_throttle(retry_after_of(response))
            if status == 401 and authenticated and not refreshed and rewind():
                response.close()
                self._connection.drop_token(token)
                refreshed = True
                continue
            retry_after = retry_after_of(response)
            wait = self.retry.wait(attempt, status=status, code=code, retry_after=retry_after)
            if wait is not None and rewind():
                self._log_retry(method, url, f"HTTP {status} {code or ''}".strip(), attempt, wait)
                response.close()
                self._pause(wait, url)
                attempt += 1
                continue
            response.close()
            raise self._error(
                status,
                code,
                message,
                request_id,
                url,
                retry_after,
                authenticated=authenticated,
                retries=attempt,
            )

    def _fast_send(self, method, url, headers, timeout, body):
        """A request with a body of known length through the pool (see _fast_get), its answer
        read here, so that an answer cut short is retried like any transient failure."""
        response = self._fast_get(url, headers, timeout, method, body)
        if response is not None:
            response.content  # noqa: B018 - reads and keeps the body
        return response

    def _fast_get(self, url, headers, timeout, method="GET", body=None):
        """A streamed GET of a pre-authenticated URL (a file download), or a request with a
        body of known length (an upload session's fragment; a JSON POST to Graph, e.g.
        createUploadSession), straight through the session's urllib3 connection pool, as
        requests would send it (same pool, TLS verification, default headers and timeout),
        without requests' per-request preparation, which costs about as much CPU as the urllib3
        request itself (~0.6 ms a file). None when the session is not the plain one
        build_session() makes (then requests sends it), or for a redirect (requests follows
        it)."""
        session = self.session
        adapter = session.get_adapter(url)
        if type(adapter) is not transport.GuardedAdapter or session.proxies or session.cert:
            return None
        prepared = requests.PreparedRequest()
        prepared.method, prepared.url = method, url
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        send_headers = dict(session.headers)
        send_headers.update(headers)
        if body is not None:
            send_headers["Content-Length"] = str(len(body))
        try:
            pool = adapter.get_connection_with_tls_context(prepared, session.verify)
            raw = pool.urlopen(
                method,
                target,
                body=body,
                headers=send_headers,
                redirect=False,
                assert_same_host=False,
                preload_content=False,
                decode_content=False,
                retries=False,
                timeout=urllib3.Timeout(connect=timeout[0], read=timeout[1]),
            )
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
        if retry_after is None or retry_after > self.retry.max_retry_after:
            return
        until = time.monotonic() + retry_after
        with self._resume_lock:
            self._resume_at = max(self._resume_at, until)
        if self.shared_throttle is not None:
            self.shared_throttle.note(retry_after)

    def _wait_for_throttle(self, url):
        remaining = self._resume_at - time.monotonic()
        if self.shared_throttle is not None:
            remaining = max(remaining, self.shared_throttle.remaining())
        if remaining > 0:
            self._pause(remaining, url)

    def _request_timeout(self, url):
        """(connect, read) seconds for the next request: the client's, cut to what is left
        before its deadline."""
        if self.deadline is None:
            return self.timeout
        left = self._check_deadline(url)
        return (min(self.timeout[0], left), min(self.timeout[1], left))

    def _check_deadline(self, url):
        """The seconds left before the deadline (None without one); past it, give up."""
        if self.deadline is None:
            return None
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise GraphUnavailable(
                f"{urlsplit(url).netloc or url} gave no answer in the time allowed.",
                code="deadlineExceeded",
            )
        return left

    def _pause(self, seconds, url):
        """Wait before a retry, unless the wait would end past the deadline: then give up."""
        left = self._check_deadline(url)
        if left is not None and seconds >= left:
            raise GraphUnavailable(
                f"{urlsplit(url).netloc or url} gave no answer in the time allowed.",
                code="deadlineExceeded",
            )
        self.sleep(seconds)

    def _log_retry(self, method, url, why, attempt, wait=None):
        log.info(
            "%s %s: %s; retry %d of %d%s",
            method,
            safe_url(url),
            why,
            attempt + 1,
            self.retry.max_retries,
            f" in {wait:.2f} s" if wait is not None else "",
        )

    def _error(
        self,
        status,
        code,
        message,
        request_id,
        url,
        retry_after=None,
        *,
        authenticated=True,
        retries=0,
    ):
        said = f"{code}: {message}" if code and message else (code or message or f"HTTP {status}")
        fields = {"code": code, "message": message, "status": status, "request_id": request_id}
        where = safe_url(url)
        if status in THROTTLE_STATUSES:
            return Throttled(
                f"Microsoft Graph is still throttling Kodo after {retries} retries "
                f"({said}). Try again later.",
                retry_after=retry_after,
                **fields,
            )
        if status in (500, 502):
            return GraphUnavailable(
                f"Microsoft Graph kept failing after {retries} retries ({said}). Try again later.",
                **fields,
            )
        if status == 401 and not authenticated:
            return DownloadUrlExpired(f"The download link has expired ({said}).", **fields)
        if status == 401:
            return AuthenticationFailed(
                f"Microsoft Graph refused Kodo's access token ({said}). "
                "Check the app registration and its admin consent.",
                **fields,
            )
        if status == 403:
            return PermissionDenied(
                f"Microsoft Graph denied access to {where} ({said}). Check "
                "that the app has the application permissions Kodo needs, "
                "with admin consent.",
                **fields,
            )
        if status == 404 or (status == 400 and "mysite" in (message or "").lower()):
            # 400 "Unable to retrieve user's mysite URL.": the user has no OneDrive
            return NotFound(f"Not found in Microsoft Graph: {where} ({said}).", **fields)
        if status == 410:
            return ResyncRequired(
                f"The delta link is no longer valid ({said}); a full enumeration is needed.",
                **fields,
            )
        return GraphError(f"Microsoft Graph answered HTTP {status} for {where} ({said}).", **fields)


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
            code, message = error, first_line(body.get("error_description"))
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
