"""Download URLs Graph gives that point outside the configuration's cloud (plain http, a host
the cloud does not allow) fail their file with a clear reason and are never fetched: a
listening socket started here sees no connection."""

import pytest

from backups.models import BackupRun, FileVersion, RunIssue
from tests.o365.test_outgoing_addresses import Listener


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.close()


@pytest.mark.parametrize(
    ("scheme", "reason"),
    [
        ("http", "only https is allowed"),
        ("https", "it is not a sign-in, Graph or download host"),
    ],
)
def test_a_download_url_outside_the_cloud_fails_its_file_and_is_never_fetched(
    tenant, listener, monkeypatch, scheme, reason
):
    # the simulator's Graph now hands out download URLs on the listener
    monkeypatch.setattr(tenant.running, "download_base", f"{scheme}://127.0.0.1:{listener.port}")
    files = tenant.sim_files()

    run = tenant.backup()

    assert run.status == BackupRun.Status.PARTIAL
    failed = RunIssue.objects.filter(run=run, kind=RunIssue.Kind.FAILED)
    assert set(failed.values_list("path", flat=True)) == set(files)
    for message in failed.values_list("message", flat=True):
        assert "Kodo did not connect to" in message and reason in message
    assert not FileVersion.objects.filter(path__in=set(files)).exists()
    assert listener.connections() == 0
