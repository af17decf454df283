"""manage.py export: a user's backup as of a restore point, written to a zip (the portal's zip
writer) or a folder, from the database and the store alone (no Microsoft 365); the download
policy does not apply, the audit log still records it; unreadable files are named, the rest is
exported, and the command exits 1."""

import io
import os
import zipfile

import pytest
from django.core.management import CommandError, call_command

from backups.models import FileVersion
from organizations.models import AuditEvent
from tests.backups.stored_files import MODIFIED, back_up, corrupt_chunk, make_user

FILES = {
    "/Docs/Reports/q3.xlsx": os.urandom(3 * 1024 * 1024 + 7),
    "/Docs/Reports/Empty": None,
    "/Docs/empty.txt": b"",
    "/Docs/Zażółć 報告書.txt": "gęś".encode(),
    "/top.txt": b"top",
}


@pytest.fixture
def user(world, store_dir):
    user = make_user(world.org_a)
    back_up(user, FILES)
    return user


def export(*args, **options):
    out, err = io.StringIO(), io.StringIO()
    call_command("export", *args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def files_in(folder) -> dict:
    found: dict[str, bytes | None] = {}
    for root, dirs, names in os.walk(folder):
        for name in dirs:
            found["/" + os.path.relpath(os.path.join(root, name), folder)] = None
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                found["/" + os.path.relpath(path, folder)] = handle.read()
    return found


def expected_tree():
    tree = dict(FILES)
    tree["/Docs"] = None
    tree["/Docs/Reports"] = None
    return tree


def test_it_exports_a_whole_onedrive_to_a_folder_with_times(user, tmp_path, world):
    world.org_a.admins_may_download = False  # the operator's tool: the policy does not apply
    world.org_a.save()
    target = tmp_path / "out"

    out, err = export(
        "--organization", "alpha university", "--user", "ADA@alpha.example", "--output", target
    )

    assert files_in(target) == expected_tree()
    for path in FILES:
        assert os.stat(target / path.lstrip("/")).st_mtime == MODIFIED.timestamp()
    assert os.stat(target / "Docs" / "Reports").st_mtime == MODIFIED.timestamp()
    assert not [name for name in files_in(target) if "partial" in name]
    assert "Exporting 4 files" in out and "Exported 4 files" in out and not err


def test_it_exports_paths_to_a_zip_like_the_portal(user, tmp_path, world):
    target = tmp_path / "docs.zip"

    out, _ = export(
        f"--organization={world.org_a.code}",
        "--user=ada@alpha.example",
        "--path=/Docs/Reports",
        "--path=/top.txt",
        f"--output={target}",
    )

    archive = zipfile.ZipFile(target)
    assert {info.filename for info in archive.infolist()} == {
        "Reports/",
        "Reports/Empty/",
        "Reports/q3.xlsx",
        "top.txt",
    }
    assert archive.read("Reports/q3.xlsx") == FILES["/Docs/Reports/q3.xlsx"]
    assert archive.getinfo("top.txt").date_time == (2026, 3, 14, 16, 9, 26)  # Europe/Warsaw
    assert archive.testzip() is None
    assert not [p for p in tmp_path.iterdir() if "partial" in p.name]
    assert "Exported 2 files" in out


def test_an_export_is_an_audit_entry(user, tmp_path, world):
    export("--organization", "Alpha University", "--user", "ada@alpha.example",
           "--output", tmp_path / "x.zip")  # fmt: skip
    event = AuditEvent.objects.get(action="export")
    assert event.organization == world.org_a and event.actor is None
    assert event.actor_email.startswith("manage.py export (")
    assert "the whole OneDrive" in event.message and "Ada Lovelace" in event.message
    assert "4 files" in event.message


def test_deleted_only_exports_what_was_deleted(user, tmp_path):
    top = FileVersion.objects.get(path="/top.txt")
    later = back_up(user, {"/new.txt": b"new"})["/new.txt"].first_run
    FileVersion.objects.filter(pk=top.pk).update(end_run=later, deleted=True)

    export("--organization", "Alpha University", "--user", "ada@alpha.example",
           "--deleted-only", "--output", tmp_path / "d")  # fmt: skip

    assert files_in(tmp_path / "d") == {"/top.txt": b"top"}


def test_an_unreadable_file_is_named_the_rest_exported_and_it_exits_1(user, tmp_path, world):
    broken = FileVersion.objects.get(path="/Docs/Reports/q3.xlsx")
    corrupt_chunk(world.org_a, broken.chunks[1][0])

    for target in (tmp_path / "folder", tmp_path / "all.zip"):
        with pytest.raises(CommandError, match="1 files could not be read") as failure:
            export("--organization", "Alpha University", "--user", "ada@alpha.example",
                   "--output", target)  # fmt: skip
        assert failure.value.returncode == 1

    exported = files_in(tmp_path / "folder")
    assert "/Docs/Reports/q3.xlsx" not in exported and exported["/top.txt"] == b"top"
    assert not [name for name in exported if "partial" in name]
    archive = zipfile.ZipFile(tmp_path / "all.zip")
    assert "Docs/Reports/q3.xlsx" not in archive.namelist()
    assert archive.read("top.txt") == b"top" and archive.testzip() is None


def test_the_unreadable_file_is_named_on_stderr(user, tmp_path, world, capsys):
    broken = FileVersion.objects.get(path="/Docs/Reports/q3.xlsx")
    FileVersion.objects.filter(pk=broken.pk).update(damage=FileVersion.Damage.LOST)
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("export", "--organization", "Alpha University", "--user",
                     "ada@alpha.example", "--output", tmp_path / "f", stderr=err,
                     stdout=io.StringIO())  # fmt: skip
    assert "Not exported: /Docs/Reports/q3.xlsx: a chunk of this version is damaged" in (
        err.getvalue()
    )
    assert (tmp_path / "f" / "top.txt").read_bytes() == b"top"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--organization", "Nope"], "No organization named or coded 'Nope'"),
        (["--user", "nobody@alpha.example"], "No user nobody@alpha.example in Alpha University"),
        (["--at", "2001-01-01"], "no completed backup at or before 2001-01-01"),
        (["--at", "soon"], "neither a backup's code nor a date"),
        (["--path", "/missing"], "holds none of the paths"),
    ],
)
def test_clear_errors(user, tmp_path, arguments, message):
    options = {"--organization": "Alpha University", "--user": "ada@alpha.example"}
    options.update(dict(zip(arguments[::2], arguments[1::2], strict=True)))
    flat = [item for pair in options.items() for item in pair]
    with pytest.raises(CommandError, match=message):
        export(*flat, "--output", tmp_path / "x.zip")
    assert not (tmp_path / "x.zip").exists()


def test_it_does_not_overwrite(user, tmp_path):
    (tmp_path / "there.zip").write_bytes(b"mine")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_bytes(b"mine")
    for target in ("there.zip", "full"):
        with pytest.raises(CommandError, match="exists"):
            export("--organization", "Alpha University", "--user", "ada@alpha.example",
                   "--output", tmp_path / target)  # fmt: skip
    assert (tmp_path / "there.zip").read_bytes() == b"mine"
