import pytest
from django.core.management import CommandError, call_command
from kombu.exceptions import OperationalError

from backups.models import BackupRun, FileVersion
from backups.tasks import run_backup


@pytest.fixture(autouse=True)
def fast_retries(settings):
    settings.KODO_BACKUP_DOWNLOAD_THREADS = 4


def test_wait_backs_up_one_user_here(tenant, capsys):
    email = tenant.users[1].email
    call_command(
        "backup", "--organization", str(tenant.organization.code), "--user", email, "--wait"
    )

    run = BackupRun.objects.get()
    assert (run.status, run.trigger) == ("succeeded", "command")
    assert FileVersion.objects.filter(is_folder=False).count() == len(tenant.sim_files())
    assert f"{email}): Succeeded" in capsys.readouterr().out


@pytest.fixture
def sent(monkeypatch):
    """The runs handed to the broker."""
    runs = []
    monkeypatch.setattr(run_backup, "apply_async", lambda args, **options: runs.append(args[0]))
    return runs


def test_without_wait_it_queues_every_user_of_a_configuration(tenant, sent, capsys):
    call_command(
        "backup",
        "--organization",
        tenant.organization.name,
        "--configuration",
        tenant.configuration.name,
    )

    queued = BackupRun.objects.filter(status="queued")
    assert queued.count() == len(tenant.users) == len(sent)
    assert all(run.sent_at for run in queued)
    assert f"Queued {len(tenant.users)} backups" in capsys.readouterr().out


def test_asking_again_says_the_backup_is_already_queued(tenant, sent, capsys):
    email = tenant.users[1].email
    for _ in range(2):
        call_command("backup", "--organization", tenant.organization.name, "--user", email)

    out = capsys.readouterr().out
    assert "Queued 1 backups" in out and f"{email}): already queued since " in out
    assert BackupRun.objects.count() == 1 == len(sent)


def test_an_unreachable_queue_is_said_and_the_run_kept_for_later(tenant, monkeypatch):
    def broker_down(args, **options):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(run_backup, "apply_async", broker_down)
    with pytest.raises(CommandError, match="task queue .* is unreachable: 1 of these backups"):
        call_command(
            "backup", "--organization", tenant.organization.name, "--user", tenant.users[1].email
        )

    run = BackupRun.objects.get()
    assert run.status == "queued" and run.sent_at is None  # kodo.jobs.recover_jobs sends it later


def test_it_names_what_it_cannot_find(tenant):
    with pytest.raises(CommandError, match="No organization"):
        call_command("backup", "--organization", "Nope")
    with pytest.raises(CommandError, match="no Office 365 configuration named"):
        call_command(
            "backup", "--organization", tenant.organization.name, "--configuration", "Nope"
        )
    with pytest.raises(CommandError, match="No user"):
        call_command("backup", "--organization", tenant.organization.name, "--user", "x@y.z")


def test_wait_does_not_judge_a_run_another_command_holds(tenant, capsys):
    """Two `backup --wait` at once: the second finds the first's run of the user and leaves it
    to the first; it neither runs it nor exits 1 because of it."""
    from backups.actions import claim_run, start_run

    user = tenant.users[1]
    others, _ = start_run(user, BackupRun.Trigger.COMMAND, enqueue=False)
    assert claim_run(others.pk, others.organization_id).outcome == "claimed"

    call_command(
        "backup", "--organization", tenant.organization.name, "--user", user.email, "--wait"
    )

    assert "already being backed up by another command or worker" in capsys.readouterr().out
    others.refresh_from_db()
    assert others.status == "running" and BackupRun.objects.count() == 1


def test_wait_judges_only_the_runs_it_ran(tenant, capsys):
    """The other command's run of one user fails; this command's run of another user succeeds:
    this command exits 0."""
    from backups.actions import claim_run, start_run
    from backups.engine import close_run

    busy, mine = tenant.users[0], tenant.users[1]
    others, _ = start_run(busy, BackupRun.Trigger.COMMAND, enqueue=False)
    claim = claim_run(others.pk, others.organization_id)

    def users_of_both(configuration):
        return [busy, mine]

    import backups.management.commands.backup as command

    original_start_run = command.start_run

    def start_run_then_the_other_fails(directory_user, *args, **kwargs):
        result = original_start_run(directory_user, *args, **kwargs)
        if directory_user == busy:
            close_run(claim.run, BackupRun.Status.FAILED, "The other command's run failed.")
        return result

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(command, "backup_candidates", users_of_both)
        patch.setattr(command, "start_run", start_run_then_the_other_fails)
        call_command("backup", "--organization", tenant.organization.name, "--wait")

    output = capsys.readouterr().out
    assert f"{mine.email}): Succeeded" in output
    assert BackupRun.objects.get(pk=others.pk).status == "failed"
