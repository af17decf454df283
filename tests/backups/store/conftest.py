import itertools
import random

import pytest

from backups.store import ChunkStore, FilesystemBackend, OrgKeys, S3Backend
from backups.store.packs import PackingFilesystemBackend


@pytest.fixture(scope="session")
def moto_endpoint():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


S3_CREDENTIALS = {
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
    "region_name": "us-east-1",
}


_bucket_numbers = itertools.count()


@pytest.fixture
def s3_backend(moto_endpoint):
    import boto3

    bucket = f"kodo-test-{next(_bucket_numbers)}"
    boto3.client("s3", endpoint_url=moto_endpoint, **S3_CREDENTIALS).create_bucket(Bucket=bucket)
    return S3Backend(bucket, "store", endpoint_url=moto_endpoint, **S3_CREDENTIALS)


@pytest.fixture
def fs_backend(tmp_path):
    return FilesystemBackend(tmp_path / "store")


@pytest.fixture
def packed_backend(tmp_path):
    """Packs objects under 4 KiB, so tests exercise both its packs and its loose files."""
    return PackingFilesystemBackend(tmp_path / "packed", pack_below=4096)


@pytest.fixture(params=["filesystem", "packed", "s3"])
def backend(request):
    return request.getfixturevalue(
        f"{'fs' if request.param == 'filesystem' else request.param}_backend"
    )


@pytest.fixture
def keys():
    return OrgKeys.generate()


@pytest.fixture
def store(fs_backend, keys):
    return ChunkStore(fs_backend, keys, "org-a")


@pytest.fixture
def rng():
    return random.Random(20240601)
