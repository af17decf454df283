import pytest
from django.core.management import CommandError, call_command

from o365.models import DirectoryJob, DirectoryUser
from tests.factories import sim_configuration


@pytest.mark.django_db(transaction=True)
def test_import_and_sync_users_commands_show_progress(world, m365sim, capsys):
    configuration = sim_configuration(world.org_a, m365sim)
    call_command("import_users", "--organization", "alpha university", "--include-unlicensed")
    out = capsys.readouterr().out
    assert "Kodo Backup: succeeded" in out and "created" in out
    # Not a terminal: the final counts once, on their own line, no redrawing.
    counts = [line for line in out.splitlines() if " pages " in line]
    assert len(counts) == 1 and "\r" not in out and counts[0].startswith("Kodo Backup: Succeeded")
    assert DirectoryUser.objects.filter(configuration=configuration, account__isnull=False).exists()

    call_command(
        "sync_users", "--organization", str(world.org_a.code), "--configuration", "kodo backup"
    )
    assert "Kodo Backup: succeeded" in capsys.readouterr().out
    assert list(DirectoryJob.objects.values_list("kind", "trigger")) == [
        ("sync", "command"),
        ("import", "command"),
    ]


def test_commands_name_what_is_missing(world):
    with pytest.raises(CommandError, match="No organization named"):
        call_command("sync_users", "--organization", "Nobody")
    with pytest.raises(CommandError, match="has no such Office 365 configuration"):
        call_command("sync_users", "--organization", "Beta MSP")
