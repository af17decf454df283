"""The Backups page says how well each user is protected: "288 files, 154 MB protected, last
good backup 2 hours ago" (issue 14 §4), read for the whole page in a constant number of queries."""

import datetime as dt

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from backups.models import BackupRun, DriveState, FileVersion
from tests.factories import make_finished_run, make_users


def _backed_up(user, sizes, *, hours_ago=2, status=BackupRun.Status.SUCCEEDED):
    """A finished run of `user` that stored files of `sizes` bytes (and one folder)."""
    run = make_finished_run(user, status=status)
    BackupRun.objects.filter(pk=run.pk).update(
        finished_at=timezone.now() - dt.timedelta(hours=hours_ago, minutes=1)
    )
    drive, _ = DriveState.objects.get_or_create(
        directory_user=user,
        drive_id=f"d-{user.pk}",
        defaults={"organization_id": user.configuration.organization_id},
    )
    fields = {"organization_id": drive.organization_id, "drive": drive, "first_run": run}
    FileVersion.objects.create(
        item_id="folder", path="/Docs", name="Docs", is_folder=True, **fields
    )
    for i, size in enumerate(sizes):
        FileVersion.objects.create(
            item_id=f"f{run.pk}-{i}", path=f"/Docs/{i}.txt", name=f"{i}.txt", size=size, **fields
        )
    return run


def _row(html, user):
    start = html.index(user.display_name + "</a>")
    return html[start : html.index("</tr>", start)]


def test_each_user_shows_files_bytes_and_last_good_backup(admin_a_client, world):
    protected, failed_only, never = make_users(world.org_a, 3)
    _backed_up(protected, [1024 * 1024] * 3, hours_ago=2)
    # A newer version replaced one file: only current versions count.
    old = FileVersion.objects.filter(drive__directory_user=protected).exclude(is_folder=True)[0]
    old.end_run = make_finished_run(protected, status=BackupRun.Status.FAILED)
    old.save(update_fields=["end_run"])
    _backed_up(failed_only, [10], status=BackupRun.Status.FAILED)
    # Organization B's files never count in A.
    theirs = make_users(world.org_b, 1)[0]
    _backed_up(theirs, [5] * 50)

    html = admin_a_client.get(reverse("backups:backups", args=[world.org_a.code])).content.decode()

    assert "<th>Protected</th>" in html
    row = _row(html, protected)
    assert "2 files, 2.0\xa0MB protected" in row and "last good backup 2\xa0hours" in row
    assert "1 files, 10\xa0bytes stored" in _row(html, failed_only)
    assert "no complete backup yet" in _row(html, failed_only)
    assert "Not protected yet" in _row(html, never)


def test_a_partial_backup_is_a_good_backup(admin_a_client, world):
    user = make_users(world.org_a, 1)[0]
    _backed_up(user, [100, 200], status=BackupRun.Status.PARTIAL)
    html = admin_a_client.get(reverse("backups:backups", args=[world.org_a.code])).content.decode()
    assert "2 files, 300\xa0bytes protected" in _row(html, user)


def test_protection_costs_the_same_queries_for_one_user_or_fifty(
    admin_a_client, world, django_assert_num_queries
):
    url = reverse("backups:backups", args=[world.org_a.code])
    users = make_users(world.org_a, 1)
    _backed_up(users[0], [1, 2])
    with CaptureQueriesContext(connection) as one:
        assert admin_a_client.get(url).status_code == 200
    for user in make_users(world.org_a, 49, configuration=users[0].configuration):
        _backed_up(user, [1, 2, 3])
    with django_assert_num_queries(len(one.captured_queries)):
        html = admin_a_client.get(url).content.decode()
    assert html.count("files, ") == 50
