"""Graph's OneDrive write endpoints (endpoint kind "upload"): simple uploads, upload sessions,
new folders, deletes, renames and moves. The session's fragments go to the download host
(download.DownloadApp.upload, endpoint kind "fragment").

Held to the documented rules (learn.microsoft.com/graph/api/driveitem-put-content,
driveitem-createuploadsession, driveitem-post-children; docs/GRAPH.md §5), never
looser: where Graph is lenient in practice but the documentation is not, m365sim refuses."""

import datetime
import os
import time

from .graph_drives import DRIVE_QUOTA
from .http_base import Reply, graph_error, iso
from .model import DELETED, FOLDER

SIMPLE_UPLOAD_LIMIT = 250_000_000  # "up to 250 MB" (driveitem-put-content), the stricter reading
CONFLICT_KEY = "@microsoft.graph.conflictBehavior"


def name_taken():
    return graph_error(409, "nameAlreadyExists", "The specified item name already exists.")


def check_name(name):
    if (
        not isinstance(name, str)
        or not name
        or name.strip() != name
        or any(c in name for c in '"*:<>?/\\|')
        or name.endswith(".")
    ):
        raise graph_error(400, "invalidRequest", f"The name '{name}' contains invalid characters.")
    return name


def parse_fs_times(props):
    """(created, modified) epoch seconds from a fileSystemInfo facet; None where not given."""
    info = props.get("fileSystemInfo")
    if info is None:
        return None
    if not isinstance(info, dict):
        raise graph_error(400, "invalidRequest", "fileSystemInfo must be an object.")
    times = []
    for key in ("createdDateTime", "lastModifiedDateTime"):
        value = info.get(key)
        if value is None:
            times.append(None)
            continue
        try:
            parsed = datetime.datetime.fromisoformat(value)
        except (TypeError, ValueError) as err:
            raise graph_error(
                400, "invalidRequest", f"fileSystemInfo.{key} is not a valid date and time."
            ) from err
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=datetime.UTC)
        times.append(int(parsed.timestamp()))
    return tuple(times)


class UploadsMixin:
    """GraphApp's drive and item writes. Mixed into GraphApp; uses BaseApp's self.sim, self.running
    and helpers."""

    def _conflict(self, query_or_body, default):
        behavior = query_or_body.get(CONFLICT_KEY, default)
        if behavior not in ("fail", "replace", "rename"):
            raise graph_error(400, "invalidRequest", f"Invalid conflict behavior '{behavior}'.")
        return behavior

    def _place(self, drive, parent, name, behavior, folder):
        """(existing item to use or None, name to create). For a file, `replace` over a file
        gives that file (its content is replaced); for a folder, `replace` over a folder gives
        that folder (an idempotent mkdir). `replace` across kinds is 409: over a file through
        POST children that is Graph's own (open) bug; m365sim refuses a file over a folder
        too rather than delete a tree."""
        check_name(name)
        existing = drive.child(parent, name)
        if existing is None:
            return None, name
        if behavior == "fail":
            raise name_taken()
        if behavior == "replace":
            if bool(existing.flags & FOLDER) != folder:
                raise name_taken()
            return existing, name
        # rename, as OneDrive does: "My Folder 1", "report 1.txt" (the number before the extension)
        stem, ext = os.path.splitext(name) if not folder else (name, "")
        k = 1
        while drive.child(parent, f"{stem} {k}{ext}") is not None:
            k += 1
        return None, f"{stem} {k}{ext}"

    def upload_simple(self, h, tenant, app, query, target):
        length = self.content_length(h, required=True)
        if length > SIMPLE_UPLOAD_LIMIT:
            raise graph_error(
                413, "requestTooLarge", "Simple upload is limited to 250 MB; use an upload session."
            )
        drive, item, parent, name = self._target(
            tenant, target, create_missing_parents=True, allow_missing_leaf=True
        )
        behavior = self._conflict(query, "replace")
        if parent is None:  # PUT /items/{id}/content
            if item.flags & FOLDER:
                raise graph_error(400, "invalidRequest", "Cannot upload content to a folder.")
            existing, name = item, item.name
        else:
            existing, name = self._place(drive, parent, name, behavior, folder=False)
        spool = self.sim.new_spool()
        with open(spool, "wb") as f:
            self.copy_body(h, f, length)
        self.stats.count("uploads")
        self.stats.count("uploaded_bytes", length)
        blob = self.sim.blob_from_file(spool, length)
        if existing is not None:
            self.sim.replace_content(drive, existing, blob)
            return Reply(200, self.render_item(drive, existing, app))
        created = self.sim.create_item(drive, parent, name, blob=blob)
        return Reply(201, self.render_item(drive, created, app))

    def upload_session(self, h, tenant, app, query, target):
        body = self.read_json(h)
        if not isinstance(body, dict) or not isinstance(body.get("item", {}), dict):
            raise graph_error(400, "invalidRequest", "The request body must be a JSON object.")
        if body.get("deferCommit"):
            raise graph_error(400, "notSupported", "m365sim does not support deferCommit.")
        props = body.get("item", {})
        drive, item, parent, name = self._target(
            tenant, target, create_missing_parents=True, allow_missing_leaf=True
        )
        # the documented default is fail (driveitem-createuploadsession); users report replace
        behavior = self._conflict(props, "fail")
        fs_times = parse_fs_times(props)
        size = props.get("fileSize")
        if size is not None:
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise graph_error(400, "invalidRequest", "fileSize must be a whole number.")
            if size > DRIVE_QUOTA - drive.used:
                raise graph_error(507, "quotaLimitReached", "Insufficient Space Available.")
        if parent is None:  # /items/{id}/createUploadSession: new content for that file
            if item.flags & FOLDER:
                raise graph_error(400, "invalidRequest", "Cannot upload content to a folder.")
            replace_n, parent_n, name = item.n, item.parent, item.name
        else:
            # "The {item-path} must contain the name of the item that's specified in the body"
            if props.get("name", name) != name:
                raise graph_error(
                    400, "invalidRequest", "The name in the body differs from the name in the path."
                )
            check_name(name)
            existing = drive.child(parent, name)
            if existing is not None and (
                behavior == "fail" or (behavior == "replace" and existing.flags & FOLDER)
            ):
                raise name_taken()
            replace_n, parent_n = None, parent.n
        session = self.running.new_upload_session(
            drive, parent_n, name, behavior, replace_n, app, fs_times
        )
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
        if not isinstance(body, dict):
            raise graph_error(400, "invalidRequest", "The request body must be a JSON object.")
        drive, item, _, _ = self._target(tenant, target)
        if not item.flags & FOLDER:
            raise graph_error(400, "invalidRequest", "The parent is not a folder.")
        if not isinstance(body.get("folder"), dict):
            raise graph_error(
                400, "invalidRequest", "m365sim creates folders here; upload files with PUT."
            )
        behavior = self._conflict(body, "fail")
        fs_times = parse_fs_times(body)
        existing, name = self._place(drive, item, body.get("name", ""), behavior, folder=True)
        if existing is not None:
            return Reply(200, self.render_item(drive, existing, app))
        created = self.sim.create_item(drive, item, name, folder=True, fs_times=fs_times)
        return Reply(201, self.render_item(drive, created, app))

    def item_delete(self, h, tenant, app, query, target):
        drive, item, _, _ = self._target(tenant, target)
        if item.n == 0:
            raise graph_error(403, "accessDenied", "The root cannot be deleted.")
        self.sim._delete(drive, item)
        return Reply(204, b"")

    def item_patch(self, h, tenant, app, query, target):
        body = self.read_json(h)
        if not isinstance(body, dict):
            raise graph_error(400, "invalidRequest", "The request body must be a JSON object.")
        drive, item, _, _ = self._target(tenant, target)
        if item.n == 0:
            raise graph_error(403, "accessDenied", "The root cannot be renamed or moved.")
        parent = drive.items[item.parent]
        reference = body.get("parentReference")
        if isinstance(reference, dict) and reference.get("id"):
            parent = self.sim.find_item(drive.num, str(reference["id"]))
            if parent is None or parent.flags & DELETED or not parent.flags & FOLDER:
                raise graph_error(404, "itemNotFound", "The new parent could not be found.")
        name = check_name(body.get("name", item.name))
        if drive.child(parent, name) not in (None, item):
            raise name_taken()
        try:
            self.sim._reparent(drive, item, parent, name, int(time.time()))
        except ValueError as e:
            raise graph_error(400, "invalidRequest", str(e)) from e
        self.sim.set_fs_times(drive, item, parse_fs_times(body))
        return Reply(200, self.render_item(drive, item, app))
