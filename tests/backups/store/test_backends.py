import os
import threading

import pytest

from backups.store import FilesystemBackend, ObjectNotFound, S3Backend, open_backend
from backups.store.backends import check_key


def test_put_get_size_exists_delete(backend):
    backend.put("a/b/one", b"hello")
    assert backend.get("a/b/one") == b"hello"
    assert backend.exists("a/b/one")
    assert backend.size("a/b/one") == 5
    backend.put("a/b/one", b"replaced")
    assert backend.get("a/b/one") == b"replaced"
    backend.delete("a/b/one")
    assert not backend.exists("a/b/one")
    backend.delete("a/b/one")  # deleting a missing object is not an error


def test_missing_objects_raise_object_not_found(backend):
    with pytest.raises(ObjectNotFound):
        backend.get("nope/x")
    with pytest.raises(ObjectNotFound):
        backend.size("nope/x")
    assert not backend.exists("nope/x")


def test_iter_keys_lists_by_prefix(backend):
    for key in ["orgs/a/chunks/00/x1", "orgs/a/chunks/ff/x2", "orgs/ab/chunks/00/y", "top"]:
        backend.put(key, b".")
    assert sorted(backend.iter_keys("orgs/a/")) == ["orgs/a/chunks/00/x1", "orgs/a/chunks/ff/x2"]
    assert sorted(backend.iter_keys("orgs/a")) == [
        "orgs/a/chunks/00/x1",
        "orgs/a/chunks/ff/x2",
        "orgs/ab/chunks/00/y",
    ]
    assert len(list(backend.iter_keys())) == 4
    assert list(backend.iter_keys("missing/")) == []


@pytest.mark.parametrize(
    "key", ["", "/abs", "a//b", "../escape", "a/../b", "a/.tmp-x", "a\\b", "a/"]
)
def test_unsafe_keys_are_rejected(backend, key):
    with pytest.raises(ValueError):
        backend.put(key, b"x")


def test_filesystem_put_leaves_no_temp_files(fs_backend):
    for i in range(5):
        fs_backend.put(f"d/obj{i}", b"data")
    assert sorted(os.listdir(os.path.join(fs_backend.root, "d"))) == [f"obj{i}" for i in range(5)]


class Boom(Exception):
    pass


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_crash_mid_put_leaves_no_visible_object(fs_backend, monkeypatch, failing):
    fs_backend.put("d/old", b"old content")

    def crash(*args, **kwargs):
        raise Boom()

    monkeypatch.setattr(os, failing, crash)
    with pytest.raises(Boom):
        fs_backend.put("d/new", b"new content")
    with pytest.raises(Boom):
        fs_backend.put("d/old", b"new content")
    monkeypatch.undo()

    assert not fs_backend.exists("d/new")
    assert fs_backend.get("d/old") == b"old content"
    assert os.listdir(os.path.join(fs_backend.root, "d")) == ["old"]
    assert list(fs_backend.iter_keys("d/")) == ["d/old"]


def test_a_failing_write_leaves_no_visible_object(fs_backend):
    with pytest.raises(TypeError):
        fs_backend.put("d/new", object())  # not bytes-like: the write itself raises
    assert not fs_backend.exists("d/new")
    assert os.listdir(os.path.join(fs_backend.root, "d")) == []


def test_iter_keys_skips_leftover_temp_files(fs_backend):
    fs_backend.put("d/real", b"x")
    with open(os.path.join(fs_backend.root, "d", ".tmp-crashed"), "wb") as f:
        f.write(b"partial")
    assert list(fs_backend.iter_keys()) == ["d/real"]


def test_a_put_writes_over_what_a_crashed_writer_left_under_its_temp_name(fs_backend):
    fs_backend.put("d/first", b"x")
    leftover = os.path.join(
        fs_backend.root, "d", f".tmp-{os.getpid()}-{threading.get_native_id()}-obj"
    )
    with open(leftover, "wb") as f:
        f.write(b"a longer partial write")
    fs_backend.put("d/obj", b"whole")
    assert fs_backend.get("d/obj") == b"whole"
    assert sorted(os.listdir(os.path.join(fs_backend.root, "d"))) == ["first", "obj"]


def test_open_backend_reads_paths_and_file_urls(tmp_path):
    assert open_backend(str(tmp_path / "a")).root == str(tmp_path / "a")
    assert open_backend(f"file://{tmp_path}/b").root == str(tmp_path / "b")


def test_open_backend_reads_s3_urls(monkeypatch, moto_endpoint):
    monkeypatch.setenv("KODO_S3_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    backend = open_backend("s3://kodo-from-url/some/prefix/")
    assert isinstance(backend, S3Backend)
    assert (backend.bucket, backend.prefix) == ("kodo-from-url", "some/prefix/")
    backend.client.create_bucket(Bucket="kodo-from-url")
    backend.put("k", b"v")
    assert (
        backend.client.get_object(Bucket="kodo-from-url", Key="some/prefix/k")["Body"].read()
        == b"v"
    )


@pytest.mark.parametrize("url", ["s3:///prefix", "ftp://host/x", "file://host/x"])
def test_open_backend_rejects_bad_urls(url):
    with pytest.raises(ValueError):
        open_backend(url)


def test_check_key_accepts_store_keys():
    key = "orgs/org-a/chunks/ab/cd/" + "ab" * 32
    assert check_key(key) == key


def test_filesystem_backend_creates_its_root(tmp_path):
    FilesystemBackend(tmp_path / "new" / "root").put("x", b"1")
    assert (tmp_path / "new" / "root" / "x").read_bytes() == b"1"


def test_new_folders_are_fsynced_in_their_parents(fs_backend, monkeypatch):
    from backups.store import backends

    synced = []
    real = backends._fsync_dir
    monkeypatch.setattr(backends, "_fsync_dir", lambda d: (synced.append(d), real(d)))
    fs_backend.put("orgs/a/chunks/ab/cd/abcd", b"x")
    root = fs_backend.root
    assert synced == [
        root,
        f"{root}/orgs",
        f"{root}/orgs/a",
        f"{root}/orgs/a/chunks",
        f"{root}/orgs/a/chunks/ab",
        f"{root}/orgs/a/chunks/ab/cd",
    ]
    synced.clear()
    fs_backend.put("orgs/a/chunks/ab/cd/abce", b"y")
    assert synced == [f"{root}/orgs/a/chunks/ab/cd"]  # only the rename, folders exist


def test_a_deferred_put_fsyncs_no_directory_until_sync(fs_backend, monkeypatch):
    from backups.store import backends

    synced = []
    monkeypatch.setattr(backends, "_fsync_dir", synced.append)
    fs_backend.put("orgs/a/chunks/ab/cd/abcd", b"x", sync=False)
    fs_backend.put("orgs/a/chunks/ab/ce/abce", b"y", sync=False)
    fs_backend.put("orgs/a/chunks/ab/ce/abcf", b"z", sync=False)
    assert synced == []  # the data was fsynced (os.fsync) before the rename; the renames not yet
    assert fs_backend.get("orgs/a/chunks/ab/cd/abcd") == b"x"
    fs_backend.sync()
    root = fs_backend.root
    # each changed directory once (new folders in their parents, objects in theirs), parents first
    assert synced == [
        root,
        f"{root}/orgs",
        f"{root}/orgs/a",
        f"{root}/orgs/a/chunks",
        f"{root}/orgs/a/chunks/ab",
        f"{root}/orgs/a/chunks/ab/cd",
        f"{root}/orgs/a/chunks/ab/ce",
    ]
    synced.clear()
    fs_backend.sync()
    assert synced == []  # nothing pending


def test_a_deferred_put_still_fsyncs_its_data_before_the_rename(fs_backend, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd)))
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b)))
    fs_backend.put("d/obj", b"x", sync=False)
    assert events == ["fsync", "replace"]


def test_a_failed_sync_keeps_the_directories_pending(fs_backend, monkeypatch):
    from backups.store import backends

    fs_backend.put("d/obj", b"x", sync=False)

    def fail(directory):
        raise OSError(5, "I/O error")

    monkeypatch.setattr(backends, "_fsync_dir", fail)
    with pytest.raises(OSError):
        fs_backend.sync()
    monkeypatch.undo()
    synced = []
    monkeypatch.setattr(backends, "_fsync_dir", synced.append)
    fs_backend.sync()
    root = fs_backend.root
    assert synced == [root, f"{root}/d"]  # retried
