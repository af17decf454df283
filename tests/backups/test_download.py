"""One backed-up file downloaded from the portal: streamed from the store, byte for byte, with
the headers a browser or curl needs to name, check and resume it (Range), under the
organization's download policy, and written to the audit log."""

import logging
import os
from urllib.parse import unquote

import pytest
from django.urls import reverse
from django.utils.http import http_date

from backups.downloads import Unreadable
from backups.models import FileVersion
from backups.store import ChunkStore
from organizations.models import AuditEvent
from tests.backups.stored_files import MODIFIED, back_up, corrupt_chunk, make_user, version_url


def body(response) -> bytes:
    return b"".join(response.streaming_content)


@pytest.fixture
def user(world, store_dir):
    return make_user(world.org_a)


@pytest.fixture
def big(user):
    """A file of several chunks (FastCDC: 512 KiB to 4 MiB each)."""
    content = os.urandom(5 * 1024 * 1024 + 12345)
    version = back_up(user, {"/Data/big.bin": content})["/Data/big.bin"]
    assert len(version.chunks) >= 3
    return version, content


def test_it_downloads_a_backed_up_file_byte_for_byte(tenant, admin_a_client):
    tenant.backup()
    version = FileVersion.objects.filter(is_folder=False, size__gt=0).first()
    expected = tenant.sim.file_bytes(tenant.users[1].graph_id, version.item_id)

    response = admin_a_client.get(version_url(version))

    assert response.status_code == 200
    assert body(response) == expected
    assert response["Content-Length"] == str(len(expected))
    assert response["ETag"] == f'"{version.quickxorhash}"'
    assert response["Accept-Ranges"] == "bytes"
    assert response["Last-Modified"] == http_date(version.modified_datetime.timestamp())
    assert response["Content-Type"] == (version.mime_type or "application/octet-stream")
    assert response["Content-Disposition"].startswith("attachment;")


def test_a_multi_chunk_file_is_whole(user, big, admin_a_client):
    version, content = big
    response = admin_a_client.get(version_url(version))
    assert body(response) == content


def test_ranges_across_chunk_boundaries_get_206(user, big, admin_a_client):
    version, content = big
    size = len(content)
    boundaries = []
    offset = 0
    for _, chunk_size in version.chunks[:-1]:
        offset += chunk_size
        boundaries.append(offset)
    first = boundaries[0]
    cases = [
        (f"bytes={first - 1}-{first}", first - 1, first + 1),  # the last byte of one, the next
        (f"bytes={first}-{first}", first, first + 1),
        (f"bytes={first - 10}-{boundaries[1] + 9}", first - 10, boundaries[1] + 10),
        (f"bytes={boundaries[-1]}-", boundaries[-1], size),
        ("bytes=0-0", 0, 1),
        ("bytes=-100", size - 100, size),
        (f"bytes=100-{size * 2}", 100, size),  # clamped to the end
        (f"bytes=-{size * 2}", 0, size),
    ]
    for header, start, stop in cases:
        response = admin_a_client.get(version_url(version), headers={"Range": header})
        assert response.status_code == 206, header
        assert body(response) == content[start:stop], header
        assert response["Content-Range"] == f"bytes {start}-{stop - 1}/{size}", header
        assert response["Content-Length"] == str(stop - start), header


def test_a_range_reads_only_the_chunks_it_needs(user, big, admin_a_client, monkeypatch):
    version, content = big
    read = []
    original = ChunkStore.get_chunk

    def counting(self, chunk_id):
        read.append(chunk_id)
        return original(self, chunk_id)

    monkeypatch.setattr(ChunkStore, "get_chunk", counting)
    last_id, last_size = version.chunks[-1]
    response = admin_a_client.get(version_url(version), headers={"Range": f"bytes=-{last_size}"})

    assert body(response) == content[-last_size:]
    assert read == [last_id]


def test_a_range_beyond_the_end_is_416(user, big, admin_a_client):
    version, content = big
    for header in (f"bytes={len(content)}-", f"bytes={len(content) + 5}-{len(content) + 9}"):
        response = admin_a_client.get(version_url(version), headers={"Range": header})
        assert response.status_code == 416
        assert response["Content-Range"] == f"bytes */{len(content)}"


def test_ranges_it_does_not_serve_get_the_whole_file(user, big, admin_a_client):
    version, content = big
    for header in ("bytes=0-1,5-6", "bytes=9-3", "items=0-5", "bytes=abc", "bytes=-"):
        response = admin_a_client.get(version_url(version), headers={"Range": header})
        assert response.status_code == 200, header
        assert body(response) == content, header


def test_if_range_resumes_only_the_same_content(user, big, admin_a_client):
    version, content = big
    url = version_url(version)
    same = {"Range": "bytes=10-", "If-Range": f'"{version.quickxorhash}"'}
    dated = {"Range": "bytes=10-", "If-Range": http_date(MODIFIED.timestamp())}
    changed = {"Range": "bytes=10-", "If-Range": '"another-etag"'}
    older = {"Range": "bytes=10-", "If-Range": http_date(MODIFIED.timestamp() - 60)}

    assert admin_a_client.get(url, headers=same).status_code == 206
    assert admin_a_client.get(url, headers=dated).status_code == 206
    for headers in (changed, older):
        response = admin_a_client.get(url, headers=headers)
        assert response.status_code == 200
        assert body(response) == content


def test_head_sends_the_headers_without_reading_the_store(user, big, admin_a_client):
    version, content = big
    response = admin_a_client.head(version_url(version))
    assert response.status_code == 200
    assert response["Content-Length"] == str(len(content))
    assert not AuditEvent.objects.filter(action="download_file").exists()


def test_an_empty_file_downloads_empty(user, admin_a_client):
    version = back_up(user, {"/empty.txt": b""})["/empty.txt"]
    response = admin_a_client.get(version_url(version))
    assert (response.status_code, body(response), response["Content-Length"]) == (200, b"", "0")
    assert admin_a_client.get(version_url(version), headers={"Range": "bytes=0-"}).status_code == (
        416
    )


def test_any_unicode_name_is_in_content_disposition(user, admin_a_client):
    name = 'Zażółć gęślą jaźń — 報告書 "final" 😀.txt'
    version = back_up(user, {f"/Dokumenty/{name}": b"hello"})[f"/Dokumenty/{name}"]

    header = admin_a_client.get(version_url(version))["Content-Disposition"]

    assert header.startswith('attachment; filename="')
    fallback = header.split('filename="', 1)[1].split('"', 1)[0]
    assert fallback.isascii() and fallback.startswith("Zazoc gesla jazn")
    assert unquote(header.split("filename*=UTF-8''", 1)[1]) == name
    assert header.isascii()


def test_the_mime_type_is_kept_when_it_is_one(user, admin_a_client):
    versions = back_up(user, {"/a.txt": b"a", "/b.bin": b"b"})
    FileVersion.objects.filter(pk=versions["/b.bin"].pk).update(mime_type="text/html\r\nX-A: b")
    assert admin_a_client.get(version_url(versions["/a.txt"]))["Content-Type"] == "text/plain"
    response = admin_a_client.get(version_url(versions["/b.bin"]))
    assert response["Content-Type"] == "application/octet-stream"


def test_a_download_is_an_audit_entry(user, big, admin_a_client, world):
    version, content = big
    body(admin_a_client.get(version_url(version)))
    body(admin_a_client.get(version_url(version), headers={"Range": "bytes=0-99"}))

    whole, part = AuditEvent.objects.filter(action="download_file").order_by("pk")
    assert whole.actor == world.admin_a and whole.organization == world.org_a
    assert "/Data/big.bin" in whole.message and "Ada Lovelace" in whole.message
    assert "ada@alpha.example" in whole.message and "5.0\xa0MB" in whole.message
    assert version.first_run.finished_at.astimezone().strftime("%Y") in whole.message
    assert "bytes 0-99" in part.message


def test_when_the_policy_is_off_nobody_downloads_through_the_portal(
    user, big, client, world, admin_a_client
):
    version, _ = big
    world.org_a.admins_may_download = False
    world.org_a.save()
    for account in (world.admin_a, world.server_admin):
        client.force_login(account)
        response = client.get(version_url(version))
        assert response.status_code == 403
        assert "Your server administrator does not allow administrators of Alpha University" in (
            response.content.decode().replace("&#x27;", "'")
        )
        assert "you can restore it to Microsoft 365" in response.content.decode()
    assert not AuditEvent.objects.filter(action="download_file").exists()


def test_a_version_of_another_user_is_404(user, big, admin_a_client, world):
    version, _ = big
    other = make_user(world.org_a, name="Other")
    url = reverse(
        "backups:download-version",
        args=[world.org_a.code, other.configuration.code, other.graph_id, version.pk],
    )
    assert admin_a_client.get(url).status_code == 404


def test_another_organizations_admin_gets_404(user, big, admin_b_client):
    version, _ = big
    assert admin_b_client.get(version_url(version)).status_code == 404


def test_a_lost_version_is_refused_before_streaming(user, big, admin_a_client):
    version, _ = big
    FileVersion.objects.filter(pk=version.pk).update(damage=FileVersion.Damage.LOST)
    response = admin_a_client.get(version_url(version))
    assert response.status_code == 409
    assert "it is lost" in response.content.decode()


def test_a_chunk_that_fails_mid_stream_cuts_the_download(user, big, admin_a_client, world, caplog):
    version, content = big
    corrupt_chunk(world.org_a, version.chunks[1][0])
    response = admin_a_client.get(version_url(version))
    assert response.status_code == 200  # headers went before the damage was found

    received = []
    with caplog.at_level(logging.ERROR, logger="backups.downloads"):
        with pytest.raises(Unreadable):
            for piece in response.streaming_content:
                received.append(piece)

    assert b"".join(received) == content[: version.chunks[0][1]]
    assert "/Data/big.bin" in caplog.text and version.chunks[1][0][:12] in caplog.text
