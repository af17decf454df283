"""HTTP plumbing shared by the three servers: the TLS ThreadingHTTPServer, its request handler,
BaseApp (request and response helpers, body faults), Reply/graph_error and small helpers."""

import base64
import datetime
import json
import socket
import ssl
import struct
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from .faults import BODY_KINDS

DRAIN_LIMIT = 64 << 20  # an unread request body up to this size is dropped before answering
ERROR_FOR_STATUS = {
    429: "TooManyRequests",
    500: "generalException",
    502: "BadGateway",
    503: "serviceNotAvailable",
    504: "gatewayTimeout",
}


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
        self.body_consumed = False
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
    def content_length(h, required=False):
        """The request's Content-Length as an int (0 when absent, unless required)."""
        raw = h.headers.get("Content-Length")
        if raw is None and h.headers.get("Transfer-Encoding"):
            h.close_connection = True
            raise graph_error(411, "lengthRequired", "A Content-Length header is required.")
        if raw is None:
            if required:
                raise graph_error(411, "lengthRequired", "A Content-Length header is required.")
            return 0
        try:
            length = int(raw)
            if length < 0:
                raise ValueError
        except ValueError as err:
            h.close_connection = True
            raise graph_error(400, "invalidRequest", "Invalid Content-Length header.") from err
        return length

    @staticmethod
    def copy_body(h, f, length):
        """Copy `length` bytes of the request body to file f, 1 MiB at a time."""
        h.body_consumed = True
        remaining = length
        while remaining:
            block = h.rfile.read(min(remaining, 1 << 20))
            if not block:
                raise Aborted()
            f.write(block)
            remaining -= len(block)

    def read_body(self, h, limit=1 << 26):
        length = self.content_length(h)
        if length > limit:
            raise graph_error(413, "requestTooLarge", "The request body is too large.")
        h.body_consumed = True
        return h.rfile.read(length) if length else b""

    def settle_body(self, h):
        """Before answering: read and drop a request body the handler left unread, so that the
        keep-alive connection stays in step (a very large one closes the connection instead)."""
        if getattr(h, "body_consumed", True):
            return
        h.body_consumed = True
        try:
            length = self.content_length(h)
        except Reply:
            h.close_connection = True
            return
        if length > DRAIN_LIMIT:
            h.close_connection = True
            return
        while length:
            block = h.rfile.read(min(length, 1 << 20))
            if not block:
                raise Aborted()
            length -= len(block)

    def read_json(self, h):
        raw = self.read_body(h)
        try:
            return json.loads(raw or b"{}")
        except ValueError as err:
            raise graph_error(400, "BadRequest", "Unable to read JSON request payload.") from err

    # response helpers
    def send(
        self,
        h,
        status,
        body=b"",
        headers=None,
        content_type="application/json",
        fault=None,
        chunks=None,
        length=None,
        head_only=False,
    ):
        """Sends a response; `chunks` + `length` stream a body. A body fault (reset,
        truncate, corrupt, stall) is applied to what is sent."""
        self.settle_body(h)
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
        if h.close_connection:
            h.send_header("Connection", "close")
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
                head = chunk[: cut - sent]
                if len(head):
                    write(head)
                sent += len(head)
                self.on_bytes(len(head))
                if kind == "stall":
                    self._stall(params)
                    rest = chunk[len(head) :]
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
            body["error"].setdefault(
                "innerError",
                {
                    "date": iso(time.time()),
                    "request-id": request_id,
                    "client-request-id": h.headers.get("client-request-id") or request_id,
                },
            )
        if body is None:
            body = b""
        self.send(h, reply.status, body, headers=headers, fault=fault)
