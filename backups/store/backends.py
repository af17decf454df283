"""Where sealed chunks live: one small interface, a filesystem and an S3-compatible implementation.

Keys are relative, slash-separated paths such as "orgs/<namespace>/chunks/ab/<id>". A put is
atomic: readers see the whole object or nothing. Objects are immutable once written (a put over an
existing key replaces it whole), and delete of a missing key is not an error.
"""

import os
import re
import threading
from collections.abc import Iterator
from typing import Protocol
from urllib.parse import unquote, urlparse

from .errors import ObjectNotFound

_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_\-]+(?:[./][A-Za-z0-9_\-]+)*$")
_TEMP_PREFIX = ".tmp-"
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)


class Backend(Protocol):
    def put(self, key: str, data: bytes, *, sync: bool = True) -> None: ...
    def sync(self) -> None: ...
    def get(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...
    def iter_keys(self, prefix: str = "") -> Iterator[str]: ...
    def size(self, key: str) -> int: ...


def check_key(key: str) -> str:
    if not _KEY_PATTERN.match(key) or ".." in key:
        raise ValueError(
            f"Invalid store key {key!r}: use letters, digits, '-', '_', '.' and '/' separators."
        )
    return key


class FilesystemBackend:
    """Objects are files under root; writes go to a temp file, fsync, rename, then fsync the dir.

    put(..., sync=False) leaves the directory fsyncs (of the renamed object and of any folder it
    created) to the next sync(): the object's data is fsynced before its rename either way, but
    the rename is durable only once sync() returns. A caller records what points to such objects
    only after sync(); sync() fsyncs every directory any thread left pending (so an object another
    thread stored, and this one found already there, is covered too), each once however many
    objects it received, and off the writing threads (the engine syncs once per group commit)."""

    def __init__(self, root):
        self.root = os.path.abspath(os.fspath(root))
        os.makedirs(self.root, exist_ok=True)
        self._unsynced: set[str] = set()  # directories whose new entries are not fsynced yet
        self._unsynced_lock = threading.Lock()
        self._sync_lock = threading.Lock()  # one sync at a time: a second waits for the first

    def __repr__(self) -> str:
        return f"FilesystemBackend({self.root!r})"

    def _path(self, key: str) -> str:
        return os.path.join(self.root, *check_key(key).split("/"))

    def put(self, key: str, data, *, sync: bool = True) -> None:
        path = self._path(key)
        directory, name = os.path.split(path)
        # One writer thread writes one object at a time: its process and thread ids make the temp
        # name unique without mkstemp's random retries (a leftover of a crashed writer is reused).
        temp_path = os.path.join(
            directory, f"{_TEMP_PREFIX}{os.getpid()}-{threading.get_native_id()}-{name}"
        )
        created = []
        try:
            fd = os.open(temp_path, _TEMP_FLAGS, 0o600)
        except FileNotFoundError:  # a new folder (no stat per put: usually it exists)
            created = self._make_directories(directory, sync=sync)
            fd = os.open(temp_path, _TEMP_FLAGS, 0o600)
        try:
            try:
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp_path, path)
        except BaseException:
            try:
                os.unlink(temp_path)
            except FileNotFoundError:
                pass
            raise
        if sync:
            _fsync_dir(directory)
        else:
            with self._unsynced_lock:
                self._unsynced.update(created)
                self._unsynced.add(directory)

    def sync(self) -> None:
        """Make every put(..., sync=False) so far durable: fsync each directory they changed,
        once however many objects it received. (One syncfs() per batch instead measured no
        faster here, and would flush everything else on the filesystem too.)"""
        with self._sync_lock:
            with self._unsynced_lock:
                pending, self._unsynced = sorted(self._unsynced), set()
            for position, directory in enumerate(pending):  # parents sort before children
                try:
                    _fsync_dir(directory)
                except BaseException:
                    with self._unsynced_lock:
                        self._unsynced.update(pending[position:])
                    raise

    def _make_directories(self, directory: str, sync: bool = True) -> list[str]:
        """Create the missing folders and fsync each parent, so a new folder survives a crash
        together with the object renamed into it. With sync=False the parents to fsync are
        returned instead."""
        missing = []
        while directory != self.root and not os.path.isdir(directory):
            missing.append(directory)
            directory = os.path.dirname(directory)
        parents = []
        for folder in reversed(missing):
            try:
                os.mkdir(folder)
            except FileExistsError:
                continue  # another writer made it
            if sync:
                _fsync_dir(os.path.dirname(folder))
            else:
                parents.append(os.path.dirname(folder))
        return parents

    def get(self, key: str) -> bytes:
        try:
            with open(self._path(key), "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise ObjectNotFound(f"No object {key!r} in {self.root}.") from None

    def exists(self, key: str) -> bool:
        return os.path.isfile(self._path(key))

    def size(self, key: str) -> int:
        try:
            return os.stat(self._path(key)).st_size
        except FileNotFoundError:
            raise ObjectNotFound(f"No object {key!r} in {self.root}.") from None

    def delete(self, key: str) -> None:
        try:
            os.unlink(self._path(key))
        except FileNotFoundError:
            pass

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        """Keys starting with prefix, in sorted order; temp files of unfinished puts are skipped."""
        base = prefix.rpartition("/")[0]
        top = os.path.join(self.root, *base.split("/")) if base else self.root
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            relative = os.path.relpath(dirpath, self.root).replace(os.sep, "/")
            relative = "" if relative == "." else relative + "/"
            # Prune directories that cannot hold matching keys.
            # (and folders no key can name, such as a packing backend's .packs).
            dirnames[:] = [
                d
                for d in dirnames
                if not d.startswith(".") and _may_match(relative + d + "/", prefix)
            ]
            for name in sorted(filenames):
                key = relative + name
                if not name.startswith(_TEMP_PREFIX) and key.startswith(prefix):
                    yield key


def _may_match(directory: str, prefix: str) -> bool:
    return directory.startswith(prefix) or prefix.startswith(directory)


def _write_all(fd: int, data) -> None:
    with memoryview(data) as view:
        while view:
            view = view[os.write(fd, view) :]


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class S3Backend:
    """Objects in an S3-compatible bucket under prefix. A PUT is atomic in S3 by itself."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        client=None,
        **boto_kwargs,
    ):
        if client is None:
            import boto3  # local: only S3 deployments pay its import (about 0.7 s)

            client = boto3.client("s3", endpoint_url=endpoint_url, **boto_kwargs)
        self.client = client  # boto3 clients are thread-safe
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    def __repr__(self) -> str:
        return f"S3Backend(bucket={self.bucket!r}, prefix={self.prefix!r})"

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def put(self, key: str, data, *, sync: bool = True) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=bytes(data))

    def sync(self) -> None:
        """Nothing to do: a PUT is durable when it returns."""

    def get(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            raise ObjectNotFound(
                f"No object {key!r} in s3://{self.bucket}/{self.prefix}."
            ) from None

    def _head(self, key: str):
        from botocore.exceptions import ClientError  # local: loaded with boto3, for S3 only

        try:
            return self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def exists(self, key: str) -> bool:
        return self._head(key) is not None

    def size(self, key: str) -> int:
        head = self._head(key)
        if head is None:
            raise ObjectNotFound(f"No object {key!r} in s3://{self.bucket}/{self.prefix}.")
        return head["ContentLength"]

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
            for item in page.get("Contents", []):
                yield item["Key"][len(self.prefix) :]


def _filesystem_backend(path: str, pack_below: int):
    if pack_below <= 0:
        return FilesystemBackend(path)
    from .packs import PackingFilesystemBackend  # local: .packs imports this module

    return PackingFilesystemBackend(path, pack_below=pack_below)


def open_backend(url: str, pack_below: int = 1 << 20) -> Backend:
    """A backend for KODO_STORE_URL: "file:///abs/path", a plain path, or "s3://bucket/prefix".

    A folder store packs objects under `pack_below` bytes into pack files (packs.py; 0 does not).

    For S3 the endpoint comes from KODO_S3_ENDPOINT_URL (unset means AWS) and the credentials
    from the standard AWS environment variables or config files.
    """
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ValueError(f"Store URL {url!r} names no bucket: use s3://bucket/prefix.")
        endpoint = os.environ.get("KODO_S3_ENDPOINT_URL") or None
        return S3Backend(parsed.netloc, parsed.path.strip("/"), endpoint_url=endpoint)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ValueError(f"Store URL {url!r} has a host; use file:///absolute/path.")
        return _filesystem_backend(unquote(parsed.path), pack_below)
    if parsed.scheme == "" or (len(parsed.scheme) == 1 and os.name == "nt"):
        return _filesystem_backend(url, pack_below)
    raise ValueError(
        f"Store URL {url!r} has an unknown scheme: use a path, file:///path or s3://bucket/prefix."
    )
