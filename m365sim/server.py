"""The HTTPS servers: login + Graph on one port, the download/upload host on another, the
admin API on a third. Plain ThreadingHTTPServer over TLS, HTTP/1.1 keep-alive."""

import base64
import datetime
import hashlib
import hmac
import io
import json
import os
import secrets
import socket
import ssl
import struct
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

from . import certs, model
from .faults import BODY_KINDS, STATUS_KINDS
from .identity import ASSERTION_TYPE, GRAPH_APP_ID, GRAPH_RESOURCE, Identity, TokenError, b64url
from .model import DELETED, FOLDER, HARD_DELETED, MALWARE, PACKAGE

USER_ROLES = {
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
}
FILE_READ_ROLES = {"Files.Read.All", "Files.ReadWrite.All", "Sites.Read.All", "Sites.ReadWrite.All",
                   "Sites.FullControl.All"}
FILE_WRITE_ROLES = {"Files.ReadWrite.All", "Sites.ReadWrite.All", "Sites.FullControl.All"}
USER_DEFAULT_SELECT = [
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
]
USER_PROPERTIES = set(USER_DEFAULT_SELECT) | {
    "accountEnabled",
    "assignedLicenses",
    "usageLocation",
    "createdDateTime",
    "userType",
    "onPremisesSyncEnabled",
}
LICENSE = {"disabledPlans": [], "skuId": "c7df2760-2c81-4ef7-b578-5b5392b571df"}
DRIVE_KINDS = ("drive", "drive_delta", "item", "children", "content", "upload")
ERROR_FOR_STATUS = {429: "TooManyRequests", 500: "generalException", 502: "BadGateway",
                    503: "serviceNotAvailable", 504: "gatewayTimeout"}
DRIVE_QUOTA = 1 << 40
MAX_BATCH = 20  # requests in one JSON batch (Graph's limit)


def iso(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _opaque(text):
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _unopaque(token):
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None


class Aborted(Exception):
    """The connection was deliberately reset or cut; nothing more to send."""


class Reply(Exception):
    """Raised by handlers to answer at once."""

    def __init__(self, status, body=None, headers=None):
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


def graph_error(status, code, message, headers=None):
    return Reply(status, {"error": {"code": code, "message": message}}, headers)


# ----- HTTP plumbing -----------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "m365sim"
    sys_version = ""
    timeout = 300

    def setup(self):
        self.request.settimeout(30)
        self.request.do_handshake()
        super().setup()

    def log_message(self, format, *args):
        pass

    def _dispatch(self, method):
        try:
            self.server.app.handle(self, method)
        except Aborted:
            self.close_connection = True
        except (TimeoutError, ConnectionError, ssl.SSLError, BrokenPipeError):
            self.close_connection = True

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def do_DELETE(self):
        self._dispatch("DELETE")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    block_on_close = False

    def __init__(self, address, ssl_context, app):
        self.ssl_context = ssl_context
        self.app = app
        self.connections = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, Handler)

    def get_request(self):
        sock, address = self.socket.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        wrapped = self.ssl_context.wrap_socket(
            sock, server_side=True, do_handshake_on_connect=False
        )
        with self.connections_lock:
            self.connections.add(wrapped)
        return wrapped, address

    def shutdown_request(self, request):
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self):
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request, client_address):
        pass


class BaseApp:
    def __init__(self, sim, running):
        self.sim = sim
        self.running = running
        self.stats = sim.stats_counter

    # request helpers
    @staticmethod
    def parse(h):
        url = urlsplit(h.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        return url.path, query

    @staticmethod
    def read_body(h, limit=1 << 26):
        length = int(h.headers.get("Content-Length") or 0)
        if length > limit:
            raise graph_error(413, "requestTooLarge", "The request body is too large.")
        return h.rfile.read(length) if length else b""

    def read_json(self, h):
        raw = self.read_body(h)
        try:
            return json.loads(raw or b"{}")
        except ValueError as err:
            raise graph_error(400, "BadRequest", "Unable to read JSON request payload.") from err

    # response helpers
    def send(self, h, status, body=b"", headers=None, content_type="application/json", fault=None,
             chunks=None, length=None, head_only=False):
        """Sends a response; `chunks` + `length` stream a body. A body fault (reset,
        truncate, corrupt, stall) is applied to what is sent."""
        self.stats.count(f"status.{status}")
        if chunks is None:
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
            chunks, length = [body], len(body)
        if fault is not None and fault.kind in BODY_KINDS and length == 0:
            self._cut(h, fault, before_headers=True)
        h.send_response(status)
        if content_type and not (status in (204, 302) and length == 0):
            h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(length))
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        h.end_headers()
        if head_only:
            return 0
        return self.write_body(h, chunks, length, fault)

    def write_body(self, h, chunks, length, fault):
        kind = fault.kind if fault is not None and fault.kind in BODY_KINDS else None
        params = fault.params if kind else {}
        cut = (
            int(params.get("after_bytes", length // 2))
            if kind in ("reset", "truncate", "stall")
            else None
        )
        corrupt_at = int(params.get("corrupt_at", length // 2)) if kind == "corrupt" else None
        sent = 0
        write = h.wfile.write
        for chunk in chunks:
            n = len(chunk)
            if corrupt_at is not None and sent <= corrupt_at < sent + n:
                chunk = bytearray(chunk)
                chunk[corrupt_at - sent] ^= 0xFF
            if cut is not None and sent + n >= cut:
                head = chunk[:cut - sent]
                if len(head):
                    write(head)
                sent += len(head)
                self.on_bytes(len(head))
                if kind == "stall":
                    self._stall(params)
                    rest = chunk[len(head):]
                    if len(rest):
                        write(rest)
                        self.on_bytes(len(rest))
                    sent += len(rest)
                    cut = None
                    continue
                self._cut(h, fault)
            write(chunk)
            sent += n
            self.on_bytes(n)
        return sent

    def on_bytes(self, n):
        pass

    def _stall(self, params):
        deadline = time.monotonic() + float(params.get("stall_seconds", 30))
        while time.monotonic() < deadline and not self.running.stopping:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))

    def _cut(self, h, fault, before_headers=False):
        if fault.kind == "stall":
            self._stall(fault.params)
            return
        if fault.kind == "corrupt":
            return
        if fault.kind == "reset":
            try:
                h.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                h.rfile.close()
                h.connection.close()
            except OSError:
                pass
        raise Aborted()

    def send_reply(self, h, reply, fault=None, extra_headers=None):
        headers = dict(extra_headers or {})
        headers.update(reply.headers)
        body = reply.body
        if isinstance(body, dict) and "error" in body and isinstance(body["error"], dict):
            request_id = headers.get("request-id") or str(uuid.uuid4())
            body["error"].setdefault("innerError", {
                "date": iso(time.time()), "request-id": request_id,
                "client-request-id": h.headers.get("client-request-id") or request_id})
        if body is None:
            body = b""
        self.send(h, reply.status, body, headers=headers, fault=fault)


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


# ----- login + Graph ----------------------------------------------------------------------

class GraphApp(BaseApp):
    def handle(self, h, method):
        path, query = self.parse(h)
        request_id = str(uuid.uuid4())
        headers = {"request-id": request_id,
                   "client-request-id": h.headers.get("client-request-id") or request_id}
        try:
            if path.startswith("/v1.0/") or path == "/v1.0":
                self.graph(h, method, path[len("/v1.0"):], query, headers)
            else:
                self.login(h, method, path, query)
        except Reply as reply:
            self.send_reply(h, reply, extra_headers=headers)

    # identity
    def _oauth_error(self, status, error, code, description):
        now = time.time()
        return Reply(
            status,
            {
                "error": error,
                "error_description": description
                + (
                    f"\r\nTrace ID: {uuid.uuid4()}\r\nCorrelation ID: {uuid.uuid4()}\r\nTimestamp: "
                    f"{iso(now)}"
                ),
                "error_codes": [code],
                "timestamp": iso(now).replace("T", " ").rstrip("Z"),
                "trace_id": str(uuid.uuid4()),
                "correlation_id": str(uuid.uuid4()),
                "error_uri": f"{self.running.authority_host}/error?code={code}",
            },
        )

    def _tenant_or_error(self, ref):
        tenant = self.sim.tenant_by_ref(ref) if ref not in ("common", "organizations") else None
        if tenant is None:
            raise self._oauth_error(
                400,
                "invalid_tenant",
                90002,
                f"AADSTS90002: Tenant '{ref}' not found. Check to make sure you have "
                f"the correct tenant ID and are signing into the correct cloud. Check "
                f"with your subscription administrator, this may happen if there are no "
                f"active subscriptions for the tenant.",
            )
        return tenant

    def login(self, h, method, path, query):
        parts = [unquote(p) for p in path.split("/")[1:]]
        if not parts or not parts[0]:
            raise Reply(404, {"error": "not_found"})
        ref, rest = parts[0], "/".join(parts[1:])
        if method == "GET" and rest in ("v2.0/.well-known/openid-configuration",
                                        ".well-known/openid-configuration"):
            tenant = self._tenant_or_error(ref)
            self.stats.count("requests.discovery")
            raise Reply(200, self.discovery(tenant))
        if method == "GET" and rest in ("discovery/v2.0/keys", "discovery/keys"):
            self._tenant_or_error(ref)
            raise Reply(200, self.running.identity.jwks())
        if method == "POST" and rest in ("oauth2/v2.0/token", "oauth2/token"):
            self.token(h, ref)
            return
        raise Reply(404, {"error": "not_found", "error_description": f"No such endpoint: {path}"})

    def discovery(self, tenant):
        base = f"{self.running.authority_host}/{tenant.id}"
        return {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{self.running.graph_base}/oidc/userinfo",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "acr",
                "nonce",
                "preferred_username",
                "name",
                "tid",
                "ver",
                "at_hash",
                "c_hash",
                "email",
            ],
            "kerberos_endpoint": f"{base}/kerberos",
            "tenant_region_scope": "EU",
            "cloud_instance_name": "m365sim.local",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": urlsplit(self.running.graph_base).netloc,
            "rbac_url": "https://pas.windows.net",
        }

    def token(self, h, ref):
        self.stats.count("requests.token")
        raw = self.read_body(h, limit=1 << 20)
        form = {
            k: v[-1]
            for k, v in parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True).items()
        }
        client_id = form.get("client_id", "")
        fault = self.sim.faults.decide("token", client_id, set(STATUS_KINDS) | set(BODY_KINDS))
        if fault is not None and fault.kind in STATUS_KINDS:
            status = STATUS_KINDS[fault.kind]
            headers = {}
            retry_after = fault.params.get("retry_after", 1 if status == 429 else None)
            if retry_after is not None:
                headers["Retry-After"] = str(retry_after)
            error = self._oauth_error(
                status,
                "temporarily_unavailable",
                90033,
                "AADSTS90033: A transient error has occurred. Please try again.",
            )
            self.stats.count("token_errors")
            self.send_reply(h, Reply(status, error.body, headers), fault=None)
            return
        try:
            tenant = self._tenant_or_error(ref)
            body = self._issue(tenant, ref, form)
        except Reply as reply:
            self.stats.count("token_errors")
            self.send_reply(h, reply, fault=fault)
            return
        self.stats.count("tokens")
        self.send(
            h,
            200,
            body,
            headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"},
            fault=fault,
        )

    def _issue(self, tenant, ref, form):
        if form.get("grant_type") != "client_credentials":
            raise self._oauth_error(
                400,
                "unsupported_grant_type",
                70003,
                f"AADSTS70003: The app requested an unsupported grant type "
                f"'{form.get('grant_type')}'. m365sim supports client_credentials only.",
            )
        client_id = form.get("client_id", "")
        app = next((a for a in tenant.apps if a.client_id == client_id), None)
        if app is None:
            raise self._oauth_error(
                400,
                "unauthorized_client",
                700016,
                f"AADSTS700016: Application with identifier '{client_id}' was not found "
                f"in the directory '{tenant.domain}'. This can happen if the application "
                f"has not been installed by the administrator of the tenant or consented "
                f"to by any user in the tenant. You may have sent your authentication "
                f"request to the wrong tenant.",
            )
        scopes = form.get("scope", "").split()
        if not scopes:
            raise self._oauth_error(
                400,
                "invalid_request",
                900144,
                "AADSTS900144: The request body must contain the following parameter: 'scope'.",
            )
        graph_host = urlsplit(self.running.graph_base).netloc
        resources = {GRAPH_RESOURCE, GRAPH_RESOURCE + "/", f"https://{graph_host}", f"https://{graph_host}/",
                     GRAPH_APP_ID}
        for scope in scopes:
            if not scope.endswith("/.default"):
                raise self._oauth_error(
                    400,
                    "invalid_scope",
                    1002012,
                    f"AADSTS1002012: The provided value for scope {scope} is not valid. "
                    f"Client credential flows must have a scope value with /.default "
                    f"suffixed to the resource identifier (application ID URI).",
                )
            if (
                scope[: -len("/.default")] not in resources
                and scope[: -len(".default")] not in resources
            ):
                raise self._oauth_error(
                    400,
                    "invalid_resource",
                    500011,
                    f"AADSTS500011: The resource principal named "
                    f"{scope[: -len('/.default')]} was not found in the tenant named "
                    f"{tenant.domain}. This can happen if the application has not been "
                    f"installed by the administrator of the tenant or consented to by "
                    f"any user in the tenant.",
                )
        with_certificate = False
        try:
            if form.get("client_assertion"):
                if form.get("client_assertion_type") != ASSERTION_TYPE:
                    raise TokenError(400, "invalid_request", 50027,
                                     "AADSTS50027: Invalid client_assertion_type.")
                host = self.running.authority_host
                audiences = {
                    f"{host}/{tenant.id}/oauth2/v2.0/token",
                    f"{host}/{ref}/oauth2/v2.0/token",
                    f"{host}/{tenant.domain}/oauth2/v2.0/token",
                    f"{host}/{tenant.id}/oauth2/token",
                }
                self.running.identity.check_assertion(app, form["client_assertion"], audiences,
                                                      self.sim.refuse_replayed_jti)
                with_certificate = True
            elif "client_secret" in form:
                self.running.identity.check_secret(app, form["client_secret"])
            else:
                raise TokenError(
                    401,
                    "invalid_client",
                    7000216,
                    "AADSTS7000216: 'client_assertion', 'client_secret' or 'request' is "
                    "required for the 'client_credentials' grant type.",
                )
        except TokenError as e:
            raise self._oauth_error(e.status, e.error, e.code, e.description) from e
        lifetime = self.sim.token_lifetime
        token, _ = self.running.identity.issue(
            app, lifetime, self.running.authority_host, with_certificate
        )
        return {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
                "access_token": token}

    # Graph
    def authenticate(self, h):
        header = h.headers.get("Authorization", "")
        challenge = {
            "WWW-Authenticate": f'Bearer realm="", authorization_uri="{self.running.authority_host}'
            f'/common/oauth2/authorize", client_id="{GRAPH_APP_ID}"'
        }
        if not header.startswith("Bearer ") or not header[7:].strip():
            raise graph_error(
                401, "InvalidAuthenticationToken", "Access token is empty.", challenge
            )
        claims = self.running.identity.verify(header[7:].strip())
        if claims is None:
            raise graph_error(
                401,
                "InvalidAuthenticationToken",
                "IDX14100: JWT is not well formed, or its signature is invalid.",
                challenge,
            )
        if claims.get("aud") not in (GRAPH_RESOURCE, GRAPH_APP_ID):
            raise graph_error(401, "InvalidAuthenticationToken",
                              "Access token validation failure. Invalid audience.", challenge)
        if claims["exp"] <= time.time():
            raise graph_error(401, "InvalidAuthenticationToken",
                              "Lifetime validation failed, the token is expired.", challenge)
        tenant = self.sim.tenant_by_ref(claims.get("tid"))
        app = (
            next((a for a in tenant.apps if a.client_id == claims.get("appid")), None)
            if tenant
            else None
        )
        if app is None:
            raise graph_error(
                401, "InvalidAuthenticationToken", "Invalid token: unknown application.", challenge
            )
        if claims.get("xms_sim_gen") != app.generation:
            raise graph_error(
                401,
                "InvalidAuthenticationToken",
                "Continuous access evaluation resulted in challenge with result: "
                "InteractionRequired and code: TokenIssuedBeforeRevocationTimestamp",
                challenge,
            )
        return tenant, app, set(claims.get("roles", ())), challenge

    @staticmethod
    def split_drive_path(rest):
        """'/root:/a/b:/content' -> ('root', ['a', 'b'], '/content')."""
        if rest.startswith("/root"):
            base, after = "root", rest[5:]
        elif rest.startswith("/items/"):
            r = rest[7:]
            cut = min([i for i in (r.find(":"), r.find("/")) if i >= 0] or [len(r)])
            base, after = unquote(r[:cut]), r[cut:]
        else:
            return None
        relpath = None
        if after.startswith(":"):
            after = after[1:]
            end = after.find(":")
            relpath, tail = (after, "") if end == -1 else (after[:end], after[end + 1:])
            relpath = [unquote(p) for p in relpath.split("/") if p]
        else:
            tail = after
        return base, relpath, tail

    def route(self, method, path):
        """(endpoint kind, handler name, args)."""
        parts = path.split("/")[1:]
        if parts and parts[0] == "me":
            raise graph_error(
                400, "BadRequest", "/me request is only valid with delegated authentication flow."
            )
        if parts[:1] == ["users"] and method == "GET":
            if len(parts) == 1:
                return "users", "users_list", ()
            if len(parts) == 2 and parts[1] in ("delta", "delta()"):
                return "users_delta", "users_delta", ()
            if len(parts) == 2:
                return "user", "user_get", (unquote(parts[1]),)
            if len(parts) >= 3 and parts[2] == "drive":
                rest = "/" + "/".join(parts[3:]) if len(parts) > 3 else ""
                return self._drive_route(method, ("user", unquote(parts[1])), rest)
        if parts[:1] == ["users"] and len(parts) >= 3 and parts[2] == "drive":
            rest = "/" + "/".join(parts[3:]) if len(parts) > 3 else ""
            return self._drive_route(method, ("user", unquote(parts[1])), rest)
        if parts[:1] == ["drives"] and len(parts) >= 2:
            rest = path[len("/drives/") + len(parts[1]):]
            return self._drive_route(method, ("drive", unquote(parts[1])), rest)
        raise graph_error(
            400, "BadRequest", f"Resource not found for the segment '{parts[0] if parts else ''}'."
        )

    def _drive_route(self, method, drive_ref, rest):
        if rest in ("", "/") and method == "GET":
            return "drive", "drive_get", (drive_ref,)
        split = self.split_drive_path(rest)
        if split is None:
            raise graph_error(400, "invalidRequest", "Invalid request")
        base, relpath, tail = split
        if (
            tail in ("/delta", "/delta()")
            and base == "root"
            and relpath is None
            and method == "GET"
        ):
            return "drive_delta", "drive_delta", (drive_ref,)
        target = (drive_ref, base, relpath)
        if method == "GET":
            if tail == "":
                return "item", "item_get", (target,)
            if tail == "/content":
                return "content", "item_content", (target,)
            if tail == "/children":
                return "children", "children_list", (target,)
        if method == "PUT" and tail == "/content":
            return "upload", "upload_simple", (target,)
        if method == "POST" and tail == "/createUploadSession":
            return "upload", "upload_session", (target,)
        if method == "POST" and tail == "/children":
            return "upload", "create_child", (target,)
        if method == "DELETE" and tail == "":
            return "upload", "item_delete", (target,)
        if method == "PATCH" and tail == "":
            return "upload", "item_patch", (target,)
        raise graph_error(400, "invalidRequest", f"Invalid request: {method} {rest}")

    def graph(self, h, method, path, query, headers):
        if path == "/$batch":
            self.batch(h, method, headers)
            return
        result, fault = self.execute(h, method, path, query)
        if isinstance(result, Reply):
            result.headers.update(headers)
            self.send_reply(h, result, fault=fault)
        else:
            self.send(h, 200, result, headers=headers, fault=fault)

    def execute(self, h, method, path, query, body_faults=True):
        """One Graph request, direct or from a batch: route, count, authenticate, inject a fault,
        check the roles, run the handler. Returns (body or Reply, body fault or None); errors
        are raised as Reply."""
        kind, handler, args = self.route(method, path)
        self.stats.count(f"requests.{kind}")
        tenant, app, roles, challenge = self.authenticate(h)
        has_token = (
            kind in ("drive_delta", "users_delta")
            and any(k in query for k in ("token", "$deltatoken", "$skiptoken"))
            and query.get("token") != "latest"
        )
        eligible = (
            set(STATUS_KINDS) | {"revoke"} | ({"resync"} if has_token else set())
            | (set(BODY_KINDS) if body_faults else set())
        )
        fault = self.sim.faults.decide(kind, app.client_id, eligible)
        if fault is not None:
            if fault.kind == "revoke":
                self.sim.revoke_tokens(app.client_id)
                raise graph_error(
                    401,
                    "InvalidAuthenticationToken",
                    "Continuous access evaluation resulted in challenge with result: "
                    "InteractionRequired and code: TokenIssuedBeforeRevocationTimestamp",
                    challenge,
                )
            if fault.kind == "resync":
                raise self.resync_error()
            if fault.kind in STATUS_KINDS:
                status = STATUS_KINDS[fault.kind]
                extra = {}
                retry_after = fault.params.get("retry_after", 1 if status == 429 else None)
                if retry_after is not None:
                    extra["Retry-After"] = str(retry_after)
                code = ERROR_FOR_STATUS[status]
                message = (
                    "Please retry again later." if status == 429 else "The service is unavailable."
                )
                if status == 429 and kind in DRIVE_KINDS:
                    code, message = "activityLimitReached", "The request has been throttled"
                raise graph_error(status, code, message, extra)
        if kind in ("users", "users_delta", "user"):
            if not roles & USER_ROLES:
                raise graph_error(403, "Authorization_RequestDenied",
                                  "Insufficient privileges to complete the operation.")
        else:
            needed = FILE_WRITE_ROLES if kind == "upload" else FILE_READ_ROLES
            if not roles & needed:
                raise graph_error(
                    403,
                    "accessDenied",
                    "Either scp or roles claim need to be present in the token."
                    if not roles
                    else "Access denied",
                )
        with self.sim.lock:
            result = getattr(self, handler)(h, tenant, app, query, *args)
        return result, fault

    # JSON batching
    def batch(self, h, method, headers):
        """POST /$batch: up to MAX_BATCH requests, each through execute() as if sent alone
        (same routing, roles, faults and counts), answered together in one 200."""
        self.stats.count("requests.batch")
        if method != "POST":
            raise graph_error(405, "Request_BadRequest", "Use POST to send a JSON batch.")
        payload = self.read_json(h)  # read first: the connection stays usable after an error
        _, app, _, challenge = self.authenticate(h)
        fault = self.sim.faults.decide(
            "batch", app.client_id, set(STATUS_KINDS) | set(BODY_KINDS) | {"revoke"})
        if fault is not None and fault.kind == "revoke":
            self.sim.revoke_tokens(app.client_id)
            raise graph_error(401, "InvalidAuthenticationToken",
                              "Continuous access evaluation resulted in challenge with result: "
                              "InteractionRequired and code: TokenIssuedBeforeRevocationTimestamp",
                              challenge)
        if fault is not None and fault.kind in STATUS_KINDS:
            status = STATUS_KINDS[fault.kind]
            retry_after = fault.params.get("retry_after", 1 if status == 429 else None)
            extra = {"Retry-After": str(retry_after)} if retry_after is not None else {}
            raise graph_error(status, ERROR_FOR_STATUS[status],
                              "Please retry again later." if status == 429
                              else "The service is unavailable.", extra)
        requests = self._batch_requests(payload)
        self.stats.count("batch_subrequests", len(requests))
        statuses, responses = {}, []
        for sub in requests:
            failed = [d for d in sub.get("dependsOn") or () if statuses[d] >= 400]
            if failed:
                response = self._batch_error(
                    424, "FailedDependency",
                    f"Request {failed[0]} that this one depends on failed.")
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
                    isinstance(sub.get(k), str) and sub.get(k) for k in ("id", "method", "url")):
                raise graph_error(400, "BadRequest",
                                  "Invalid batch payload format: each request needs a string "
                                  "id, method and url.")
            if sub["id"] in seen:
                raise graph_error(400, "BadRequest", "Request Id's must be unique.")
            depends = sub.get("dependsOn") or []
            if not isinstance(depends, list) or any(d not in seen for d in depends):
                raise graph_error(400, "BadRequest",
                                  f"Request {sub['id']} depends on a request that does not come "
                                  "before it in the batch.")
            seen.add(sub["id"])
        return requests

    @staticmethod
    def _batch_error(status, code, message):
        return {"status": status, "headers": {"Content-Type": "application/json"},
                "body": {"error": {"code": code, "message": message, "innerError": {
                    "date": iso(time.time()), "request-id": str(uuid.uuid4())}}}}

    def _batch_one(self, h, sub):
        method, url = sub["method"].upper(), sub["url"]
        if url.startswith(("https://", "http://")) or url.lstrip("/").split("/")[0] in (
                "v1.0", "beta"):
            return self._batch_error(400, "BadRequest",
                                     "Invalid request URL: give it relative to the version, "
                                     "as in /users.")
        parts = urlsplit(url if url.startswith("/") else "/" + url)
        if parts.path == "/$batch":
            return self._batch_error(400, "BadRequest", "A batch cannot hold a batch.")
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        sub_headers = {str(k): str(v) for k, v in (sub.get("headers") or {}).items()}
        body = sub.get("body")
        if body is None:
            raw = b""
        elif isinstance(body, str) and "json" not in sub_headers.get(
                "Content-Type", sub_headers.get("content-type", "")).lower():
            raw = base64.b64decode(body)  # other content types travel base64-encoded
        else:
            raw = json.dumps(body).encode()
        try:
            result, _ = self.execute(SubRequest(h, sub_headers, raw), method, parts.path, query,
                                     body_faults=False)
            reply = result if isinstance(result, Reply) else Reply(200, result)
        except Reply as error:
            reply = error
        headers = dict(reply.headers)
        out = {"status": reply.status, "headers": headers}
        body = reply.body
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            body["error"].setdefault("innerError", {"date": iso(time.time()),
                                                    "request-id": str(uuid.uuid4())})
        if isinstance(body, (dict, list)):
            headers.setdefault("Content-Type", "application/json")
            out["body"] = body
        elif body:
            headers.setdefault("Content-Type", "application/octet-stream")
            out["body"] = base64.b64encode(body).decode()
        return out

    def resync_error(self):
        return graph_error(
            410,
            "resyncRequired",
            "Resync required. Replace any local items with the server's version (including "
            "deletes) if you're sure that the service was up to date with your local "
            "changes when you last sync'd. Upload any local changes that the server doesn't "
            "know about.",
        )

    # users
    def _select(self, query):
        raw = query.get("$select")
        if not raw:
            return None
        fields = [f.strip() for f in raw.split(",") if f.strip()]
        for f in fields:
            if f not in USER_PROPERTIES:
                raise graph_error(
                    400,
                    "BadRequest",
                    f"Parsing OData Select and Expand failed: Could not find "
                    f"a property named '{f}' on type 'microsoft.graph.user'.",
                )
        return fields

    @staticmethod
    def render_user(u, fields):
        full = {"id": u.id, "displayName": u.display_name, "givenName": u.given_name,
                "surname": u.surname, "jobTitle": u.job_title, "mail": u.mail,
                "userPrincipalName": u.upn, "businessPhones": [], "mobilePhone": None,
                "officeLocation": None, "preferredLanguage": "en-US", "accountEnabled": u.enabled,
                "assignedLicenses": [dict(LICENSE)] if u.licensed else [], "usageLocation": "US",
                "createdDateTime": "2021-03-04T05:06:07Z", "userType": "Member",
                "onPremisesSyncEnabled": None}
        out = {f: full[f] for f in (fields or USER_DEFAULT_SELECT)}
        out.setdefault("id", u.id)
        return out

    def _context(self, entity, fields):
        return f"{self.running.graph_base}/$metadata#{entity}" + (
            f"({','.join(fields)})" if fields else ""
        )

    def users_list(self, h, tenant, app, query):
        fields = self._select(query)
        top = query.get("$top", "100")
        if not top.isdigit() or not 1 <= int(top) <= 999:
            raise graph_error(
                400,
                "Request_UnsupportedQuery",
                f"Invalid page size specified: '{top}'. Must be between 1 and 999 inclusive.",
            )
        top = int(top)
        position = 0
        if "$skiptoken" in query:
            decoded = _unopaque(query["$skiptoken"]) or ""
            if not decoded.startswith("u:"):
                raise graph_error(
                    400,
                    "Directory_ExpiredPageToken",
                    "The specified page token value has expired "
                    "and can no longer be included in your request.",
                )
            position = int(decoded[2:])
        page = []
        users = tenant.users
        while position < len(users) and len(page) < top:
            u = users[position]
            position += 1
            if not u.deleted:
                page.append(self.render_user(u, fields))
        self.stats.count("users_pages")
        body = {"@odata.context": self._context("users", fields), "value": page}
        if (
            any(not u.deleted for u in users[position : position + 1])
            or position < len(users)
            and any(not u.deleted for u in users[position:])
        ):
            params = []
            if "$select" in query:
                params.append("$select=" + quote(query["$select"], safe=","))
            params.append(f"$top={top}")
            params.append("$skiptoken=" + _opaque(f"u:{position}"))
            body["@odata.nextLink"] = f"{self.running.graph_base}/users?" + "&".join(params)
        return body

    def users_delta(self, h, tenant, app, query):
        if "$deltatoken" in query or "$skiptoken" in query:
            decoded = _unopaque(query.get("$deltatoken") or query.get("$skiptoken")) or ""
            try:
                state = json.loads(decoded)
                position, end, full, fields = state["p"], state["e"], state["f"], state["s"]
                epoch = state["x"]
            except (ValueError, KeyError, TypeError) as err:
                raise graph_error(400, "BadRequest", "Invalid delta token.") from err
            if "$deltatoken" in query:
                if epoch != tenant.user_epoch or position > len(tenant.user_log):
                    raise self.resync_error()
                end, full = len(tenant.user_log), False
        else:
            fields = self._select(query)
            position, end, full = 0, len(tenant.user_log), True
        page = []
        log = tenant.user_log
        size = self.sim.users_delta_page_size
        while position < end and len(page) < size:
            u = tenant.users[log[position]]
            position += 1
            if u.seq != position:
                continue
            if u.deleted:
                if not full:
                    page.append({"id": u.id, "@removed": {
                        "reason": "deleted" if u.deleted == HARD_DELETED else "changed"}})
                continue
            page.append(self.render_user(u, fields))
        self.stats.count("users_delta_pages")
        body = {"@odata.context": self._context("users", fields), "value": page}
        if position < end:
            token = _opaque(
                json.dumps(
                    {"p": position, "e": end, "f": full, "s": fields, "x": tenant.user_epoch}
                )
            )
            body["@odata.nextLink"] = f"{self.running.graph_base}/users/delta?$skiptoken={token}"
        else:
            token = _opaque(
                json.dumps({"p": end, "e": end, "f": False, "s": fields, "x": tenant.user_epoch})
            )
            body["@odata.deltaLink"] = f"{self.running.graph_base}/users/delta?$deltatoken={token}"
        return body

    def _user_or_404(self, tenant, ref):
        u = tenant.find_user(ref)
        if u is None or u.deleted:
            raise graph_error(
                404,
                "Request_ResourceNotFound",
                f"Resource '{ref}' does not exist or one of its queried reference-property "
                f"objects are not present.",
            )
        return u

    def user_get(self, h, tenant, app, query, ref):
        fields = self._select(query)
        body = self.render_user(self._user_or_404(tenant, ref), fields)
        body["@odata.context"] = self._context("users/$entity", fields)
        return body

    # drives
    def _drive(self, tenant, drive_ref):
        kind, ref = drive_ref
        if kind == "user":
            u = self._user_or_404(tenant, ref)
            if u.drive is None:
                status, code, message = u.drive_error
                raise graph_error(status, code, message)
            return u.drive
        drive = self.sim.drive_by_id.get(ref)
        if drive is None or drive.user.tenant is not tenant:
            raise graph_error(404, "itemNotFound", "The resource could not be found.")
        return drive

    def render_drive(self, drive):
        u = drive.user
        return {
            "@odata.context": f"{self.running.graph_base}/$metadata#drives/$entity",
            "createdDateTime": iso(drive.root.ctime),
            "description": "",
            "id": drive.id,
            "lastModifiedDateTime": iso(max(drive.root.mtime, drive.root.ctime)),
            "name": "OneDrive",
            "webUrl": self._web_url(drive),
            "driveType": "business",
            "createdBy": {"user": {"displayName": "System Account"}},
            "owner": {"user": {"email": u.mail, "id": u.id, "displayName": u.display_name}},
            "quota": {
                "deleted": 0,
                "remaining": DRIVE_QUOTA - drive.used,
                "state": "normal",
                "total": DRIVE_QUOTA,
                "used": drive.used,
            },
        }

    def _web_url(self, drive, path=""):
        u = drive.user
        site = u.upn.replace("@", "_").replace(".", "_")
        return (f"https://{u.tenant.domain.split('.')[0]}-my.sharepoint.example/personal/{site}/Documents"
                + quote(path))

    def drive_get(self, h, tenant, app, query, drive_ref):
        return self.render_drive(self._drive(tenant, drive_ref))

    def _target(self, tenant, target, create_missing_parents=False, allow_missing_leaf=False):
        """(drive, item or None, parent, leaf name) for an address."""
        drive_ref, base, relpath = target
        drive = self._drive(tenant, drive_ref)
        if base == "root":
            item = drive.root
        else:
            item = self.sim.find_item(drive.num, base)
            if item is None or item.flags & DELETED:
                raise graph_error(404, "itemNotFound", "The resource could not be found.")
        if not relpath:
            return drive, item, None, None
        parent = item
        for i, part in enumerate(relpath):
            child = drive.child(parent, part)
            last = i == len(relpath) - 1
            if child is None:
                if last and allow_missing_leaf:
                    return drive, None, parent, part
                if not last and create_missing_parents:
                    child = self.sim.create_item(drive, parent, part, folder=True)
                else:
                    raise graph_error(404, "itemNotFound", "The resource could not be found.")
            if last:
                return drive, child, parent, part
            if not child.flags & FOLDER:
                raise graph_error(400, "invalidRequest", f"'{part}' is not a folder.")
            parent = child
        raise AssertionError

    def download_url(self, drive, item, app):
        expires = time.time() + self.sim.download_url_lifetime
        payload = _opaque(
            json.dumps(
                [drive.num, item.n, item.cver, round(expires, 3), app.client_id],
                separators=(",", ":"),
            )
        )
        signature = b64url(
            hmac.new(self.running.url_key, payload.encode(), hashlib.sha256).digest()[:18]
        )
        return f"{self.running.download_base}/dl/{payload}.{signature}"

    def render_item(self, drive, item, app, in_delta=False):
        iid = model.item_id(drive.num, item.n)
        parent_ref = {"driveType": "business", "driveId": drive.id}
        if item.n:
            parent_ref["id"] = model.item_id(drive.num, item.parent)
        if item.flags & DELETED:
            return {
                "@odata.type": "#microsoft.graph.driveItem",
                "id": iid,
                "parentReference": parent_ref,
                "deleted": {"state": "deleted"},
            }
        guid = model.item_guid(drive.num, item.n)
        owner = drive.user
        by = {"user": {"email": owner.mail, "id": owner.id, "displayName": owner.display_name}}
        out = {"@odata.type": "#microsoft.graph.driveItem",
               "createdDateTime": iso(item.ctime), "eTag": f'"{{{guid}}},{item.mver}"', "id": iid,
               "lastModifiedDateTime": iso(item.mtime), "name": item.name,
               "size": item.size, "createdBy": by, "lastModifiedBy": by}
        if not in_delta:
            out["webUrl"] = self._web_url(drive, drive.path_of(item) if item.n else "")
            if item.n:
                parent_path = drive.path_of(drive.items[item.parent])
                parent_ref["path"] = f"/drives/{drive.id}/root:" + (
                    "" if parent_path == "/" else parent_path
                )
        out["parentReference"] = parent_ref
        out["fileSystemInfo"] = {
            "createdDateTime": iso(item.ctime),
            "lastModifiedDateTime": iso(item.mtime),
        }
        if item.n == 0:
            out["root"] = {}
        if item.flags & FOLDER:
            out["folder"] = {"childCount": item.nchild}
        elif item.flags & PACKAGE:
            out["package"] = {"type": "oneNote"}
        else:
            out["cTag"] = f'"c:{{{guid}}},{item.cver}"'
            out["file"] = {"mimeType": _mime(item.name),
                           "hashes": {"quickXorHash": self.sim.item_hash(drive, item)}}
            if item.flags & MALWARE:
                out["malware"] = {"description": "Win32/Xsim.A!ml was detected in this file."}
            else:
                out["@microsoft.graph.downloadUrl"] = self.download_url(drive, item, app)
        return out

    def item_get(self, h, tenant, app, query, target):
        drive, item, _, _ = self._target(tenant, target)
        self.stats.count("items")
        body = self.render_item(drive, item, app)
        body["@odata.context"] = (
            f"{self.running.graph_base}/$metadata#drives('{drive.id}')/items/$entity"
        )
        return body

    def item_content(self, h, tenant, app, query, target):
        drive, item, _, _ = self._target(tenant, target)
        if item.flags & FOLDER:
            raise graph_error(
                404, "itemNotFound", "The item does not have content (it is a folder)."
            )
        if item.flags & MALWARE:
            raise graph_error(
                403,
                "malwareDetected",
                "Malware was detected in the requested file; it cannot be downloaded.",
            )
        if item.flags & PACKAGE:
            raise graph_error(503, "serviceNotAvailable",
                              "The service is unavailable: OneNote packages cannot be downloaded.")
        self.stats.count("content_redirects")
        return Reply(302, b"", {"Location": self.download_url(drive, item, app)})

    def children_list(self, h, tenant, app, query, target):
        drive, item, _, _ = self._target(tenant, target)
        top = int(query.get("$top", "200"))
        position = int(_unopaque(query["$skiptoken"]) or 0) if "$skiptoken" in query else 0
        children = sorted((n for (parent, _), n in drive.names().items() if parent == item.n))
        page = [
            self.render_item(drive, drive.items[n], app)
            for n in children[position : position + top]
        ]
        body = {
            "@odata.context": f"{self.running.graph_base}/$metadata#drives('{drive.id}')/items",
            "value": page,
        }
        if position + top < len(children):
            base = (
                f"{self.running.graph_base}/drives/{drive.id}/items/"
                f"{model.item_id(drive.num, item.n)}/children"
            )
            body["@odata.nextLink"] = f"{base}?$top={top}&$skiptoken={_opaque(str(position + top))}"
        return body

    def drive_delta(self, h, tenant, app, query, drive_ref):
        drive = self._drive(tenant, drive_ref)
        log, items = drive.log, drive.items
        token = query.get("token")
        base = f"{self.running.graph_base}/drives/{drive.id}/root/delta"
        if token == "latest":
            self.stats.count("drive_delta_pages")
            return {
                "@odata.context": f"{self.running.graph_base}/$metadata#Collection(driveItem)",
                "value": [],
                "@odata.deltaLink": f"{base}?token={_opaque(f'd:{len(log)}:{drive.epoch}')}",
            }
        page_no = 0
        if token:
            decoded = (_unopaque(token) or "").split(":")
            try:
                if decoded[0] == "d":
                    position = int(decoded[1])
                    horizon = 0
                    if self.sim.delta_horizon is not None:
                        horizon = len(log) - int(self.sim.delta_horizon)
                    if int(decoded[2]) != drive.epoch or position < horizon or position > len(log):
                        raise self.resync_error()
                    end, full = len(log), False
                elif decoded[0] == "p":
                    position, end, full, page_no = (
                        int(decoded[1]),
                        int(decoded[2]),
                        decoded[3] == "1",
                        int(decoded[4]),
                    )
                    if int(decoded[5]) != drive.epoch and not full:
                        raise self.resync_error()
                else:
                    raise ValueError
            except (ValueError, IndexError) as err:
                raise graph_error(400, "invalidRequest", "Invalid delta token.") from err
        else:
            position, end, full = 0, len(log), True
        size = min(int(query.get("$top", self.sim.delta_page_size)), 999)
        page, last_position = [], position
        while position < end and len(page) < size:
            n = log[position]
            position += 1
            item = items[n]
            if item.seq != position or (full and item.flags & DELETED):
                continue
            page.append(self.render_item(drive, item, app, in_delta=True))
            last_position = position - 1
        self.stats.count("drive_delta_pages")
        body = {
            "@odata.context": f"{self.running.graph_base}/$metadata#Collection(driveItem)",
            "value": page,
        }
        if position < end:
            if tenant.quirks and page_no % 2 == 0 and len(page) >= 2:
                position = last_position  # the next page starts with this page's last item again
            body["@odata.nextLink"] = (
                f"{base}?token="
                f"{_opaque(f'p:{position}:{end}:{int(full)}:{page_no + 1}:{drive.epoch}')}"
            )
        else:
            body["@odata.deltaLink"] = f"{base}?token={_opaque(f'd:{end}:{drive.epoch}')}"
        return body

    # uploads
    def _conflict(self, query_or_body, default):
        behavior = query_or_body.get("@microsoft.graph.conflictBehavior", default)
        if behavior not in ("fail", "replace", "rename"):
            raise graph_error(400, "invalidRequest", f"Invalid conflict behavior '{behavior}'.")
        return behavior

    def _place(self, drive, parent, name, behavior, folder):
        """(existing item to replace or None, name to create)."""
        if not name or any(c in name for c in '"*:<>?/\\|') or name.endswith("."):
            raise graph_error(
                400, "invalidRequest", f"The name '{name}' contains invalid characters."
            )
        existing = drive.child(parent, name)
        if existing is None:
            return None, name
        if behavior == "fail":
            raise graph_error(409, "nameAlreadyExists", "The specified item name already exists.")
        if behavior == "replace" and not folder and not existing.flags & FOLDER:
            return existing, name
        if behavior == "replace":
            self.sim._delete(drive, existing)
            return None, name
        stem, ext = os.path.splitext(name) if not folder else (name, "")
        k = 1
        while drive.child(parent, f"{stem} {k}{ext}") is not None:
            k += 1
        return None, f"{stem} {k}{ext}"

    def upload_simple(self, h, tenant, app, query, target):
        drive, item, parent, name = self._target(tenant, target, create_missing_parents=True,
                                                 allow_missing_leaf=True)
        length = int(h.headers.get("Content-Length") or 0)
        if length > 250 * 1024 * 1024:
            raise graph_error(
                413, "requestTooLarge", "Simple upload is limited to 250 MB; use an upload session."
            )
        spool = self.sim.new_spool()
        with open(spool, "wb") as f:
            remaining = length
            while remaining:
                block = h.rfile.read(min(remaining, 1 << 20))
                if not block:
                    raise Aborted()
                f.write(block)
                remaining -= len(block)
        self.stats.count("uploads")
        self.stats.count("uploaded_bytes", length)
        blob = self.sim.blob_from_file(spool, length)
        if parent is None:  # PUT /items/{id}/content
            if item.flags & FOLDER:
                raise graph_error(400, "invalidRequest", "Cannot upload content to a folder.")
            self.sim.replace_content(drive, item, blob)
            return Reply(200, self.render_item(drive, item, app))
        behavior = self._conflict(query, "replace")
        existing, name = self._place(drive, parent, name, behavior, folder=False)
        if existing is not None:
            self.sim.replace_content(drive, existing, blob)
            return Reply(200, self.render_item(drive, existing, app))
        created = self.sim.create_item(drive, parent, name, blob=blob)
        return Reply(201, self.render_item(drive, created, app))

    def upload_session(self, h, tenant, app, query, target):
        body = self.read_json(h)
        props = body.get("item", {}) if isinstance(body, dict) else {}
        drive, item, parent, name = self._target(tenant, target, create_missing_parents=True,
                                                 allow_missing_leaf=True)
        behavior = self._conflict(props, "replace")
        if parent is None:
            if item.flags & FOLDER:
                raise graph_error(400, "invalidRequest", "Cannot upload content to a folder.")
            replace_n, parent_n, name = item.n, item.parent, item.name
        else:
            name = props.get("name", name)
            if behavior == "fail" and drive.child(parent, name) is not None:
                raise graph_error(
                    409, "nameAlreadyExists", "The specified item name already exists."
                )
            replace_n, parent_n = None, parent.n
        session = self.running.new_upload_session(drive, parent_n, name, behavior, replace_n, app)
        return Reply(
            200,
            {
                "@odata.context": (
                    f"{self.running.graph_base}/$metadata#microsoft.graph.uploadSession"
                ),
                "uploadUrl": session["url"],
                "expirationDateTime": iso(session["expires"]),
                "nextExpectedRanges": ["0-"],
            },
        )

    def create_child(self, h, tenant, app, query, target):
        body = self.read_json(h)
        drive, item, _, _ = self._target(tenant, target)
        if not item.flags & FOLDER:
            raise graph_error(400, "invalidRequest", "The parent is not a folder.")
        if "folder" not in body:
            raise graph_error(
                400, "invalidRequest", "m365sim creates folders here; upload files with PUT."
            )
        behavior = self._conflict(body, "fail")
        existing, name = self._place(drive, item, body.get("name", ""), behavior, folder=True)
        created = self.sim.create_item(drive, item, name, folder=True)
        return Reply(201, self.render_item(drive, created, app))

    def item_delete(self, h, tenant, app, query, target):
        drive, item, _, _ = self._target(tenant, target)
        if item.n == 0:
            raise graph_error(403, "accessDenied", "The root cannot be deleted.")
        self.sim._delete(drive, item)
        return Reply(204, b"")

    def item_patch(self, h, tenant, app, query, target):
        body = self.read_json(h)
        drive, item, _, _ = self._target(tenant, target)
        parent = drive.items[item.parent]
        if "parentReference" in body and body["parentReference"].get("id"):
            parent = self.sim.find_item(drive.num, body["parentReference"]["id"])
            if parent is None or parent.flags & DELETED or not parent.flags & FOLDER:
                raise graph_error(404, "itemNotFound", "The new parent could not be found.")
        name = body.get("name", item.name)
        if drive.child(parent, name) not in (None, item):
            raise graph_error(409, "nameAlreadyExists", "The specified item name already exists.")
        try:
            self.sim._reparent(drive, item, parent, name, int(time.time()))
        except ValueError as e:
            raise graph_error(400, "invalidRequest", str(e)) from e
        return Reply(200, self.render_item(drive, item, app))


def _mime(name):
    from .simulator import mime_type
    return mime_type(name)


# ----- download and upload host -------------------------------------------------------------

class DownloadApp(BaseApp):
    def handle(self, h, method):
        path, query = self.parse(h)
        try:
            if path.startswith("/dl/") and method in ("GET", "HEAD"):
                self.download(h, path[4:], method == "HEAD")
            elif path.startswith("/up/"):
                self.upload(h, method, path[4:])
            else:
                raise graph_error(404, "itemNotFound", "The resource could not be found.")
        except Reply as reply:
            self.send_reply(h, reply)

    def _decode(self, token):
        try:
            payload, signature = token.split(".")
        except ValueError:
            return None
        expected = b64url(
            hmac.new(self.running.url_key, payload.encode(), hashlib.sha256).digest()[:18]
        )
        if not hmac.compare_digest(signature, expected):
            return None
        try:
            return json.loads(_unopaque(payload))
        except (TypeError, ValueError):
            return None

    def on_bytes(self, n):
        self.stats.count("bytes_served", n)

    def download(self, h, token, head_only):
        self.stats.count("requests.download")
        claims = self._decode(token)
        if claims is None:
            raise graph_error(401, "unauthenticated", "Invalid download token.")
        drive_num, n, cver, expires, client_id = claims
        if time.time() > expires:
            raise graph_error(
                401,
                "unauthenticated",
                "The download URL has expired. Request the item again "
                "for a fresh @microsoft.graph.downloadUrl.",
            )
        fault = self.sim.faults.decide("download", client_id, set(STATUS_KINDS) | set(BODY_KINDS))
        if fault is not None and fault.kind in STATUS_KINDS:
            status = STATUS_KINDS[fault.kind]
            retry_after = fault.params.get("retry_after", 1 if status == 429 else None)
            extra = {"Retry-After": str(retry_after)} if retry_after is not None else {}
            raise graph_error(status, ERROR_FOR_STATUS[status], "Please retry again later.", extra)
        with self.sim.lock:
            drive = self.sim.drives[drive_num] if drive_num < len(self.sim.drives) else None
            item = drive.items[n] if drive and n < len(drive.items) else None
            if item is None or item.flags & DELETED:
                raise graph_error(404, "itemNotFound", "The resource could not be found.")
            size = item.size if cver == item.cver else None
            if size is None:
                blob = self.sim.blobs.get((drive.num, item.n, cver))
                if blob is None and any(k[:2] == (drive.num, item.n) for k in self.sim.blobs):
                    raise graph_error(
                        404, "itemNotFound", "This version of the file is no longer available."
                    )
                size = blob.size if blob else item.size
            guid = model.item_guid(drive.num, item.n)
            item_ref = model.item_id(drive.num, n)
        start, end, status = 0, size, 200
        headers = {"Accept-Ranges": "bytes", "ETag": f'"{{{guid}}},{cver}"',
                   "Content-Disposition": "attachment"}
        range_header = h.headers.get("Range")
        if range_header and range_header.startswith("bytes=") and "," not in range_header:
            spec = range_header[6:].strip()
            first, _, last = spec.partition("-")
            try:
                if first == "":
                    start, end = max(0, size - int(last)), size
                    if int(last) == 0:
                        raise ValueError
                else:
                    start = int(first)
                    end = size if last == "" else min(size, int(last) + 1)
                    if start >= size or end <= start:
                        raise ValueError
            except ValueError:
                self.send(
                    h, 416, b"", headers={"Content-Range": f"bytes */{size}"}, content_type=None
                )
                return
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        if not head_only:
            self.stats.download(item_ref)
        chunks = self.sim.content_chunks(drive, item, cver, start, end)
        self.send(h, status, headers=headers, content_type="application/octet-stream", fault=fault,
                  chunks=chunks, length=end - start, head_only=head_only)

    def upload(self, h, method, session_id):
        self.stats.count("requests.upload")
        session = self.running.upload_sessions.get(session_id)
        if session is None or time.time() > session["expires"]:
            raise graph_error(
                404, "itemNotFound", "The upload session was not found or has expired."
            )
        if method == "DELETE":
            self.running.upload_sessions.pop(session_id, None)
            try:
                os.unlink(session["spool"])
            except OSError:
                pass
            raise Reply(204, b"")
        status_body = {"expirationDateTime": iso(session["expires"]),
                       "nextExpectedRanges": [f"{session['received']}-"]}
        if method == "GET":
            raise Reply(200, status_body)
        if method != "PUT":
            raise graph_error(405, "invalidRequest", "Use PUT to upload a fragment.")
        fault = self.sim.faults.decide("upload", session["client_id"], set(STATUS_KINDS))
        if fault is not None:
            status = STATUS_KINDS[fault.kind]
            retry_after = fault.params.get("retry_after", 1 if status == 429 else None)
            self.read_body(h, limit=1 << 62)
            raise graph_error(status, ERROR_FOR_STATUS[status], "Please retry again later.",
                              {"Retry-After": str(retry_after)} if retry_after is not None else {})
        length = int(h.headers.get("Content-Length") or 0)
        content_range = h.headers.get("Content-Range", "")
        try:
            unit, _, spec = content_range.partition(" ")
            span, _, total = spec.partition("/")
            first, _, last = span.partition("-")
            first, last = int(first), int(last)
            total = None if total == "*" else int(total)
            if unit != "bytes" or last - first + 1 != length:
                raise ValueError
        except ValueError as err:
            h.rfile.read(length)
            raise graph_error(
                400, "invalidRequest", "Missing or invalid Content-Range header."
            ) from err
        if first != session["received"]:
            h.rfile.read(length)
            raise graph_error(
                416,
                "invalidRange",
                "The uploaded fragment overlaps with data that has "
                "already been received or leaves a gap.",
            )
        with open(session["spool"], "ab") as f:
            remaining = length
            while remaining:
                block = h.rfile.read(min(remaining, 1 << 20))
                if not block:
                    raise Aborted()
                f.write(block)
                remaining -= len(block)
        session["received"] += length
        self.stats.count("uploaded_bytes", length)
        if total is None or session["received"] < total:
            raise Reply(202, {"expirationDateTime": iso(session["expires"]),
                              "nextExpectedRanges": [f"{session['received']}-"]})
        self.running.upload_sessions.pop(session_id, None)
        self.stats.count("uploads")
        reply = self.running.finish_upload(session)
        raise reply


# ----- admin API -------------------------------------------------------------------------

ADMIN_METHODS = (
    "add_user",
    "update_user",
    "rename_user",
    "delete_user",
    "restore_user",
    "add_file",
    "copy_file",
    "add_folder",
    "modify_file",
    "rename_item",
    "move_item",
    "delete_item",
    "set_app_roles",
    "revoke_tokens",
    "set_fault",
    "clear_faults",
    "list_faults",
    "stats",
    "reset_stats",
    "expire_delta_tokens",
    "configure",
    "list_users",
    "list_items",
    "get_item",
)


class AdminApp(BaseApp):
    def handle(self, h, method):
        path, query = self.parse(h)
        name = path.strip("/")
        try:
            if method == "GET" and name == "info":
                raise Reply(200, self.running.info)
            if name not in ADMIN_METHODS:
                raise Reply(
                    404,
                    {"error": f"no admin method {name!r}; choose from {', '.join(ADMIN_METHODS)}"},
                )
            if method == "GET":
                kwargs = {k: (v.lower() == "true" if v.lower() in ("true", "false") else v)
                          for k, v in query.items()}
            elif method == "POST":
                kwargs = self.read_json(h)
                if not isinstance(kwargs, dict):
                    raise Reply(
                        400, {"error": "the body must be a JSON object of keyword arguments"}
                    )
            else:
                raise Reply(405, {"error": "use GET or POST"})
            if "content_b64" in kwargs:
                kwargs["content"] = base64.b64decode(kwargs.pop("content_b64"))
            try:
                result = getattr(self.sim, name)(**kwargs)
            except (KeyError, ValueError, TypeError) as e:
                raise Reply(
                    404 if isinstance(e, KeyError) else 400, {"error": str(e).strip("'\"")}
                ) from e
            raise Reply(200, {"result": result})
        except Reply as reply:
            self.send(h, reply.status, reply.body)


# ----- running servers ---------------------------------------------------------------------

class Running:
    """Servers started by Simulator.serve(): .info, .stop(), usable as a context manager."""

    def __init__(self, sim):
        self.sim = sim
        self.stopping = False
        self.servers = []
        self.threads = []
        self.upload_sessions = {}
        self.url_key = secrets.token_bytes(32)

    @classmethod
    def start(cls, sim, host="127.0.0.1", port=0, download_port=0, admin_port=0, state_dir=None,
              info_file=None, kodo_settings=None):
        self = cls(sim)
        state_dir = Path(state_dir or "var/m365sim").resolve()
        state_dir.mkdir(parents=True, exist_ok=True)
        ca_cert, ca_key, ca_path = certs.ensure_ca(state_dir)
        cert_path, key_path = certs.ensure_server_cert(state_dir, host, ca_cert, ca_key)
        self.ca_file = str(ca_path)
        self.identity = Identity(certs.ensure_signing_key(state_dir))
        (state_dir / "apps").mkdir(exist_ok=True)
        for tenant in sim.tenants:
            for app in tenant.apps:
                pfx = state_dir / "apps" / f"{app.client_id}.pfx"
                cert, _ = certs.ensure_app_pfx(pfx, app.name, app.pfx_password)
                app.set_certificate(cert, pfx.resolve())
        if sim.blob_dir is None:
            sim.blob_dir = state_dir / "blobs"
            sim.blob_dir.mkdir(exist_ok=True)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        graph_server = Server((host, port), context, GraphApp(sim, self))
        download_server = Server((host, download_port), context, DownloadApp(sim, self))
        admin_server = Server((host, admin_port), context, AdminApp(sim, self))
        self.servers = [graph_server, download_server, admin_server]
        netloc = host if ":" not in host else f"[{host}]"
        self.authority_host = f"https://{netloc}:{graph_server.server_address[1]}"
        self.graph_base = f"{self.authority_host}/v1.0"
        self.download_base = f"https://{netloc}:{download_server.server_address[1]}"
        self.admin_base = f"https://{netloc}:{admin_server.server_address[1]}"
        for server in self.servers:
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                      daemon=True, name=f"m365sim-{server.server_address[1]}")
            thread.start()
            self.threads.append(thread)
        self.info = {"authority_host": self.authority_host, "graph_base": self.graph_base,
                     "download_base": self.download_base, "admin_base": self.admin_base,
                     "ca_file": self.ca_file, "state_dir": str(state_dir),
                     "tenants": [t.info() for t in sim.tenants]}
        if info_file:
            write_json_atomic(info_file, self.info)
        if kodo_settings:
            write_json_atomic(kodo_settings, self.kodo_settings())
        return self

    def kodo_settings(self, tenant_index=0, app_index=0):
        """KodoADSettings.json for one app, as Register-KodoApp.ps1 writes it, plus the
        custom-cloud keys."""
        tenant = self.sim.tenants[tenant_index]
        app = tenant.apps[app_index]
        return {
            "AppName": app.name,
            "TenantId": tenant.id,
            "ClientId": app.client_id,
            "ClientSecret": app.client_secret,
            "CertificatePassword": app.pfx_password,
            "CertificatePfxBase64": base64.b64encode(Path(app.pfx_path).read_bytes()).decode(),
            "CertificateThumbprint": app.thumbprint,
            "CertificateNotAfter": app.cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Cloud": "Custom",
            "AuthorityHost": self.authority_host,
            "GraphBaseUrl": self.graph_base,
            "CaCertificatePem": Path(self.ca_file).read_text(),
        }

    def new_upload_session(self, drive, parent_n, name, behavior, replace_n, app):
        session_id = secrets.token_urlsafe(24)
        session = {"drive": drive.num, "parent": parent_n, "name": name, "behavior": behavior,
                   "replace": replace_n, "received": 0, "spool": self.sim.new_spool(),
                   "expires": time.time() + 3600, "client_id": app.client_id, "app": app,
                   "url": f"{self.download_base}/up/{session_id}"}
        self.upload_sessions[session_id] = session
        return session

    def finish_upload(self, session):
        sim = self.sim
        graph = self.servers[0].app
        with sim.lock:
            drive = sim.drives[session["drive"]]
            blob = sim.blob_from_file(session["spool"], session["received"])
            if session["replace"] is not None:
                item = drive.items[session["replace"]]
                if item.flags & DELETED:
                    return graph_error(
                        404, "itemNotFound", "The item was deleted during the upload."
                    )
                sim.replace_content(drive, item, blob)
                return Reply(200, graph.render_item(drive, item, session["app"]))
            parent = drive.items[session["parent"]]
            if parent.flags & DELETED:
                return graph_error(
                    404, "itemNotFound", "The parent folder was deleted during the upload."
                )
            try:
                existing, name = graph._place(
                    drive, parent, session["name"], session["behavior"], folder=False
                )
            except Reply as reply:
                return reply
            if existing is not None:
                sim.replace_content(drive, existing, blob)
                return Reply(200, graph.render_item(drive, existing, session["app"]))
            item = sim.create_item(drive, parent, name, blob=blob)
            return Reply(201, graph.render_item(drive, item, session["app"]))

    def stop(self):
        if self.stopping:
            return
        self.stopping = True
        stoppers = [threading.Thread(target=server.shutdown) for server in self.servers]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()
        for server in self.servers:
            server.server_close()
            server.close_connections()
        for thread in self.threads:
            thread.join(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def write_json_atomic(path, data):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
