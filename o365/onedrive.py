"""Writing to a user's OneDrive through Microsoft Graph (restore): folders created by parent id,
files uploaded through upload sessions in fragments, and the answers that tell whether it worked.

Everything goes through GraphClient (retries, Retry-After shared client-wide and across
processes, typed errors); the pre-authenticated upload URL is sent no Authorization header
(`authenticated=False`). The rules are Microsoft's (docs/GRAPH.md §5):

    drive = OneDrive(client, user_drive_id(client, user.graph_id))
    folder, created = drive.create_folder(drive.root()["id"], "Kodo Restore 2026-12-03 07-10")
    session = drive.create_session(folder["id"], "a.docx", "fail", created=..., modified=...)
    answer = drive.put_fragment(session.url, first_10_mib, 0, total)   # .next_offset, or .item

Why sessions for every non-empty file: a simple upload cannot carry fileSystemInfo, and setting
the times afterwards with PATCH makes an extra version of the new file; a session carries them
and can be resumed. A session cannot carry zero bytes, so an empty file is a simple upload
followed by that PATCH (an empty file's extra version costs nothing).
"""

import datetime as dt
from dataclasses import dataclass
from urllib.parse import quote

from .graph import GraphClient, GraphError, NotFound

FRAGMENT_UNIT = 320 * 1024  # every fragment but the last is a multiple of this
MAX_FRAGMENT = 60 * 1024 * 1024  # fragments must be smaller than this
DEFAULT_FRAGMENT = 32 * FRAGMENT_UNIT  # 10 MiB, in Microsoft's recommended 5-10 MiB
CONFLICT_KEY = "@microsoft.graph.conflictBehavior"
CONFLICT_BEHAVIORS = ("fail", "replace", "rename")


class NoOneDrive(GraphError):
    """The user has no OneDrive (never provisioned; app-only calls cannot provision one)."""


class NameTaken(GraphError):
    """409: an item of that name is where Kodo wanted to create one (`existing` is it when
    Kodo looked it up, e.g. a file where a folder was to be created)."""

    def __init__(self, text, *, existing=None, **kwargs):
        super().__init__(text, **kwargs)
        self.existing = existing


class SessionGone(GraphError):
    """404 on an upload URL: the session expired, was canceled or completed. Start over (after
    checking whether the file is there already)."""


class RangeNotExpected(GraphError):
    """416 on a fragment: the session holds other bytes than Kodo thought (a fragment whose
    answer was lost, or a reset). Ask the session where to go on (session_offset)."""


def fragment_size_is_valid(size: int) -> bool:
    return 0 < size < MAX_FRAGMENT and size % FRAGMENT_UNIT == 0


def user_drive_id(client: GraphClient, user_graph_id: str) -> str:
    """The id of the user's OneDrive, or NoOneDrive (docs/GRAPH.md §2: 404 "mysite not found"
    and its variants, which GraphClient types as NotFound)."""
    try:
        drive = client.get(f"/users/{quote(user_graph_id, safe='')}/drive", {"$select": "id"})
    except NotFound as error:
        raise NoOneDrive(
            str(error),
            code=error.code,
            message=error.message,
            status=error.status,
            request_id=error.request_id,
        ) from None
    return drive["id"]


def graph_time(value: dt.datetime | None) -> str | None:
    """A datetime as Graph writes it (UTC, Z)."""
    if value is None:
        return None
    text = value.astimezone(dt.UTC).replace(tzinfo=None).isoformat()
    return text + "Z"


def file_system_info(created: dt.datetime | None, modified: dt.datetime | None) -> dict:
    info = {}
    if created is not None:
        info["createdDateTime"] = graph_time(created)
    if modified is not None:
        info["lastModifiedDateTime"] = graph_time(modified)
    return info


def item_hash(item: dict) -> str | None:
    """The quickXorHash Microsoft reports for a file item (None when it sent none)."""
    hashes = (item.get("file") or {}).get("hashes") or {}
    return hashes.get("quickXorHash")


@dataclass(frozen=True)
class UploadSession:
    url: str
    expires: dt.datetime | None = None


@dataclass(frozen=True)
class FragmentAnswer:
    """A fragment was taken: either the session wants more from `next_offset`, or it is
    complete and `item` is the new driveItem (`created`: a new item, not a replaced one)."""

    next_offset: int | None = None
    item: dict | None = None
    created: bool = False


class OneDrive:
    """One user's OneDrive, for writing. Thread-safe as its GraphClient is."""

    def __init__(self, client: GraphClient, drive_id: str):
        self.client = client
        self.drive_id = drive_id
        self._base = f"/drives/{quote(drive_id, safe='')}"

    def _item_path(self, item_id: str) -> str:
        return f"{self._base}/items/{quote(item_id, safe='')}"

    def _child_path(self, parent_id: str, name: str) -> str:
        # address by parent id, never by a path from the root: path addressing breaks deep trees
        return f"{self._item_path(parent_id)}:/{quote(name, safe='')}:"

    # -- reading ---------------------------------------------------------------------------
    def root(self) -> dict:
        return self.client.get(f"{self._base}/root")

    def item(self, item_id: str) -> dict:
        return self.client.get(self._item_path(item_id))

    def child(self, parent_id: str, name: str) -> dict | None:
        """The item called `name` in the folder `parent_id`, or None."""
        try:
            return self.client.get(self._child_path(parent_id, name))
        except NotFound:
            return None

    # -- folders ---------------------------------------------------------------------------
    def create_folder(
        self,
        parent_id: str,
        name: str,
        conflict: str = "fail",
        *,
        created: dt.datetime | None = None,
        modified: dt.datetime | None = None,
    ) -> tuple[dict, bool]:
        """(the folder, whether it is new). With `fail`, an existing folder of that name is
        looked up and returned (a mkdir that may run twice); a *file* of that name is NameTaken
        with `existing` set. (`replace` would return an existing folder too, but answers 409
        when a file has the name: an open Graph bug; `rename` makes "name 1".)"""
        body: dict = {"name": name, "folder": {}, CONFLICT_KEY: _behavior(conflict)}
        times = file_system_info(created, modified)
        if times:
            body["fileSystemInfo"] = times
        try:
            return self.client.request(
                "POST", f"{self._item_path(parent_id)}/children", json=body
            ).json(), True
        except GraphError as error:
            if error.status != 409:
                raise
            existing = self.child(parent_id, name)
            if existing is not None and "folder" in existing:
                return existing, False
            raise NameTaken(
                f"An item named {name!r} is where Kodo wanted to create a folder.",
                existing=existing,
                code=error.code,
                message=error.message,
                status=409,
                request_id=error.request_id,
            ) from None

    # -- small files -------------------------------------------------------------------------
    def upload_small(self, parent_id: str, name: str, data: bytes, conflict: str) -> dict:
        """A simple upload (PUT content): Kodo uses it for empty files only (see the module)."""
        try:
            response = self.client.request(
                "PUT",
                f"{self._child_path(parent_id, name)}/content",
                params={CONFLICT_KEY: _behavior(conflict)},
                data=bytes(data),
                headers={"Content-Type": "application/octet-stream"},
            )
        except GraphError as error:
            raise _name_taken(error) from None
        return response.json()

    def replace_small(self, item_id: str, data: bytes) -> dict:
        """New content for the existing file `item_id` by a simple upload."""
        return self.client.request(
            "PUT",
            f"{self._item_path(item_id)}/content",
            data=bytes(data),
            headers={"Content-Type": "application/octet-stream"},
        ).json()

    def set_times(
        self, item_id: str, created: dt.datetime | None, modified: dt.datetime | None
    ) -> dict:
        times = file_system_info(created, modified)
        if not times:
            return self.item(item_id)
        return self.client.request(
            "PATCH", self._item_path(item_id), json={"fileSystemInfo": times}
        ).json()

    def delete(self, item_id: str) -> None:
        try:
            self.client.request("DELETE", self._item_path(item_id))
        except NotFound:
            pass

    # -- upload sessions ---------------------------------------------------------------------
    def create_session(
        self,
        parent_id: str,
        name: str,
        conflict: str,
        *,
        created: dt.datetime | None = None,
        modified: dt.datetime | None = None,
    ) -> UploadSession:
        """A session for a new file `name` in `parent_id`, carrying its times. Always sends
        conflictBehavior (the documented default is fail, users have seen replace). NameTaken
        when `fail` and the name exists (or, in OneDrive for Business, another session of that
        name is in progress)."""
        item: dict = {CONFLICT_KEY: _behavior(conflict), "name": name}
        times = file_system_info(created, modified)
        if times:
            item["fileSystemInfo"] = times
        try:
            answer = self.client.request(
                "POST",
                f"{self._child_path(parent_id, name)}/createUploadSession",
                json={"item": item},
            ).json()
        except GraphError as error:
            raise _name_taken(error) from None
        return _session(answer)

    def create_session_for(
        self,
        item_id: str,
        *,
        created: dt.datetime | None = None,
        modified: dt.datetime | None = None,
    ) -> UploadSession:
        """A session that gives the existing file `item_id` new content (and times)."""
        item: dict = {CONFLICT_KEY: "replace"}
        times = file_system_info(created, modified)
        if times:
            item["fileSystemInfo"] = times
        answer = self.client.request(
            "POST", f"{self._item_path(item_id)}/createUploadSession", json={"item": item}
        ).json()
        return _session(answer)

    def session_offset(self, url: str) -> int | None:
        """Where the session wants the next byte (the start of its first nextExpectedRanges
        entry; -1 when it expects nothing more), or None when the session is gone."""
        try:
            status = self.client.request("GET", url, authenticated=False).json()
        except NotFound:
            return None
        ranges = status.get("nextExpectedRanges") or []
        if not ranges:
            return -1
        return int(str(ranges[0]).split("-")[0] or 0)

    def put_fragment(self, url: str, data, start: int, total: int) -> FragmentAnswer:
        """PUT bytes start..start+len(data)-1 of `total` to the session (`data`: bytes, or a
        seekable file of known length). The caller keeps to the rules (fragments in order, each
        a multiple of 320 KiB but the last, under 60 MiB); GraphClient sends a fragment again
        when it was refused with 429/5xx (after Retry-After) or cut by a reset."""
        end = start + len(data) - 1
        try:
            response = self.client.request(
                "PUT",
                url,
                data=data,
                headers={"Content-Range": f"bytes {start}-{end}/{total}"},
                authenticated=False,
            )
        except NotFound as error:
            raise SessionGone(str(error), code=error.code, status=404) from None
        except GraphError as error:
            if error.status == 416:
                raise RangeNotExpected(
                    str(error), code=error.code, message=error.message, status=416
                ) from None
            raise _name_taken(error) from None
        body = response.json() if response.content else {}
        if response.status_code in (200, 201):
            return FragmentAnswer(item=body, created=response.status_code == 201)
        ranges = body.get("nextExpectedRanges") or []
        next_offset = int(str(ranges[0]).split("-")[0] or 0) if ranges else start + len(data)
        return FragmentAnswer(next_offset=next_offset)

    def cancel_session(self, url: str) -> None:
        """DELETE an abandoned session (its bytes are dropped); a session already gone is
        fine, and a failure only leaves it to expire."""
        try:
            self.client.request("DELETE", url, authenticated=False)
        except GraphError:
            pass


def _behavior(conflict: str) -> str:
    if conflict not in CONFLICT_BEHAVIORS:
        raise ValueError(f"conflictBehavior is one of {CONFLICT_BEHAVIORS}, not {conflict!r}")
    return conflict


def _name_taken(error: GraphError) -> GraphError:
    if error.status == 409:
        return NameTaken(
            str(error),
            code=error.code,
            message=error.message,
            status=409,
            request_id=error.request_id,
        )
    return error


def _session(answer: dict) -> UploadSession:
    expires = answer.get("expirationDateTime")
    when = None
    if expires:
        try:
            when = dt.datetime.fromisoformat(str(expires).replace("Z", "+00:00"))
        except ValueError:
            when = None
    return UploadSession(url=answer["uploadUrl"], expires=when)
