"""Folder paths of the target OneDrive, as folder ids: each one found or created once, by parent
id (path addressing breaks deep trees), parents first.

Folders merge: restoring /Documents where a /Documents folder exists fills that folder, whatever
the conflict policy (the policy is about files). A *file* where a folder must go blocks it and
everything below it, unless the policy is "Keep both": then the folder is created beside it
under a new name ("Documents 1"). Thread-safe: the run makes the folders of one depth in
parallel (two threads making the same missing parent is a 409 for one, which then finds it)."""

import datetime as dt
import threading
from dataclasses import dataclass

from o365.onedrive import NameTaken, OneDrive


class FolderBlocked(Exception):
    """The folder cannot be made: the message says why (for its items and those below)."""


@dataclass(frozen=True)
class Made:
    item_id: str
    created: bool  # False: it existed and is used as it is
    name: str  # the name it got (another one when "Keep both" renamed it)


class Folders:
    def __init__(self, drive: OneDrive, *, keep_both: bool):
        self.drive = drive
        self.keep_both = keep_both
        self._ids: dict[str, str] = {}
        self._blocked: dict[str, str] = {}
        self.created: set[str] = set()  # made by this worker: nothing else can be in them yet
        self._lock = threading.Lock()

    def know(self, path: str, item_id: str) -> None:
        """A folder made earlier (by a worker lost since): use it."""
        self._ids[path] = item_id

    def id_of(self, path: str) -> str:
        """The id of the folder at `path` ("" is the root), made if needed."""
        return self.make(path).item_id

    def make(
        self,
        path: str,
        *,
        created: dt.datetime | None = None,
        modified: dt.datetime | None = None,
    ) -> Made:
        """The folder at `path`, its missing parents made first; `created`/`modified` are given
        to the last one if Kodo creates it."""
        if path in ("", "/"):
            if "" not in self._ids:
                self._ids[""] = self.drive.root()["id"]
            return Made(self._ids[""], False, "")
        self._check_blocked(path)
        if path in self._ids:
            return Made(self._ids[path], False, path.rpartition("/")[2])
        parent, _, name = path.rpartition("/")
        parent_id = self.id_of(parent)
        try:
            folder, new = self.drive.create_folder(
                parent_id, name, "fail", created=created, modified=modified
            )
        except NameTaken as taken:
            if not self.keep_both:
                why = (
                    f'A file named "{name}" is where the folder {path} goes; it was left as it '
                    'is (choose "Keep both" to restore beside it).'
                )
                with self._lock:
                    self._blocked[path] = why
                raise FolderBlocked(why) from taken
            folder, new = self.drive.create_folder(
                parent_id, name, "rename", created=created, modified=modified
            )
        with self._lock:
            self._ids[path] = folder["id"]
            if new:
                self.created.add(path)
        return Made(folder["id"], new, folder.get("name") or name)

    def _check_blocked(self, path: str) -> None:
        with self._lock:
            blocked = list(self._blocked.items())
        for folder, why in blocked:
            if path == folder or path.startswith(folder + "/"):
                raise FolderBlocked(why)
