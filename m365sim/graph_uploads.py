"""Graph's OneDrive write endpoints (endpoint kind "upload"): simple uploads, upload sessions,
new folders, deletes, renames and moves. The session's bytes go to the download host
(download.DownloadApp.upload)."""

import os
import time

from .http_base import Reply, graph_error, iso
from .model import DELETED, FOLDER


class UploadsMixin:
    """GraphApp's drive and item writes. Mixed into GraphApp; uses BaseApp's self.sim, self.running
    and helpers."""

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
            self.copy_body(h, f, length)
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
