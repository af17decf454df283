import pytest
from django.core.management import CommandError, call_command

from backups.models import BackupRun, FileVersion


@pytest.fixture(autouse=True)
def fast_retries(settings):
    settings.KODO_BACKUP_DOWNLOAD_THREADS = 4


def test_wait_backs_up_one_user_here(tenant, capsys):
    email = tenant.users[1].email
    call_command("backup", "--organization", str(tenant.organization.code), "--user", email,
                 "--wait")

    run = BackupRun.objects.get()
    assert (run.status, run.trigger) == ("succeeded", "command")
    assert FileVersion.objects.filter(is_folder=False).count() == len(tenant.sim_files())
    assert f"{email}): Succeeded" in capsys.readouterr().out


def test_without_wait_it_queues_every_user_of_a_configuration(
        tenant, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        call_command("backup", "--organization", tenant.organization.name,
                     "--configuration", tenant.service.name)
    assert BackupRun.objects.filter(status="queued").count() == len(tenant.users) == len(
        callbacks)


def test_it_names_what_it_cannot_find(tenant):
    with pytest.raises(CommandError, match="No organization"):
        call_command("backup", "--organization", "Nope")
    with pytest.raises(CommandError, match="no Office 365 configuration named"):
        call_command("backup", "--organization", tenant.organization.name,
                     "--configuration", "Nope")
    with pytest.raises(CommandError, match="No user"):
        call_command("backup", "--organization", tenant.organization.name, "--user", "x@y.z")
