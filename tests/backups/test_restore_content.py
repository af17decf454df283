"""A version's bytes as fragments from any offset (resuming mid-file reads from the chunk the
offset is in, not from the start), and a fragment as a request body (rewound and counted)."""

import io

import pytest

from backups.restore.content import VersionContent
from backups.restore.upload import _CountedBody


class Store:
    """The one ChunkStore method VersionContent uses; remembers which chunks were read."""

    def __init__(self, chunks):
        self.chunks = dict(chunks)
        self.read = []

    def read_stream(self, chunk_ids):
        for chunk_id in chunk_ids:
            self.read.append(chunk_id)
            yield self.chunks[chunk_id]


@pytest.fixture
def content():
    chunks = [("a", b"A" * 700), ("b", b"B" * 500), ("c", b"C" * 300)]
    store = Store(chunks)
    return VersionContent(store, [[chunk_id, len(data)] for chunk_id, data in chunks]), store


def joined(parts):
    return b"".join(bytes(part) for part in parts)


def test_fragments_in_order_read_each_chunk_once(content):
    version, store = content
    fragments = [joined(version.read(offset, 400)) for offset in range(0, 1500, 400)]
    assert b"".join(fragments) == b"A" * 700 + b"B" * 500 + b"C" * 300
    assert [len(f) for f in fragments] == [400, 400, 400, 300]
    assert store.read == ["a", "b", "c"]


@pytest.mark.parametrize(("offset", "first_read"), [(0, "a"), (700, "b"), (950, "b"), (1300, "c")])
def test_a_resume_starts_at_the_chunk_holding_the_offset(content, offset, first_read):
    version, store = content
    data = joined(version.read(offset, 10_000))
    assert data == (b"A" * 700 + b"B" * 500 + b"C" * 300)[offset:]
    assert store.read[0] == first_read


def test_going_back_reopens_the_stream(content):
    version, store = content
    version.read(0, 1000)
    assert joined(version.read(100, 50)) == b"A" * 50
    assert store.read == ["a", "b", "a"]


def test_a_body_made_of_parts_is_sent_whole_and_counted_each_time():
    body = _CountedBody([memoryview(b"hello "), memoryview(b"world")])
    assert len(body) == 11
    assert b"".join(bytes(b) for b in iter(lambda: body.read(4), b"")) == b"hello world"
    body.seek(0)  # GraphClient rewinds a body it sends again
    buffer = bytearray(3)
    assert body.readinto(buffer) == 3 and bytes(buffer) == b"hel"
    assert bytes(body.read()) == b"lo "
    assert body.tell() == 6 and body.sent == 11 + 6
    assert body.seek(0, io.SEEK_END) == 11 and body.read() == b""
