"""Export a user's backed-up OneDrive (or part of it) to a zip file or a folder, from the database
and the chunk store alone: the way out when Microsoft 365 or the portal is not there.

    manage.py export --organization ORG --user EMAIL [--at RUN_CODE_OR_ISO_TIME]
        [--path PATH ...] [--deleted-only] --output FILE.zip|DIR

It is the server operator's tool, so the download policy does not apply; it is still an audit
entry. A file whose content cannot be read back is named, left out, and the command goes on,
then exits 1.
"""

import getpass
import os
import tempfile
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.template.defaultfilters import filesizeformat

from backups.commands import add_selection_arguments, selection_from_arguments
from backups.downloads import (
    Unreadable,
    ZipMember,
    ZipPlan,
    build_zip,
    describe_selection,
    plan_zip,
    read_chunks,
    record_download,
)
from backups.selection import select
from backups.storage import store_for

PROGRESS_SECONDS = 2.0


class Command(BaseCommand):
    help = (
        "Export a user's backed-up OneDrive, or some paths of it, as of a backup, to a zip file "
        "(OUTPUT ends with .zip) or a new folder. Needs only the database and the store."
    )

    def add_arguments(self, parser):
        add_selection_arguments(parser, "export")
        parser.add_argument(
            "--output", required=True, help="A .zip file to write, or a folder to create."
        )

    def handle(self, *args, path, deleted_only, output, **options):
        org, directory_user, run = selection_from_arguments(options)
        target = Path(output)
        as_zip = target.suffix.lower() == ".zip"
        _check_target(target, as_zip)

        whole_drive = not path and not deleted_only
        plan = plan_zip(
            select(
                directory_user, run, paths=path, whole_drive=whole_drive, deleted_only=deleted_only
            )
        )
        if not plan.members and not plan.left_out:
            raise CommandError(
                f"The backup of {directory_user} as of {run.finished_at:%Y-%m-%d %H:%M} UTC "
                "holds none of the paths asked for."
            )
        self.stdout.write(
            f"Exporting {plan.files} files ({filesizeformat(plan.bytes)}) of {directory_user} "
            f"as of {run.finished_at:%Y-%m-%d %H:%M} UTC to {target}"
        )
        progress = _Progress(self.stdout, plan)
        failures = [f"{source}: {why}" for source, why in plan.left_out]
        if as_zip:
            failures += self._write_zip(plan, org, target, progress)
        else:
            failures += self._write_folder(plan, org, target, progress)

        record_download(
            organization=org,
            directory_user=directory_user,
            what=describe_selection(paths=path, whole_drive=whole_drive, deleted_only=deleted_only)
            + f" (manage.py export to {target.name})",
            as_of=run.finished_at,
            size=progress.bytes,
            files=progress.files,
            actor_email=f"manage.py export ({_os_user()})",
            action="export",
        )
        self.stdout.write(
            f"Exported {progress.files} files ({filesizeformat(progress.bytes)}) to {target}."
        )
        if failures:
            for failure in failures:
                self.stderr.write(f"Not exported: {failure}")
            raise CommandError(
                f"{len(failures)} files could not be read back from the store and were left "
                "out (named above); run manage.py verify_store to check the store.",
                returncode=1,
            )

    def _write_zip(self, plan: ZipPlan, org, target: Path, progress) -> list[str]:
        """The zip of the web's DOWNLOAD, written to a temporary name, fsynced, renamed."""
        stream = build_zip(plan, store_for(org), time_zone=org.time_zone, skip_unreadable=True)
        progress.total_bytes = len(stream)
        with _durable_file(target) as out:
            for piece in stream:
                out.write(piece)
                progress.tick_bytes(len(piece))
        failed = {error.path for error in stream.unreadable}
        exported = [m for m in plan.members if not m.is_folder and m.source_path not in failed]
        progress.files, progress.bytes = len(exported), sum(m.size for m in exported)
        return [f"{error.path}: {error.reason}" for error in stream.unreadable]

    def _write_folder(self, plan: ZipPlan, org, target: Path, progress) -> list[str]:
        """Each file written to a temporary name beside it, fsynced, renamed, its time set;
        folders' times are set last (writing into a folder changes its time)."""
        store = store_for(org)
        target.mkdir(parents=True, exist_ok=True)
        failures = []
        folders: list[ZipMember] = []
        for member in plan.members:
            destination = target / member.name
            if member.is_folder:
                destination.mkdir(parents=True, exist_ok=True)
                folders.append(member)
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            try:
                _write_file(member, store, destination, progress)
            except Unreadable as error:  # named at the end; the export goes on
                failures.append(f"{error.path}: {error.reason}")
                continue
            progress.file_done()
        for member in sorted(folders, key=lambda m: m.name.count("/"), reverse=True):
            _set_time(target / member.name, member)
        _fsync_folder(target)
        return failures


class _Progress:
    """Prints files and bytes done at most every PROGRESS_SECONDS."""

    def __init__(self, out, plan: ZipPlan):
        self.out = out
        self.total_files = plan.files
        self.total_bytes = plan.bytes
        self.files = 0
        self.bytes = 0
        self.shown = time.monotonic()

    def tick_bytes(self, count: int) -> None:
        self.bytes += count
        self._maybe_show()

    def file_done(self) -> None:
        self.files += 1
        self._maybe_show()

    def _maybe_show(self) -> None:
        now = time.monotonic()
        if now - self.shown >= PROGRESS_SECONDS:
            self.shown = now
            files = f"{self.files} / {self.total_files} files, " if self.files else ""
            self.out.write(
                f"  {files}{filesizeformat(self.bytes)} / {filesizeformat(self.total_bytes)}"
            )


def _check_target(target: Path, as_zip: bool) -> None:
    if as_zip:
        if target.exists():
            raise CommandError(f"{target} exists: remove it or choose another name.")
        if not target.parent.is_dir():
            raise CommandError(f"The folder {target.parent} does not exist.")
    elif target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise CommandError(f"{target} exists and is not an empty folder: choose a new folder.")


class _durable_file:
    """A file written under a temporary name in its final folder, fsynced and renamed into
    place only when complete (removed if anything fails)."""

    def __init__(self, target: Path):
        self.target = target

    def __enter__(self):
        descriptor, name = tempfile.mkstemp(
            dir=self.target.parent, prefix=f".{self.target.name}.", suffix=".partial"
        )
        self.temporary = Path(name)
        self.file = os.fdopen(descriptor, "wb")
        return self.file

    def __exit__(self, kind, error, trace):
        try:
            if kind is None:
                self.file.flush()
                os.fsync(self.file.fileno())
            self.file.close()
            if kind is None:
                os.replace(self.temporary, self.target)
                _fsync_folder(self.target.parent)
        finally:
            if self.temporary.exists():
                self.temporary.unlink()
        return False


def _write_file(member: ZipMember, store, destination: Path, progress) -> None:
    with _durable_file(destination) as out:
        for piece in read_chunks(member.chunks, store, path=member.source_path):
            out.write(piece)
            progress.tick_bytes(len(piece))
    _set_time(destination, member)


def _set_time(path: Path, member: ZipMember) -> None:
    if member.modified is not None:
        stamp = member.modified.timestamp()
        os.utime(path, (stamp, stamp))


def _fsync_folder(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no name for this uid: the audit entry says so
        return "unknown user"
