import pytest

from backups.store import CorruptChunk, OrgKeys, chunk_id, open_, seal
from backups.store.crypto import FORMAT_VERSION, HEADER_SIZE


def test_seal_then_open_round_trips(keys, rng):
    for data in (b"", b"x", rng.randbytes(100_000), b"compressible " * 10_000):
        cid = chunk_id(keys, data)
        assert open_(keys, cid, seal(keys, cid, data)) == data


def test_compressible_data_is_stored_smaller(keys):
    data = b"the same words again " * 50_000
    assert len(seal(keys, chunk_id(keys, data), data)) < len(data) // 10


def test_each_seal_uses_a_fresh_nonce(keys):
    cid = chunk_id(keys, b"data")
    assert seal(keys, cid, b"data") != seal(keys, cid, b"data")


def test_chunk_ids_are_keyed_per_organization(keys):
    other = OrgKeys.generate()
    assert chunk_id(keys, b"same content") == chunk_id(keys, b"same content")
    assert chunk_id(keys, b"same content") != chunk_id(other, b"same content")


@pytest.mark.parametrize("position", [0, 1, HEADER_SIZE - 1, HEADER_SIZE, HEADER_SIZE + 50, -1])
def test_a_flipped_byte_is_detected(keys, rng, position):
    data = rng.randbytes(1000)
    cid = chunk_id(keys, data)
    blob = bytearray(seal(keys, cid, data))
    blob[position] ^= 0x01
    with pytest.raises(CorruptChunk, match=cid):
        open_(keys, cid, bytes(blob))


@pytest.mark.parametrize("keep", [0, 5, HEADER_SIZE + 15, -1])
def test_a_truncated_blob_is_detected(keys, rng, keep):
    data = rng.randbytes(1000)
    cid = chunk_id(keys, data)
    blob = seal(keys, cid, data)
    with pytest.raises(CorruptChunk):
        open_(keys, cid, blob[:keep])


def test_a_blob_under_another_id_is_detected(keys):
    first, second = chunk_id(keys, b"first"), chunk_id(keys, b"second")
    with pytest.raises(CorruptChunk):
        open_(keys, second, seal(keys, first, b"first"))


def test_a_blob_sealed_under_the_wrong_id_is_detected(keys):
    # Even a key holder cannot make an id open to content it does not name.
    wrong = chunk_id(keys, b"something else")
    with pytest.raises(CorruptChunk, match="does not match its id"):
        open_(keys, wrong, seal(keys, wrong, b"content"))


def test_another_organization_cannot_open_the_blob(keys):
    cid = chunk_id(keys, b"secret")
    with pytest.raises(CorruptChunk):
        open_(OrgKeys.generate(), cid, seal(keys, cid, b"secret"))


def test_an_unknown_format_version_is_rejected(keys):
    cid = chunk_id(keys, b"data")
    blob = seal(keys, cid, b"data")
    with pytest.raises(CorruptChunk, match="format version"):
        open_(keys, cid, bytes([FORMAT_VERSION + 1]) + blob[1:])


def test_keys_round_trip_through_bytes_and_hide_in_repr(keys):
    assert OrgKeys.from_bytes(keys.to_bytes()) == keys
    assert keys.data_key.hex() not in repr(keys)
    assert keys.data_key != keys.id_key


def test_keys_from_a_master_secret_are_deterministic_and_distinct():
    master = bytes(range(32))
    keys = OrgKeys.from_master(master)
    assert keys == OrgKeys.from_master(master)
    assert keys.data_key != keys.id_key
    assert keys != OrgKeys.from_master(bytes(range(1, 33)))


@pytest.mark.parametrize("raw", [b"", b"\x01" + bytes(63), b"\x02" + bytes(64)])
def test_bad_serialized_keys_are_rejected(raw):
    with pytest.raises(ValueError):
        OrgKeys.from_bytes(raw)


def test_keys_must_be_32_bytes():
    with pytest.raises(ValueError):
        OrgKeys(data_key=bytes(16), id_key=bytes(32))


def _seal_format_1(keys, cid, data):
    """A blob as Kodo wrote it before format 2: zstd always, header version | nonce."""
    import os

    import zstandard
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    header = bytes([1]) + os.urandom(12)
    compressed = zstandard.ZstdCompressor(level=3, write_content_size=True).compress(data)
    aad = bytes([1]) + cid.encode("ascii")
    return header + AESGCM(keys.data_key).encrypt(header[1:], compressed, aad)


@pytest.mark.parametrize("kind", ["random", "compressible", "empty"])
def test_format_1_blobs_still_open(keys, rng, kind):
    data = {"random": rng.randbytes(100_000), "compressible": b"words " * 20_000, "empty": b""}[
        kind
    ]
    cid = chunk_id(keys, data)
    assert open_(keys, cid, _seal_format_1(keys, cid, data)) == data


def test_a_format_1_blob_is_still_authenticated(keys, rng):
    data = rng.randbytes(1000)
    cid = chunk_id(keys, data)
    blob = bytearray(_seal_format_1(keys, cid, data))
    blob[20] ^= 0x01
    with pytest.raises(CorruptChunk, match="authentication"):
        open_(keys, cid, bytes(blob))
    with pytest.raises(CorruptChunk):  # a format 1 blob relabeled format 2
        open_(keys, cid, bytes([FORMAT_VERSION, 0]) + _seal_format_1(keys, cid, data)[1:])


def test_incompressible_data_is_stored_raw(keys, rng):
    from backups.store.crypto import TAG_SIZE

    data = rng.randbytes(300_000)  # like JPEG, MP4, zip: zstd would save nothing
    blob = seal(keys, chunk_id(keys, data), data)
    assert blob[0] == FORMAT_VERSION and blob[1] == 0
    assert len(blob) == HEADER_SIZE + len(data) + TAG_SIZE
    assert open_(keys, chunk_id(keys, data), bytes(blob)) == data


def test_compressible_data_is_flagged_compressed(keys):
    data = b"the same words again " * 50_000
    blob = seal(keys, chunk_id(keys, data), data)
    assert blob[1] == 1
    assert open_(keys, chunk_id(keys, data), bytes(blob)) == data


def test_a_flipped_compression_flag_is_detected(keys, rng):
    data = rng.randbytes(1000)
    cid = chunk_id(keys, data)
    blob = bytearray(seal(keys, cid, data))
    blob[1] = 1
    with pytest.raises(CorruptChunk, match="authentication"):
        open_(keys, cid, bytes(blob))
    blob[1] = 0x80
    with pytest.raises(CorruptChunk, match="unknown flags"):
        open_(keys, cid, bytes(blob))
