"""Kodo's chunk store: content-addressed, compressed, encrypted chunks behind a small backend
interface. Pure Python (no Django): the Django layer owns key wrapping, rows and settings."""

from .backends import Backend, FilesystemBackend, S3Backend, open_backend
from .chunking import Chunker
from .crypto import chunk_id, open_, seal
from .errors import CorruptChunk, ObjectNotFound, StoreError
from .keys import OrgKeys
from .quickxorhash import QuickXorHash, quickxorhash
from .store import ChunkRef, ChunkStore, StreamResult

__all__ = [
    "Backend",
    "ChunkRef",
    "ChunkStore",
    "Chunker",
    "CorruptChunk",
    "FilesystemBackend",
    "ObjectNotFound",
    "OrgKeys",
    "QuickXorHash",
    "S3Backend",
    "StoreError",
    "StreamResult",
    "chunk_id",
    "open_",
    "open_backend",
    "quickxorhash",
    "seal",
]
