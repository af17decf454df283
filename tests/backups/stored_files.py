"""Backed-up files made directly, for the download and export tests: FileVersion rows whose
content is really in the organization's chunk store (the `store_dir` fixture's folder), without
a backup against m365sim."""

import datetime as dt
import uuid

from django.urls import reverse

from backups.models import BackupRun, DriveState, FileVersion
from backups.storage import store_for
from tests.factories import make_configuration, make_finished_run, make_users

MODIFIED = dt.datetime(2026, 3, 14, 15, 9, 26, tzinfo=dt.UTC)


def make_user(organization, name="Ada Lovelace"):
    """A directory user of a new configuration of `organization` (its graph id a UUID, as the
    URLs want)."""
    user = make_users(organization, 1, make_configuration(organization, name=f"C {uuid.uuid4()}"))[
        0
    ]
    user.display_name = name
    user.mail = "ada@alpha.example"
    user.save(update_fields=["display_name", "mail"])
    return user


def back_up(user, files: dict, *, run: BackupRun | None = None, modified=None) -> dict:
    """A finished run of `user` (or `run`) whose drive then holds `files` ({path: bytes, or
    None for a folder}; parent folders are made). Returns {path: FileVersion}. `modified` is a
    datetime, or {path: datetime}, default MODIFIED."""
    organization = user.configuration.organization
    drive, _ = DriveState.objects.get_or_create(
        organization=organization, directory_user=user, drive_id=f"drive-{user.pk}"
    )
    run = run or make_finished_run(user)
    store = store_for(organization)
    entries = dict(files)
    present = set(
        FileVersion.objects.filter(drive=drive, end_run__isnull=True).values_list("path", flat=True)
    )
    for path in files:
        parts = path.strip("/").split("/")
        for depth in range(1, len(parts)):
            folder = "/" + "/".join(parts[:depth])
            if folder not in present:
                entries.setdefault(folder, None)
    versions = {}
    for path in sorted(entries):
        content = entries[path]
        when = modified.get(path, MODIFIED) if isinstance(modified, dict) else modified
        parent, _, name = path.rpartition("/")
        fields = {
            "organization": organization,
            "drive": drive,
            "item_id": f"item{path}",
            "parent_id": f"item{parent}",
            "path": path,
            "name": name,
            "first_run": run,
            "modified_datetime": when or MODIFIED,
            "created_datetime": when or MODIFIED,
        }
        if content is None:
            versions[path] = FileVersion.objects.create(is_folder=True, **fields)
            continue
        stored = store.write_stream([content]) if content else None
        versions[path] = FileVersion.objects.create(
            size=len(content),
            quickxorhash=stored.quickxorhash if stored else "AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            mime_type="text/plain" if path.endswith(".txt") else "",
            chunks=[[ref.id, ref.size] for ref in stored.chunks] if stored else [],
            **fields,
        )
    return versions


def version_url(version: FileVersion) -> str:
    user = version.drive.directory_user
    return reverse(
        "backups:download-version",
        args=[
            user.configuration.organization.code,
            user.configuration.code,
            user.graph_id,
            version.pk,
        ],
    )


def zip_url(user) -> str:
    return reverse(
        "backups:download-zip",
        args=[user.configuration.organization.code, user.configuration.code, user.graph_id],
    )


def corrupt_chunk(organization, chunk_id):
    """Flip one stored bit of a chunk: reading it back then fails authentication."""
    store = store_for(organization)
    key = store.chunk_key(chunk_id)
    data = bytearray(store.backend.get(key))
    data[len(data) // 2] ^= 0x01
    store.backend.put(key, bytes(data))
