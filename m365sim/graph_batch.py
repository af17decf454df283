"""Graph's JSON batching: POST /$batch runs each of its requests through GraphApp.execute as if
sent alone (https://learn.microsoft.com/graph/json-batching)."""

import base64
import io
import json
import time
import uuid
from urllib.parse import parse_qs, urlsplit

from .faults import BODY_KINDS, STATUS_KINDS
from .http_base import ERROR_FOR_STATUS, Reply, graph_error, iso

MAX_BATCH = 20  # requests in one JSON batch (Graph's limit)


class SubRequest:
    """What a handler reads of a request, for one request of a JSON batch: the batch's own
    Authorization (and client-request-id), the sub-request's headers and body."""

    def __init__(self, outer, headers, body):
        self.headers = _Headers((k.lower(), v) for k, v in headers.items())
        for name in ("authorization", "client-request-id"):
            value = outer.headers.get(name)
            if value is not None:
                self.headers[name] = value
        self.headers["content-length"] = str(len(body))
        self.rfile = io.BytesIO(body)


class _Headers(dict):
    """Lower-case keys, looked up whatever the case (as http.server's headers are)."""

    def get(self, key, default=None):
        return super().get(key.lower(), default)


class BatchMixin:
    """GraphApp's /$batch. Mixed into GraphApp; uses BaseApp's self.sim, self.running and
    helpers."""

    def batch(self, h, method, headers):
        """POST /$batch: up to MAX_BATCH requests, each through execute() as if sent alone
        (same routing, roles, faults and counts), answered together in one 200."""
        self.stats.count("requests.batch")
        if method != "POST":
            raise graph_error(405, "Request_BadRequest", "Use POST to send a JSON batch.")
        payload = self.read_json(h)  # read first: the connection stays usable after an error
        _, app, _, challenge = self.authenticate(h)
        fault = self.sim.faults.decide(
            "batch", app.client_id, set(STATUS_KINDS) | set(BODY_KINDS) | {"revoke"}
        )
        if fault is not None and fault.kind == "revoke":
            self.sim.revoke_tokens(app.client_id)
            raise graph_error(
                401,
                "InvalidAuthenticationToken",
                "Continuous access evaluation resulted in challenge with result: "
                "InteractionRequired and code: TokenIssuedBeforeRevocationTimestamp",
                challenge,
            )
        if fault is not None and fault.kind in STATUS_KINDS:
            status = STATUS_KINDS[fault.kind]
            retry_after = fault.params.get("retry_after", 1 if status == 429 else None)
            extra = {"Retry-After": str(retry_after)} if retry_after is not None else {}
            raise graph_error(
                status,
                ERROR_FOR_STATUS[status],
                "Please retry again later." if status == 429 else "The service is unavailable.",
                extra,
            )
        requests = self._batch_requests(payload)
        self.stats.count("batch_subrequests", len(requests))
        statuses, responses = {}, []
        for sub in requests:
            failed = [d for d in sub.get("dependsOn") or () if statuses[d] >= 400]
            if failed:
                response = self._batch_error(
                    424, "FailedDependency", f"Request {failed[0]} that this one depends on failed."
                )
            else:
                response = self._batch_one(h, sub)
            response["id"] = sub["id"]
            statuses[sub["id"]] = response["status"]
            self.stats.count(f"status.{response['status']}")
            responses.append(response)
        # Graph answers in any order; the last request first keeps clients honest
        responses.reverse()
        self.send(h, 200, {"responses": responses}, headers=headers, fault=fault)

    @staticmethod
    def _batch_requests(payload):
        requests = payload.get("requests") if isinstance(payload, dict) else None
        if not isinstance(requests, list) or not requests:
            raise graph_error(400, "BadRequest", "Invalid batch payload format.")
        if len(requests) > MAX_BATCH:
            raise graph_error(400, "BadRequest", "Number of requests exceeds limit.")
        seen = set()
        for sub in requests:
            if not isinstance(sub, dict) or not all(
                isinstance(sub.get(k), str) and sub.get(k) for k in ("id", "method", "url")
            ):
                raise graph_error(
                    400,
                    "BadRequest",
                    "Invalid batch payload format: each request needs a string id, method and url.",
                )
            if sub["id"] in seen:
                raise graph_error(400, "BadRequest", "Request Id's must be unique.")
            depends = sub.get("dependsOn") or []
            if not isinstance(depends, list) or any(d not in seen for d in depends):
                raise graph_error(
                    400,
                    "BadRequest",
                    f"Request {sub['id']} depends on a request that does not come "
                    "before it in the batch.",
                )
            seen.add(sub["id"])
        return requests

    @staticmethod
    def _batch_error(status, code, message):
        return {
            "status": status,
            "headers": {"Content-Type": "application/json"},
            "body": {
                "error": {
                    "code": code,
                    "message": message,
                    "innerError": {"date": iso(time.time()), "request-id": str(uuid.uuid4())},
                }
            },
        }

    def _batch_one(self, h, sub):
        method, url = sub["method"].upper(), sub["url"]
        if url.startswith(("https://", "http://")) or url.lstrip("/").split("/")[0] in (
            "v1.0",
            "beta",
        ):
            return self._batch_error(
                400,
                "BadRequest",
                "Invalid request URL: give it relative to the version, as in /users.",
            )
        parts = urlsplit(url if url.startswith("/") else "/" + url)
        if parts.path == "/$batch":
            return self._batch_error(400, "BadRequest", "A batch cannot hold a batch.")
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        sub_headers = {str(k): str(v) for k, v in (sub.get("headers") or {}).items()}
        body = sub.get("body")
        if body is None:
            raw = b""
        elif (
            isinstance(body, str)
            and "json"
            not in sub_headers.get("Content-Type", sub_headers.get("content-type", "")).lower()
        ):
            raw = base64.b64decode(body)  # other content types travel base64-encoded
        else:
            raw = json.dumps(body).encode()
        try:
            result, _ = self.execute(
                SubRequest(h, sub_headers, raw), method, parts.path, query, body_faults=False
            )
            reply = result if isinstance(result, Reply) else Reply(200, result)
        except Reply as error:
            reply = error
        headers = dict(reply.headers)
        out = {"status": reply.status, "headers": headers}
        body = reply.body
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            body["error"].setdefault(
                "innerError", {"date": iso(time.time()), "request-id": str(uuid.uuid4())}
            )
        if isinstance(body, (dict, list)):
            headers.setdefault("Content-Type", "application/json")
            out["body"] = body
        elif body:
            headers.setdefault("Content-Type", "application/octet-stream")
            out["body"] = base64.b64encode(body).decode()
        return out
