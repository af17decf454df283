"""The download and upload host: signed download URLs (/dl/...) and upload sessions' fragments
(/up/...)."""

import hashlib
import hmac
import json
import os
import time

from . import model
from .faults import BODY_KINDS, STATUS_KINDS
from .http_base import ERROR_FOR_STATUS, BaseApp, Reply, _unopaque, graph_error, iso
from .identity import b64url
from .model import DELETED


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
            self.copy_body(h, f, length)
        session["received"] += length
        self.stats.count("uploaded_bytes", length)
        if total is None or session["received"] < total:
            raise Reply(202, {"expirationDateTime": iso(session["expires"]),
                              "nextExpectedRanges": [f"{session['received']}-"]})
        self.running.upload_sessions.pop(session_id, None)
        self.stats.count("uploads")
        reply = self.running.finish_upload(session)
        raise reply
