"""What a backup run did, in words that do not mislead (issue 14 §4): an incremental run that
found nothing to download reads as files checked and no changes, never "0 files, 0 bytes"; the
runs tables show progress under PROGRESS and the time taken under its own DURATION."""

import datetime as dt

from django.urls import reverse
from django.utils import timezone

from backups.models import BackupRun
from tests.factories import make_finished_run, make_users


def _run(**fields):
    return BackupRun(status=BackupRun.Status.SUCCEEDED, **fields)


def test_an_incremental_run_with_nothing_new_says_no_changes():
    assert _run(files_seen=0).summary == "No changes since the last backup"
    assert _run(files_seen=12, bytes_seen=999).summary == "12 files checked, no changes"
    assert _run(files_seen=0, full_enumeration=True).summary == "0 files checked, no changes"


def test_a_run_with_changes_says_checked_changed_and_downloaded():
    run = _run(
        files_seen=40,
        files_to_download=3,
        files_downloaded=3,
        bytes_downloaded=2048,
        files_moved=2,
        files_deleted=1,
    )
    assert run.files_changed == 6
    assert run.summary == "40 files checked, 6 changed, 3 downloaded (2.0\xa0KB)"


def test_renames_alone_are_changes_with_nothing_downloaded():
    assert _run(files_seen=5, files_moved=5).summary == (
        "5 files checked, 5 changed, 0 downloaded (0\xa0bytes)"
    )


def test_a_failed_run_never_claims_no_changes():
    failed = BackupRun(status=BackupRun.Status.FAILED)
    assert "no changes" not in failed.summary.lower()
    assert "No changes" not in _run(files_seen=3, files_failed=1).summary


def test_the_run_page_shows_checked_changed_and_downloaded(admin_a_client, world):
    user = make_users(world.org_a, 1)[0]
    run = make_finished_run(
        user, files_seen=7, files_to_download=2, files_downloaded=2, files_moved=1
    )
    html = admin_a_client.get(
        reverse("backups:backup-run", args=[world.org_a.code, run.code])
    ).content.decode()
    assert "7 files checked, 3 changed, 2 downloaded" in html
    assert "<dt>Files checked</dt>" in html and "<dt>Changed</dt>" in html
    assert "2 new or modified, 1 renamed or moved, 0 deleted" in html


def _finished_in(run, seconds):
    now = timezone.now()
    BackupRun.objects.filter(pk=run.pk).update(
        started_at=now - dt.timedelta(seconds=seconds), finished_at=now
    )


def _header(html):
    start = html.index("<thead>")
    return html[start : html.index("</thead>", start)]


def test_runs_tables_show_progress_and_duration_in_their_own_columns(admin_a_client, world):
    user = make_users(world.org_a, 1)[0]
    _finished_in(make_finished_run(user, files_seen=9), 75)
    pages = [
        reverse("backups:backups", args=[world.org_a.code]),
        reverse(
            "backups:backup-user-history",
            args=[world.org_a.code, user.configuration.code, user.graph_id],
        ),
        f"/o/{world.org_a.code}/tasks/",
    ]
    for url in pages:
        html = admin_a_client.get(url, headers={"HX-Request": "true"}).content.decode()
        header = _header(html)
        assert "<th>Progress</th><th>Duration</th>" in header, url
        assert '<td class="nowrap">75 s</td>' in html, url
        # The progress cell of a finished backup is its progress, not the time taken.
        assert '<span class="muted">100%</span>' in html, url
        assert '<span class="muted">75 s</span>' not in html, url


def test_tasks_page_details_use_the_summary(admin_a_client, world):
    user = make_users(world.org_a, 1)[0]
    make_finished_run(user, files_seen=0)
    html = admin_a_client.get(f"/o/{world.org_a.code}/tasks/").content.decode()
    assert "No changes since the last backup" in html and "0 files, 0" not in html
