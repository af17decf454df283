"""A selection, a folder or a whole OneDrive downloaded as one streamed zip (zipstream-ng):
opened back with zipfile, its names, folders, times and bytes are the backup's, and its
Content-Length, sent before the first byte, is its exact length."""

import io
import logging
import os
import struct
import zipfile
import zoneinfo
from urllib.parse import unquote

import pytest

from backups.downloads import (
    LEFT_OUT_NAME,
    Unreadable,
    ZipMember,
    ZipPlan,
    build_zip,
)
from backups.models import BackupRun, FileVersion
from organizations.models import AuditEvent
from tests.backups.stored_files import back_up, corrupt_chunk, make_user, zip_url

# MODIFIED (2026-03-14 15:09:26 UTC) in organization A's time zone, Europe/Warsaw.
MODIFIED_IN_WARSAW = (2026, 3, 14, 16, 9, 26)


@pytest.fixture
def user(world, store_dir):
    return make_user(world.org_a)


def download(client, user, **fields) -> tuple:
    response = client.post(zip_url(user), fields)
    assert response.status_code == 200, response.content[:500]
    data = b"".join(response.streaming_content)
    assert response["Content-Length"] == str(len(data))
    assert response["Content-Type"] == "application/zip"
    return response, zipfile.ZipFile(io.BytesIO(data))


def contents(archive) -> dict:
    return {
        info.filename: None if info.is_dir() else archive.read(info) for info in archive.infolist()
    }


def test_a_whole_onedrive_as_of_a_backup(tenant, admin_a_client):
    run = tenant.backup()
    user = tenant.users[1]
    expected = tenant.sim_files(user)

    _, archive = download(admin_a_client, user, at=str(run.code), whole_drive="1")

    files = {n: d for n, d in contents(archive).items() if d is not None}
    assert set(files) == {path[1:] for path in expected}
    for path, info in expected.items():
        assert files[path[1:]] == tenant.sim.file_bytes(user.graph_id, info["id"])
    folders = {i["path"][1:] + "/" for i in tenant.sim.list_items(user.graph_id) if i["folder"]}
    assert folders and folders <= set(contents(archive))
    assert archive.testzip() is None


def test_folders_are_kept_empty_ones_too_with_their_times(user, admin_a_client):
    spreadsheet = os.urandom(3 * 1024 * 1024)
    back_up(
        user,
        {
            "/Docs/Reports/q3.xlsx": spreadsheet,
            "/Docs/Reports/Empty": None,
            "/Docs/readme.md": b"# read me",
            "/Docs/empty.txt": b"",
            "/Other/x.txt": b"not picked",
        },
    )

    _, archive = download(admin_a_client, user, path=["/Docs"])

    assert contents(archive) == {
        "Docs/": None,
        "Docs/Reports/": None,
        "Docs/Reports/Empty/": None,
        "Docs/Reports/q3.xlsx": spreadsheet,
        "Docs/empty.txt": b"",
        "Docs/readme.md": b"# read me",
    }
    assert {info.date_time for info in archive.infolist()} == {MODIFIED_IN_WARSAW}


def test_local_headers_carry_the_same_times(user, admin_a_client):
    back_up(user, {"/a/b.txt": b"bee"})
    response = admin_a_client.post(zip_url(user), {"path": ["/a"]})
    data = b"".join(response.streaming_content)
    archive = zipfile.ZipFile(io.BytesIO(data))
    for info in archive.infolist():
        dostime, dosdate = struct.unpack_from("<HH", data, info.header_offset + 10)
        seconds = (dostime & 0x1F) * 2
        assert (
            (dosdate >> 9) + 1980,
            (dosdate >> 5) & 0xF,
            dosdate & 0x1F,
            dostime >> 11,
            (dostime >> 5) & 0x3F,
            seconds,
        ) == MODIFIED_IN_WARSAW


def test_names_are_utf8(user, admin_a_client):
    name = "Zażółć/報告書 😀.txt"
    back_up(user, {f"/{name}": b"x"})
    _, archive = download(admin_a_client, user, whole_drive="1")
    info = archive.getinfo(name)
    assert info.flag_bits & 0x800  # the UTF-8 flag
    assert archive.read(info) == b"x"


def test_a_picked_file_or_version_is_named_by_itself(user, admin_a_client, world):
    first = back_up(user, {"/Docs/b.txt": b"first"})["/Docs/b.txt"]
    later_run = BackupRun.objects.create(
        organization=world.org_a,
        configuration=user.configuration,
        directory_user=user,
        status=BackupRun.Status.SUCCEEDED,
        finished_at=first.first_run.finished_at,
    )
    FileVersion.objects.filter(pk=first.pk).update(end_run=later_run)
    second = back_up(user, {"/Docs/b.txt": b"second"}, run=later_run)["/Docs/b.txt"]

    _, archive = download(admin_a_client, user, version=[first.pk, second.pk])

    assert contents(archive) == {"b.txt": b"first", "b (2).txt": b"second"}


def test_the_zip_is_named_after_the_user_and_the_restore_point(user, admin_a_client):
    back_up(user, {"/a.txt": b"a"})
    run = BackupRun.objects.get(directory_user=user)
    local = run.finished_at.astimezone(zoneinfo.ZoneInfo("Europe/Warsaw"))

    response, _ = download(admin_a_client, user, whole_drive="1")

    header = response["Content-Disposition"]
    assert unquote(header.split("filename*=UTF-8''")[1]) == (
        f"Ada Lovelace {local:%Y-%m-%d %H-%M}.zip"
    )


def test_a_file_known_unreadable_is_left_out_and_named_in_the_zip(user, admin_a_client):
    versions = back_up(user, {"/good.txt": b"good", "/lost.txt": b"lost"})
    FileVersion.objects.filter(pk=versions["/lost.txt"].pk).update(damage=FileVersion.Damage.LOST)

    _, archive = download(admin_a_client, user, whole_drive="1")

    assert set(contents(archive)) == {"good.txt", LEFT_OUT_NAME}
    assert "/lost.txt: a chunk of this version is damaged" in archive.read(LEFT_OUT_NAME).decode()


def test_a_chunk_that_fails_mid_zip_cuts_the_zip(user, admin_a_client, world, caplog):
    versions = back_up(user, {"/a.txt": b"first file", "/b.bin": os.urandom(2 * 1024 * 1024)})
    corrupt_chunk(world.org_a, versions["/b.bin"].chunks[0][0])

    response = admin_a_client.post(zip_url(user), {"whole_drive": "1"})
    received = []
    with caplog.at_level(logging.ERROR, logger="backups.downloads"):
        with pytest.raises(Unreadable):
            for piece in response.streaming_content:
                received.append(piece)

    assert len(b"".join(received)) < int(response["Content-Length"])
    assert "/b.bin" in caplog.text


def test_a_zip_download_is_an_audit_entry(user, admin_a_client, world):
    back_up(user, {"/Docs/a.txt": b"12345", "/Docs/b.txt": b"678", "/c.txt": b"9"})
    download(admin_a_client, user, path=["/Docs", "/c.txt"])
    download(admin_a_client, user, whole_drive="1")

    first, second = AuditEvent.objects.filter(action="download_zip").order_by("pk")
    assert first.actor == world.admin_a and first.organization == world.org_a
    assert "2 paths (as a zip)" in first.message and "3 files, 9\xa0bytes" in first.message
    assert "Ada Lovelace" in first.message and "Europe/Warsaw" in first.message
    assert "the whole OneDrive" in second.message


def test_when_the_policy_is_off_the_zip_is_refused(user, client, world):
    back_up(user, {"/a.txt": b"a"})
    world.org_a.admins_may_download = False
    world.org_a.save()
    for account in (world.admin_a, world.server_admin):
        client.force_login(account)
        response = client.post(zip_url(user), {"whole_drive": "1"})
        assert response.status_code == 403
        assert "you can restore it to Microsoft 365" in response.content.decode()
    assert not AuditEvent.objects.filter(action="download_zip").exists()


@pytest.mark.parametrize(
    ("fields", "status", "text"),
    [
        ({}, 400, "Tick the files and folders"),
        ({"path": ["", " "]}, 400, "Tick the files and folders"),
        ({"version": ["x1"]}, 400, "not a number"),
        ({"whole_drive": "1", "at": "not a date"}, 400, "neither a backup"),
        ({"whole_drive": "1", "at": "1999-01-01"}, 400, "at or before 1999-01-01"),
        ({"path": ["/nothing/here"]}, 404, "holds none of the selected"),
    ],
)
def test_bad_selections_get_a_clear_page(user, admin_a_client, fields, status, text):
    back_up(user, {"/a.txt": b"a"})
    response = admin_a_client.post(zip_url(user), fields)
    assert response.status_code == status
    assert text in response.content.decode().replace("&#x27;", "'")


def test_it_is_post_only_and_another_organizations_admin_gets_404(user, client, world):
    back_up(user, {"/a.txt": b"a"})
    client.force_login(world.admin_a)
    assert client.get(zip_url(user)).status_code == 405
    client.force_login(world.admin_b)
    assert client.post(zip_url(user), {"whole_drive": "1"}).status_code == 404


class _Zeros:
    """A store whose every chunk is 4 MiB of zeros: a 4 GiB file costs no memory."""

    block = bytes(4 * 1024 * 1024)

    def get_chunk(self, chunk_id):
        return self.block


class _SparseFile(io.RawIOBase):
    """The zip as zipfile reads it, from its first and last bytes kept and zeros between (the
    member's content is all zeros)."""

    def __init__(self, head: bytes, tail: bytes, size: int):
        self.head, self.tail, self.size, self.position = head, tail, size, 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def seek(self, offset, whence=0):
        self.position = {0: 0, 1: self.position, 2: self.size}[whence] + offset
        return self.position

    def tell(self):
        return self.position

    def readinto(self, buffer):
        count = min(len(buffer), self.size - self.position)
        data = bytearray(count)
        for start, piece in ((0, self.head), (self.size - len(self.tail), self.tail)):
            low, high = max(self.position, start), min(self.position + count, start + len(piece))
            if low < high:
                data[low - self.position : high - self.position] = piece[low - start : high - start]
        buffer[:count] = data
        self.position += count
        return count


def test_a_member_over_4_gib_uses_zip64():
    size = 1025 * 4 * 1024 * 1024  # 4 GiB + 4 MiB
    chunks = tuple((f"{n:064x}", 4 * 1024 * 1024) for n in range(1025))
    plan = ZipPlan(members=[ZipMember("big.bin", "/big.bin", False, size, None, chunks)])
    stream = build_zip(plan, _Zeros())

    head, tail, total = b"", b"", 0
    for piece in stream:
        total += len(piece)
        if len(head) < 4096:
            head += piece[:4096]
        tail = (tail + piece)[-65536:] if len(piece) < 65536 else piece[-65536:]

    assert total == len(stream)
    archive = zipfile.ZipFile(_SparseFile(head, tail, total))
    (info,) = archive.infolist()
    assert (info.filename, info.file_size, info.compress_type) == ("big.bin", size, 0)
    assert info.extract_version >= 45  # zip64
    with archive.open(info) as member:
        assert member.read(1024) == bytes(1024)
