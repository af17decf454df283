import time

import pytest

from o365.models import DirectoryJob
from tests.factories import sim_configuration


def wait_for(predicate, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.django_db(transaction=True)
def test_import_users_runs_on_a_real_celery_worker(world, m365sim, celery_worker, client):
    configuration = sim_configuration(world.org_a, m365sim)
    client.force_login(world.admin_a)
    client.post(f"/o/{world.org_a.code}/services/office365/users/{configuration.code}/import/")
    job = DirectoryJob.objects.get()
    assert wait_for(lambda: DirectoryJob.objects.get(pk=job.pk).status in ("succeeded", "failed"))
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert job.created > 0 and job.pages_read > 0
