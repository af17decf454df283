"""The scheduled verification: nightly a sample set by the server administrator, all of it
weekly; each run recorded, shown on the dashboard, the Tasks page and the weekly email."""

import datetime as dt

from django.conf import settings
from django.core import mail

from backups.models import Verification
from backups.tasks import verify_organization, verify_stores
from backups.verification import nightly_sample
from schedules import actions
from tests.backups.test_damaged_chunks import corrupt
from tests.backups.test_prune import Drive
from tests.factories import make_configuration, make_schedule


def test_nightly_it_reads_the_configured_sample_and_everything_on_sundays(settings):
    settings.KODO_VERIFY_SAMPLE = 0.2
    saturday = dt.datetime(2026, 3, 7, 4, 30, tzinfo=dt.UTC)
    assert nightly_sample(saturday) == 0.2
    assert nightly_sample(saturday + dt.timedelta(days=1)) == 1.0


def test_beat_runs_the_verification_every_night():
    entry = settings.CELERY_BEAT_SCHEDULE["verify-backups"]
    assert entry["task"] == "backups.tasks.verify_stores"
    assert entry["schedule"].hour == {4} and entry["schedule"].day_of_week == set(range(7))


def test_the_task_records_what_it_checked_and_found(world, store_dir):
    drive = Drive(world.org_a)
    kept = drive.save("a", b"first file")
    drive.save("b", b"second file")

    assert verify_organization(world.org_a.pk, 1.0) == "Sound"
    sound = Verification.objects.get()
    assert (sound.status, sound.versions_checked, sound.chunks_checked, sound.problems) == (
        Verification.Status.SOUND,
        2,
        2,
        0,
    )
    assert sound.trigger == Verification.Trigger.SCHEDULE and sound.finished_at is not None

    corrupt(world.org_a, kept.chunk_ids[0])
    assert verify_organization(world.org_a.pk, 1.0) == "Problems found"
    found = Verification.objects.order_by("-pk").first()
    assert (found.problems, found.damaged_chunks, found.versions_affected) == (1, 1, 1)


def test_the_nightly_task_verifies_each_organization_with_backups(
    world, store_dir, settings, monkeypatch
):
    Drive(world.org_a).save("a", b"content")
    sent = []
    monkeypatch.setattr(verify_organization, "delay", lambda *args: sent.append(args))
    monkeypatch.setattr("backups.tasks.nightly_sample", lambda: 0.05)

    verify_stores()

    assert sent == [(world.org_a.pk, 0.05)]


def test_the_dashboard_shows_the_last_verification_of_the_organization_only(
    admin_a_client, world, store_dir
):
    Drive(world.org_a).save("a", b"content")
    verify_organization(world.org_a.pk, 1.0)
    Verification.objects.create(
        organization=world.org_b, status=Verification.Status.PROBLEMS, problems=99
    )

    page = admin_a_client.get(f"/o/{world.org_a.code}/").content.decode()

    assert "Backup verification" in page and "Sound" in page
    assert "99 problems" not in page


def test_the_tasks_page_lists_verifications(admin_a_client, world):
    mine = Verification.objects.create(
        organization=world.org_a, status=Verification.Status.PROBLEMS, problems=3
    )
    Verification.objects.create(organization=world.org_b)

    listed = admin_a_client.get(f"/o/{world.org_a.code}/tasks/")
    failed = admin_a_client.get(
        f"/o/{world.org_a.code}/tasks/", {"type": "verification", "status": "failed"}
    )
    backups_only = admin_a_client.get(f"/o/{world.org_a.code}/tasks/", {"type": "backup"})

    assert [task.obj for task in listed.context["tasks"]] == [mine]
    assert b"Verification" in listed.content and b"3 problems" in listed.content
    assert [task.obj for task in failed.context["tasks"]] == [mine]
    assert backups_only.context["tasks"] == []


def test_the_weekly_email_reports_the_verifications(world, store_dir):
    configuration = make_configuration(world.org_a)
    make_schedule(world.org_a, configuration)
    Verification.objects.create(
        organization=world.org_a, status=Verification.Status.PROBLEMS, problems=2, chunks_checked=40
    )

    actions.do_send_summary_reports()

    body = next(m.body for m in mail.outbox if "Alpha" in m.subject)
    assert "Backup verification: 1 runs, 2 problems found" in body
