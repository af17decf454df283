"""Graph's OneDrive read endpoints: the drive, drive delta, items, children and the content
redirect to the download host; with the drive and item addressing and rendering that the
upload endpoints share."""

import hashlib
import hmac
import json
import time
from urllib.parse import quote

from . import model
from .http_base import Reply, _opaque, _unopaque, graph_error, iso
from .identity import b64url
from .model import DELETED, FOLDER, MALWARE, PACKAGE

DRIVE_QUOTA = 1 << 40


class DrivesMixin:
    """GraphApp's drive and item reads. Mixed into GraphApp; uses BaseApp's self.sim, self.running
    and helpers."""

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
        return (
            f"https://{u.tenant.domain.split('.')[0]}-my.sharepoint.example/personal/{site}/Documents"
            + quote(path)
        )

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
        out = {
            "@odata.type": "#microsoft.graph.driveItem",
            "createdDateTime": iso(item.ctime),
            "eTag": f'"{{{guid}}},{item.mver}"',
            "id": iid,
            "lastModifiedDateTime": iso(item.mtime),
            "name": item.name,
            "size": item.size,
            "createdBy": by,
            "lastModifiedBy": by,
        }
        if not in_delta:
            out["webUrl"] = self._web_url(drive, drive.path_of(item) if item.n else "")
            if item.n:
                parent_path = drive.path_of(drive.items[item.parent])
                parent_ref["path"] = f"/drives/{drive.id}/root:" + (
                    "" if parent_path == "/" else parent_path
                )
        out["parentReference"] = parent_ref
        fs_created, fs_modified = self.sim.fs_times_of(drive, item)
        out["fileSystemInfo"] = {
            "createdDateTime": iso(fs_created),
            "lastModifiedDateTime": iso(fs_modified),
        }
        if item.n == 0:
            out["root"] = {}
        if item.flags & FOLDER:
            out["folder"] = {"childCount": item.nchild}
        elif item.flags & PACKAGE:
            out["package"] = {"type": "oneNote"}
        else:
            out["cTag"] = f'"c:{{{guid}}},{item.cver}"'
            out["file"] = {
                "mimeType": _mime(item.name),
                "hashes": {"quickXorHash": self.sim.item_hash(drive, item)},
            }
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
            raise graph_error(
                503,
                "serviceNotAvailable",
                "The service is unavailable: OneNote packages cannot be downloaded.",
            )
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


def _mime(name):
    from .simulator import mime_type

    return mime_type(name)
