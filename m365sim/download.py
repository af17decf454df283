"""The download and upload host: signed download URLs (/dl/...) and upload sessions' fragments
(/up/...)."""

import hashlib
import hmac
import json
import time

from . import model
from .faults import BODY_KINDS, STATUS_KINDS
from .http_base import ERROR_FOR_STATUS, BaseApp, Reply, _unopaque, graph_error, iso
from .identity import b64url
from .model import DELETED

FRAGMENT_UNIT = 320 * 1024  # every fragment but the last is a multiple of 320 KiB
MAX_FRAGMENT = 60 * 1024 * 1024  # "less than 60 MiB" per request


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
            if cver == item.cver:
                size = item.size
            else:
                # a URL issued before the content changed: the bytes of its own version, at
                # their own length (never the old bytes cut or padded to the new size)
                size = self.sim.old_sizes.get((drive.num, item.n, cver))
                if size is None:
                    raise graph_error(
                        404, "itemNotFound", "This version of the file is no longer available."
                    )
            guid = model.item_guid(drive.num, item.n)
            item_ref = model.item_id(drive.num, n)
        start, end, status = 0, size, 200
        headers = {
            "Accept-Ranges": "bytes",
            "ETag": f'"{{{guid}}},{cver}"',
            "Content-Disposition": "attachment",
        }
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
        self.send(
            h,
            status,
            headers=headers,
            content_type="application/octet-stream",
            fault=fault,
            chunks=chunks,
            length=end - start,
            head_only=head_only,
        )

    def upload(self, h, method, session_id):
        """An upload session's URL: PUT a fragment, GET the status, DELETE to cancel."""
        self.stats.count("requests.fragment")
        if h.headers.get("Authorization"):
            # driveitem-createuploadsession, Remarks: "If you include the Authorization header
            # when issuing the PUT call, it may result in an HTTP 401 Unauthorized response."
            # The URL is pre-authenticated; m365sim always answers 401, on every method.
            raise graph_error(
                401,
                "unauthenticated",
                "The upload URL is pre-authenticated: send no Authorization header to it.",
            )
        session = self.running.upload_session(session_id)
        if session is None:
            raise graph_error(
                404, "itemNotFound", "The upload session was not found or has expired."
            )
        if method == "DELETE":
            with session["lock"]:
                self.running.drop_upload_session(session_id)
            raise Reply(204, b"")
        if method == "GET":
            raise Reply(200, self._status(session))
        if method != "PUT":
            raise graph_error(405, "invalidRequest", "Use PUT to upload a fragment.")
        fault = self.sim.faults.decide(
            "fragment", session["client_id"], set(STATUS_KINDS) | {"reset", "stall"}
        )
        if fault is not None and fault.kind in STATUS_KINDS:
            status = STATUS_KINDS[fault.kind]
            retry_after = fault.params.get("retry_after", 1 if status == 429 else None)
            raise graph_error(
                status,
                ERROR_FOR_STATUS[status],
                "Please retry again later.",
                {"Retry-After": str(retry_after)} if retry_after is not None else {},
            )
        if fault is not None and fault.kind == "reset" and fault.params.get("after_commit"):
            # the fragment is taken, then the answer is lost: the client must ask GET uploadUrl
            try:
                self._put_fragment(h, session_id, session, None)
            except Reply as reply:
                self.send_reply(h, reply, fault=fault)
            return
        self._put_fragment(h, session_id, session, fault)

    def _put_fragment(self, h, session_id, session, fault):
        with session["lock"]:
            if self.running.upload_sessions.get(session_id) is not session:
                raise graph_error(404, "itemNotFound", "The upload session was cancelled.")
            first, length, total = self._check_fragment(h, session)
            self._receive(h, session, length, fault)
            session["received"] += length
            session["total"] = total
            session["expires"] = time.time() + self.sim.upload_session_lifetime
            self.stats.count("uploaded_bytes", length)
            if session["received"] < total:
                raise Reply(202, self._status(session))
            reply = self.running.finish_upload(session)
            if reply.status < 300:
                self.running.upload_sessions.pop(session_id, None)
                self.stats.count("uploads")
            raise reply

    @staticmethod
    def _status(session):
        total = session["total"]
        received = session["received"]
        ranges = [] if total is not None and received >= total else [f"{received}-"]
        return {"expirationDateTime": iso(session["expires"]), "nextExpectedRanges": ranges}

    def _check_fragment(self, h, session):
        """(first byte, length, total) of a fragment that Graph would take, else the Reply."""
        length = self.content_length(h, required=True)
        try:
            unit, _, spec = h.headers.get("Content-Range", "").strip().partition(" ")
            span, _, total = spec.partition("/")
            first, _, last = span.partition("-")
            first, last, total = int(first), int(last), int(total)
            if unit != "bytes" or first < 0 or last < first or last >= total:
                raise ValueError
        except ValueError as err:
            raise graph_error(
                400,
                "invalidRequest",
                "Missing or invalid Content-Range header; send bytes first-last/total.",
            ) from err
        if last - first + 1 != length:
            raise graph_error(
                400,
                "invalidRequest",
                "Declared fragment length does not match the provided number of bytes.",
            )
        if session["total"] is not None and total != session["total"]:
            raise graph_error(
                400,
                "invalidRequest",
                f"The current upload session is for {session['total']} total bytes, but the "
                f"current fragment declares a total of {total}.",
            )
        if length >= MAX_FRAGMENT:
            raise graph_error(
                413, "requestTooLarge", "A fragment must be smaller than 60 MiB (62,914,560 bytes)."
            )
        if first < session["received"]:
            raise graph_error(416, "invalidRange", "Uploaded fragment overlaps with existing data.")
        if first > session["received"]:
            raise graph_error(416, "invalidRange", "Uploaded fragment is out of order.")
        if last + 1 < total and length % FRAGMENT_UNIT:
            raise graph_error(
                400,
                "invalidRequest",
                "Every fragment but the last must be a multiple of 320 KiB (327,680 bytes).",
            )
        return first, length, total

    def _receive(self, h, session, length, fault):
        """Write the fragment at its place in the spool. If the connection breaks (or an
        injected reset cuts it), the session keeps exactly the bytes it had before. An injected
        stall pauses after `after_bytes` (a fragment in flight, for tests that kill the
        client). `fragment_bytes_received` counts every byte read, kept or not."""
        with open(session["spool"], "r+b") as f:
            f.seek(session["received"])
            try:
                if fault is not None and fault.kind in ("reset", "stall"):
                    cut = min(length, int(fault.params.get("after_bytes", length // 2)))
                    self.copy_body(h, f, cut)
                    self._cut(h, fault)
                    length -= cut
                self.copy_body(h, f, length)
            except BaseException:
                f.truncate(session["received"])
                raise
            finally:
                self.stats.count("fragment_bytes_received", f.tell() - session["received"])
