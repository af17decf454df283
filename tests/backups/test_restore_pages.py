"""The restore pages: the form between RESTORE on the browse pages and the job (what will be
restored, where to, whose OneDrive, what to do with a name that exists), the job page with its
live progress and per-file results, Cancel, the results as CSV, and the user's history listing
the restores. Rows are made directly in the database; starting a restore for real (its checks
ask Microsoft 365) is in the tests at the end, against m365sim."""

import csv
import io
import re
from unittest import mock

import pytest
from django.urls import reverse

from backups.models import BackupRun, RestoreItem, RestoreJob
from organizations.models import AuditEvent
from tests.factories import make_drive_history, make_users


def _new_url(user):
    return reverse(
        "backups:restore-new",
        args=[user.configuration.organization.code, user.configuration.code, user.graph_id],
    )


def _job_url(job, name="backups:restore"):
    return reverse(name, args=[job.organization.code, job.code])


@pytest.fixture
def drive(world):
    """Kim's OneDrive: two backups; /Documents (two files) and /Photos (one) at the first, a
    changed report and a deleted photo at the second."""
    kim, other = make_users(world.org_a, 2)
    kim.mail = "kim@alpha.example"
    kim.save(update_fields=["mail"])
    history = make_drive_history(kim)
    history.run()
    history.add("/Documents", folder=True)
    history.add("/Documents/report.docx", size=100)
    history.add("/Documents/notes.txt", size=200)
    history.add("/Photos", folder=True)
    history.add("/Photos/cat.jpg", size=5000)
    history.run()
    history.edit("/Documents/report.docx", size=150)
    history.delete("/Photos/cat.jpg")
    history.other = other
    return history


def _post(client, user, **fields):
    return client.post(_new_url(user), fields)


def _errors(response) -> str:
    assert response.status_code == 200
    return response.content.decode()


# ----- the form ----------------------------------------------------------------------------------


def test_the_form_says_what_the_selection_holds_and_offers_the_defaults(admin_a_client, drive):
    first = drive.runs[0]

    response = _post(admin_a_client, drive.user, at=str(first.code), path=["/Documents"])

    html = response.content.decode()
    assert response.status_code == 200
    assert "<li>/Documents</li>" in html
    assert "2 files in 1 folder, 300\xa0bytes" in html
    # 08:00 UTC is 09:00 in the organization's time zone (Europe/Warsaw)
    assert "The backup of 2026-11-01 09:00 (Europe/Warsaw)" in html
    assert f'name="at" value="{first.code}"' in html
    assert 'name="confirm" value="1"' in html
    assert re.search('value="new_folder"[^>]* checked', html) and "Kodo Restore 20" in html
    assert "nothing existing is touched" in html
    assert re.search('value="skip"[^>]* checked', html)
    assert 'value="kim@alpha.example"' in html  # Whose OneDrive: the same user
    assert ">RESTORE</button>" in html
    assert not RestoreJob.objects.exists()


def test_without_a_restore_point_the_latest_is_used(admin_a_client, drive):
    html = _post(admin_a_client, drive.user, path=["/Documents"]).content.decode()

    assert f'name="at" value="{drive.runs[1].code}"' in html
    assert "2 files in 1 folder, 350\xa0bytes" in html  # the report changed to 150 bytes


def test_the_whole_onedrive_and_the_deleted_items_are_counted(admin_a_client, drive):
    whole = _post(admin_a_client, drive.user, whole_drive="1", path=["/Documents"])
    deleted = _post(admin_a_client, drive.user, deleted_only="1")

    assert "The whole OneDrive" in whole.content.decode()
    assert "2 files in 2 folders, 350\xa0bytes" in whole.content.decode()
    assert 'name="whole_drive" value="1"' in whole.content.decode()
    assert "Deleted items" in deleted.content.decode()
    assert "1 file, 4.9\xa0KB" in deleted.content.decode()
    assert 'name="deleted_only" value="1"' in deleted.content.decode()


def test_a_chosen_older_version_is_named(admin_a_client, drive):
    old_report = drive.runs[0].pk and drive.user.drive_states.get().versions.get(
        path="/Documents/report.docx", end_run__isnull=False
    )

    html = _post(admin_a_client, drive.user, version=[str(old_report.pk)]).content.decode()

    assert "/Documents/report.docx" in html and "the version backed up" in html
    assert "1 file, 100\xa0bytes" in html
    assert f'name="version" value="{old_report.pk}"' in html


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"at": "00000000-0000-0000-0000-000000000000", "path": ["/Documents"]}, "has the code"),
        ({"at": "last tuesday", "path": ["/Documents"]}, "neither a backup"),
        ({"at": "2020-01-01", "path": ["/Documents"]}, "no completed backup at or before"),
        (
            {"path": ["/Nowhere", "/Documents"]},
            "Not in the backup of 2026-11-01 09:00 UTC: /Nowhere",
        ),
        ({"path": ["/Docu\x1bments"]}, "control character U+001B"),
        ({"path": ["/Docu\nments"]}, "one line"),
        ({"version": ["abc"]}, "not a version number"),
        ({"version": ["99999999"]}, "not kept for"),
        ({}, "Nothing is selected"),
        ({"path": ["/"]}, "Nothing is selected"),
    ],
)
def test_a_bad_selection_is_a_clear_error(admin_a_client, drive, fields, message):
    html = _errors(_post(admin_a_client, drive.user, **fields))

    assert message in html.replace("&#x27;", "'")
    assert 'class="errors"' in html and ">RESTORE</button>" not in html
    assert not RestoreJob.objects.exists()


def test_at_most_1000_rows_are_picked_at_once(drive):
    from django.http import QueryDict

    from backups.restore_forms import SelectionForm

    data = QueryDict(mutable=True)
    data.setlist("path", [f"/file {i}" for i in range(1001)])

    form = SelectionForm(data, directory_user=drive.user)

    assert not form.is_valid()
    assert "restore at most 1,000 at once" in form.errors["path"][0]


def test_another_users_version_is_refused(admin_a_client, drive):
    theirs = make_drive_history(drive.other)
    theirs.run()
    secret = theirs.add("/secret.txt", size=3)

    html = _errors(_post(admin_a_client, drive.user, version=[str(secret.pk)]))

    assert "not kept for" in html


def test_a_user_without_backups_gets_a_message(admin_a_client, drive):
    html = _errors(_post(admin_a_client, drive.other, whole_drive="1"))

    assert "has no completed backup yet" in html


def test_no_deleted_items_is_nothing_to_restore(admin_a_client, world):
    user = make_users(world.org_a, 1)[0]
    history = make_drive_history(user)
    history.run()
    history.add("/a.txt", size=1)

    html = _errors(_post(admin_a_client, user, deleted_only="1"))

    assert "keeps no deleted items" in html


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"where": "folder", "folder": ""}, "Type the folder to restore into"),
        ({"where": "folder", "folder": "/Re:stored"}, "holds a character OneDrive refuses"),
        ({"where": "folder", "folder": "/Restored./x"}, "ends with a dot"),
        ({"where": "folder", "folder": "/a\x00b"}, "Null characters are not allowed"),
        ({"where": "elsewhere"}, "Select a valid choice"),
        ({"conflict": "overwrite-all"}, "Select a valid choice"),
        ({"target": "nobody@alpha.example"}, "No user nobody@alpha.example"),
        ({"target": "admin@beta.example"}, "No user admin@beta.example"),
    ],
)
def test_bad_options_are_a_clear_error_and_start_nothing(admin_a_client, drive, options, message):
    fields = {"path": ["/Documents"], "confirm": "1", "where": "new_folder", "conflict": "skip"}
    fields.update(options)

    html = _errors(_post(admin_a_client, drive.user, **fields))

    assert message in html.replace("&#x27;", "'").replace("&quot;", '"')
    assert ">RESTORE</button>" in html  # the form again, the selection kept
    assert 'name="path" value="/Documents"' in html
    assert not RestoreJob.objects.exists()


def test_a_user_removed_from_microsoft_365_cannot_receive(admin_a_client, drive):
    from django.utils import timezone

    other = drive.other
    other.mail = "gone@alpha.example"
    other.removed_at = timezone.now()
    other.save(update_fields=["mail", "removed_at"])
    fields = {"path": ["/Documents"], "confirm": "1", "where": "new_folder", "conflict": "skip"}

    html = _errors(_post(admin_a_client, drive.user, target="gone@alpha.example", **fields))

    assert "was removed from Microsoft 365" in html
    assert not RestoreJob.objects.exists()


RESTORE_FIELDS = (
    "at",
    "path",
    "version",
    "whole_drive",
    "deleted_only",
    "confirm",
    "where",
    "folder",
    "target",
    "conflict",
)


def test_any_input_is_a_page_never_a_500(admin_a_client, drive):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from tests.test_forms_properties import NASTY

    known = [str(drive.runs[0].code), "/Documents", "/Photos/cat.jpg", "1", "folder", "rename"]
    value = st.one_of(st.sampled_from(NASTY + known), st.text(max_size=30))
    payloads = st.fixed_dictionaries({name: st.lists(value, max_size=3) for name in RESTORE_FIELDS})

    @settings(
        max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(payloads)
    def check(payload):
        encoded = {
            name: [v.encode("utf-8", "surrogatepass") for v in values]
            for name, values in payload.items()
        }
        response = admin_a_client.post(_new_url(drive.user), encoded)
        assert response.status_code in (200, 302, 400)

    with mock.patch("backups.actions.check_target", return_value="b!drive"):
        check()


def test_the_form_is_only_posted(admin_a_client, drive):
    assert admin_a_client.get(_new_url(drive.user)).status_code == 405


# ----- the job page -------------------------------------------------------------------------------


def _job(history, *, items=0, status=RestoreJob.Status.RUNNING, **fields):
    values = {
        "organization_id": history.organization_id,
        "source_user": history.user,
        "target_user": history.user,
        "as_of_run": history.runs[0],
        "paths": ["/Documents"],
        "status": status,
        "requested_by_email": "admin@alpha.example",
        "folder": "Kodo Restore 2026-12-03 07-10",
        "planned": True,
        "files_total": items,
        "bytes_total": 10 * items,
    }
    values.update(fields)
    job = RestoreJob.objects.create(**values)
    RestoreItem.objects.bulk_create(
        RestoreItem(
            restore=job,
            source_path=f"/Documents/file {i:04}.txt",
            target_path=f"/Kodo Restore 2026-12-03 07-10/Documents/file {i:04}.txt",
            size=10,
            status=RestoreItem.Status.RESTORED if i % 3 else RestoreItem.Status.FAILED,
            message="" if i % 3 else "The upload did not verify",
        )
        for i in range(items)
    )
    return job


def test_the_job_page_shows_what_where_and_progress(admin_a_client, drive):
    job = _job(
        drive, items=4, files_restored=2, bytes_restored=20, files_failed=1, bytes_finished=20
    )

    html = admin_a_client.get(_job_url(job)).content.decode()

    assert "Restore of " + str(drive.user) in html
    assert "<li>/Documents</li>" in html
    assert "The backup of 2026-11-01 09:00 (Europe/Warsaw)" in html
    assert "A new folder “Kodo Restore 2026-12-03 07-10” in the OneDrive of" in html
    assert "Skip it" in html and "admin@alpha.example" in html
    assert ">Running<" in html
    assert "3 of 4 files" in html and "20\xa0bytes of 40\xa0bytes" in html
    assert 'value="50"' in html  # the progress bar: bytes done of the total
    assert _job_url(job, "backups:restore-cancel") in html and ">Cancel</button>" in html
    assert "Download results (CSV)" in html and _job_url(job, "backups:restore-results") in html
    assert f'hx-get="{_job_url(job)}" hx-trigger="every 2s"' in html


def test_the_fragment_refreshes_until_the_job_ends(admin_a_client, drive):
    job = _job(drive, items=2)
    poll = {"HX-Request": "true"}

    running = admin_a_client.get(_job_url(job), headers=poll)
    RestoreJob.objects.filter(pk=job.pk).update(status=RestoreJob.Status.SUCCEEDED)
    finished = admin_a_client.get(_job_url(job), headers=poll)

    assert running.status_code == 200 and finished.status_code == 286  # 286: htmx stops
    assert "<html" not in running.content.decode()
    assert ">Cancel</button>" in running.content.decode()
    assert ">Cancel</button>" not in finished.content.decode()
    assert ">Succeeded<" in finished.content.decode()
    assert "hx-get" not in admin_a_client.get(_job_url(job)).content.decode()


def test_another_users_onedrive_and_another_folder_are_named(admin_a_client, drive):
    other = drive.other
    other.mail = "lee@alpha.example"
    other.save(update_fields=["mail"])
    job = _job(drive, target_user=other, where="folder", folder="/Restored", conflict="rename")

    html = admin_a_client.get(_job_url(job)).content.decode()

    assert f"The folder /Restored in the OneDrive of {other}" in html
    assert "lee@alpha.example" in html and "Keep both (rename)" in html


def test_the_results_are_paged_and_filtered(admin_a_client, drive, django_assert_max_num_queries):
    job = _job(drive, items=250, status=RestoreJob.Status.PARTIAL)
    url = _job_url(job)

    with django_assert_max_num_queries(12):
        first = admin_a_client.get(url).content.decode()
    third = admin_a_client.get(url, {"page": 3}).content.decode()
    failed = admin_a_client.get(url, {"status": "failed"}).content.decode()
    skipped = admin_a_client.get(url, {"status": "skipped"}).content.decode()
    nonsense = admin_a_client.get(url, {"status": "<script>", "page": "x"})

    assert first.count("<tr>") - 1 == 100 and "Page 1 of 3" in first
    assert "file 0000.txt" in first and "file 0100.txt" not in first
    assert third.count("<tr>") - 1 == 50 and "file 0249.txt" in third
    assert failed.count("badge bad") >= 84 and "badge ok" not in failed.split("<h2>Files")[1]
    assert "The upload did not verify" in failed and "status=failed&amp;page=2" not in failed
    assert "No file has this result." in skipped
    assert nonsense.status_code == 200


def test_the_job_page_costs_the_same_queries_for_10_or_1000_files(
    admin_a_client, drive, django_assert_max_num_queries
):
    small, big = _job(drive, items=10), _job(drive, items=1000)
    with django_assert_max_num_queries(12) as small_queries:
        admin_a_client.get(_job_url(small))
    with django_assert_max_num_queries(12) as big_queries:
        admin_a_client.get(_job_url(big))
    assert len(big_queries.captured_queries) == len(small_queries.captured_queries)


def test_the_users_history_lists_the_restores(admin_a_client, drive):
    job = _job(drive, items=1, status=RestoreJob.Status.SUCCEEDED, what="drive")
    url = reverse(
        "backups:backup-user-history",
        args=[
            drive.user.configuration.organization.code,
            drive.user.configuration.code,
            drive.user.graph_id,
        ],
    )

    html = admin_a_client.get(url).content.decode()

    assert "<h2>Restores</h2>" in html and _job_url(job) in html
    assert "The whole OneDrive" in html and ">Succeeded<" in html


# ----- the results as CSV -------------------------------------------------------------------


def _csv(client, job):
    response = client.get(_job_url(job, "backups:restore-results"))
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="kodo-restore-')
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_the_csv_holds_every_file_with_its_result(admin_a_client, drive):
    job = _job(drive, items=2500, status=RestoreJob.Status.PARTIAL)  # more than one batch
    RestoreItem.objects.filter(restore=job).update(finished_at="2026-12-03T07:11:00Z")

    rows = _csv(admin_a_client, job)

    assert rows[0] == ["path", "target path", "size", "status", "message", "restored at"]
    assert len(rows) == 2501
    assert rows[1] == [
        "/Documents/file 0000.txt",
        "/Kodo Restore 2026-12-03 07-10/Documents/file 0000.txt",
        "10",
        "failed",
        "The upload did not verify",
        "",
    ]
    assert rows[2][3] == "restored" and rows[2][5] == "2026-12-03T07:11:00+00:00"
    assert rows[-1][0] == "/Documents/file 2499.txt"


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t"])
def test_the_csv_cannot_carry_a_formula(admin_a_client, drive, start):
    job = _job(drive)
    RestoreItem.objects.create(
        restore=job,
        source_path=f'{start}HYPERLINK("http://evil.example")',
        target_path=f"{start}cmd|' /C calc'!A0",
        status=RestoreItem.Status.FAILED,
        message=f"{start}1+1",
    )

    row = _csv(admin_a_client, job)[1]

    assert row[0].startswith("'" + start) and row[1].startswith("'" + start)
    assert row[4] == f"'{start}1+1"


# ----- starting and cancelling (the engine's actions) ---------------------------------------------


def test_cancel_ends_an_active_restore(admin_a_client, drive):
    job = _job(drive, items=3, status=RestoreJob.Status.QUEUED)

    response = admin_a_client.post(_job_url(job, "backups:restore-cancel"), follow=True)

    job.refresh_from_db()
    assert job.status == RestoreJob.Status.CANCELED
    assert response.redirect_chain[-1][0] == _job_url(job)
    assert "was canceled" in response.content.decode()


def test_cancel_from_the_tasks_page_goes_back_there(admin_a_client, drive):
    job = _job(drive, items=3, status=RestoreJob.Status.QUEUED)
    tasks = reverse("backups:tasks", args=[job.organization.code]) + "?type=restore"

    response = admin_a_client.post(_job_url(job, "backups:restore-cancel"), {"next": tasks})

    assert response.status_code == 302 and response["Location"] == tasks


def test_cancel_of_a_finished_restore_says_so(admin_a_client, drive):
    job = _job(drive, status=RestoreJob.Status.SUCCEEDED)

    response = admin_a_client.post(_job_url(job, "backups:restore-cancel"), follow=True)

    job.refresh_from_db()
    assert job.status == RestoreJob.Status.SUCCEEDED
    assert "had already finished (succeeded)" in response.content.decode()


def test_cancel_is_only_posted(admin_a_client, drive):
    job = _job(drive)
    assert admin_a_client.get(_job_url(job, "backups:restore-cancel")).status_code == 405


def _confirm(client, user, run, **options):
    fields = {
        "at": str(run.code),
        "confirm": "1",
        "where": "new_folder",
        "conflict": "skip",
        "target": "",
    }
    fields.update(options)
    return client.post(_new_url(user), fields, follow=True)


def test_restore_starts_the_job_and_shows_it(admin_a_client, tenant):
    user = tenant.users[1]
    run = tenant.backup(user)
    folder = next(p for p in tenant.sim_files(user) if p.count("/") >= 2).rsplit("/", 1)[0]

    response = _confirm(
        admin_a_client,
        user,
        run,
        path=[folder],
        where="folder",
        folder="/Restored",
        conflict="rename",
    )

    job = RestoreJob.objects.get()
    assert response.redirect_chain[-1][0] == _job_url(job)
    html = response.content.decode()
    assert "Restoring " in html and "Restore of" in html
    assert job.source_user == user and job.target_user == user
    assert job.what == RestoreJob.What.SELECTION and job.paths == [folder]
    assert job.as_of_run == run
    assert (job.where, job.folder, job.conflict) == ("folder", "/Restored", "rename")
    assert job.requested_by_email == "admin@alpha.example"
    assert job.status in (RestoreJob.Status.QUEUED, RestoreJob.Status.RUNNING)
    assert AuditEvent.objects.filter(
        organization=tenant.organization, action__contains="restore"
    ).exists()


def test_restore_to_another_users_onedrive_by_email(admin_a_client, tenant):
    source, target = tenant.users[1], tenant.users[2]
    run = tenant.backup(source)

    _confirm(admin_a_client, source, run, whole_drive="1", target=target.email)

    job = RestoreJob.objects.get()
    assert job.target_user == target and job.what == RestoreJob.What.DRIVE
    assert job.where == RestoreJob.Where.NEW_FOLDER


def test_a_refused_restore_shows_the_form_with_the_reason(admin_a_client, tenant):
    source, without_onedrive = tenant.users[1], tenant.users[-1]
    run = tenant.backup(source)

    response = _confirm(admin_a_client, source, run, whole_drive="1", target=without_onedrive.email)

    html = response.content.decode()
    assert response.status_code == 200 and not response.redirect_chain
    assert "OneDrive" in html and 'class="errors"' in html and ">RESTORE</button>" in html
    assert not RestoreJob.objects.exists()
    assert BackupRun.objects.filter(directory_user=without_onedrive).count() == 0
