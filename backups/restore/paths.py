"""Where restored items go in the target OneDrive.

    NEW_FOLDER  /Kodo Restore 2026-12-03 07-10/<relative path>   (the default: nothing existing
                is touched; the name is the organization's local time when the restore starts)
    FOLDER      <the folder's path>/<relative path>
    ORIGINAL    the version's own path (folders as they were)

The relative path keeps the structure below the selection: a picked folder keeps its own name
(backups.selection.Picked).
"""

import datetime as dt
import zoneinfo

from django.utils import timezone

NEW_FOLDER_FORMAT = "Kodo Restore %Y-%m-%d %H-%M"
# What OneDrive refuses in a name (docs/GRAPH.md §5, m365sim/graph_uploads.check_name).
INVALID_CHARACTERS = set('"*:<>?/\\|')
MAX_NAME = 255
MAX_PATH = 400  # OneDrive's limit on a decoded path


def new_folder_name(organization, now: dt.datetime | None = None) -> str:
    try:
        zone: dt.tzinfo = zoneinfo.ZoneInfo(organization.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = dt.UTC
    return (now or timezone.now()).astimezone(zone).strftime(NEW_FOLDER_FORMAT)


def name_problem(name: str) -> str | None:
    """Why OneDrive would refuse `name` as a file or folder name (None: it is fine)."""
    if not name:
        return "a name is empty"
    if name != name.strip():
        return f"{name!r} begins or ends with a space"
    if name.endswith("."):
        return f"{name!r} ends with a dot"
    if any(c in INVALID_CHARACTERS or ord(c) < 32 or ord(c) == 127 for c in name):
        return f'{name!r} holds a character OneDrive refuses (" * : < > ? / \\ | or a control one)'
    if len(name) > MAX_NAME:
        return f"{name[:40]!r}… is longer than {MAX_NAME} characters"
    return None


def clean_folder_path(text: str) -> str:
    """A folder path typed by a person ("Restored/March", "/Restored/March/") as
    "/Restored/March"; ValueError saying what is wrong. The root ("/") is allowed."""
    text = (text or "").strip().replace("\\", "/")
    parts = [part for part in text.split("/") if part != ""]
    for part in parts:
        problem = name_problem(part)
        if problem:
            raise ValueError(f"The folder path cannot be used: {problem}.")
    path = "/" + "/".join(parts)
    if len(path) > MAX_PATH:
        raise ValueError(f"The folder path is longer than {MAX_PATH} characters.")
    return path if parts else "/"


def destination(where: str, folder: str) -> str:
    """The folder the selection goes into, from the root ("" for the root itself)."""
    if where == "new_folder":
        return "/" + folder
    if where == "folder":
        return "" if folder in ("", "/") else folder
    return ""


def target_path(where: str, base: str, version_path: str, relative_path: str) -> str:
    if where == "original":
        return version_path
    return f"{base}/{relative_path}"


def parent_and_name(path: str) -> tuple[str, str]:
    """("/a/b", "c.txt") for "/a/b/c.txt"; ("", "c.txt") for "/c.txt"."""
    parent, _, name = path.rpartition("/")
    return parent, name
