"""manage.py restore: runs a restore here (--wait) or queues it, prints progress and the result,
and exits non-zero when it cannot start, fails or only partly succeeds."""

import pytest
from django.core.management import CommandError, call_command

from backups.models import FileVersion, RestoreJob
from tests.backups.restore_helpers import files_under


def restore_command(tenant, *args, user=None):
    user = user or tenant.users[1]
    call_command("restore", "--organization", tenant.organization.name, "--user", user.email, *args)


@pytest.fixture
def backed_up(tenant):
    tenant.backup(tenant.users[1])
    return tenant.users[1]


def test_wait_restores_the_whole_onedrive_to_a_new_folder(tenant, backed_up, capsys):
    restore_command(tenant, "--wait")

    out = capsys.readouterr().out
    job = RestoreJob.objects.get()
    assert job.status == RestoreJob.Status.SUCCEEDED and job.trigger == RestoreJob.Trigger.COMMAND
    assert job.requested_by_email.startswith("manage.py restore (")
    assert f"Restore {job.code}: the whole OneDrive of {backed_up}" in out
    assert f"Succeeded: {job.files_total} of {job.files_total} files restored" in out
    kept = FileVersion.objects.current().filter(drive__directory_user=backed_up, is_folder=False)
    assert len(files_under(tenant, backed_up, "/" + job.folder)) == kept.count()


def test_paths_to_the_original_place_skip_what_exists(tenant, backed_up, capsys):
    folder = FileVersion.objects.current().filter(is_folder=True).order_by("path").first().path
    restore_command(tenant, "--path", folder, "--to", "original", "--conflict", "skip", "--wait")

    job = RestoreJob.objects.get()
    assert job.where == RestoreJob.Where.ORIGINAL and job.paths == [folder]
    assert job.status == RestoreJob.Status.SUCCEEDED
    assert job.files_skipped == job.files_total > 0 and job.bytes_uploaded == 0
    assert "skipped (an item of that name existed)" in capsys.readouterr().out


def test_to_another_users_folder(tenant, backed_up):
    other = tenant.users[2]
    restore_command(tenant, "--to", "/From Kodo", "--to-user", other.email, "--wait")

    job = RestoreJob.objects.get()
    assert job.target_user == other and job.folder == "/From Kodo"
    assert job.files_restored == job.files_total
    assert len(files_under(tenant, other, "/From Kodo")) == job.files_total


def test_a_partial_restore_exits_non_zero_and_names_the_failures(tenant, backed_up, capsys):
    damaged = FileVersion.objects.current().filter(is_folder=False).order_by("path").first()
    FileVersion.objects.filter(pk=damaged.pk).update(damage=FileVersion.Damage.LOST)

    with pytest.raises(CommandError, match="partially succeeded"):
        restore_command(tenant, "--wait")

    out = capsys.readouterr().out
    assert f"failed: {damaged.path}: This version cannot be restored" in out


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--to-user", "nobody@nowhere.example"], "No user nobody@nowhere.example"),
        (["--at", "2001-01-01"], "has no completed backup at or before 2001-01-01"),
        (["--path", "/No such thing"], "holds nothing to restore"),
        (["--path", "/x", "--deleted-only"], "not both"),
    ],
)
def test_what_cannot_start_exits_with_the_reason(tenant, backed_up, args, said):
    with pytest.raises(CommandError, match=said):
        restore_command(tenant, *args, "--wait")
    assert not RestoreJob.objects.exists()


def test_a_target_without_onedrive_exits_with_the_reason(tenant, backed_up):
    nobody = tenant.users[-1]
    with pytest.raises(CommandError, match="has no OneDrive"):
        restore_command(tenant, "--to-user", nobody.email, "--wait")


@pytest.mark.django_db(transaction=True)  # as in production: sent when the row commits
def test_without_wait_it_is_queued_for_the_workers(tenant, backed_up, capsys, monkeypatch):
    from backups.tasks import run_restore

    sent = []
    monkeypatch.setattr(run_restore, "apply_async", lambda args, **kw: sent.append(args))
    restore_command(tenant, "--to", "original", "--conflict", "replace")

    job = RestoreJob.objects.get()
    assert sent == [(job.pk, job.organization_id)]
    assert job.status == RestoreJob.Status.QUEUED and job.what == RestoreJob.What.DRIVE
    assert job.conflict == RestoreJob.Conflict.REPLACE and job.sent_at is not None
    assert "Queued for the workers" in capsys.readouterr().out
