"""Browsing a user's OneDrive as of a restore point (issue 13 §1): the folder as it was at any
backup, across edits, renames, moves and deletes; restore points; paging; versions; the
DOWNLOAD and RESTORE form; constant queries per page."""

import datetime as dt
import re

import pytest
from django.urls import reverse

from backups import browse
from backups.models import BackupRun, FileVersion
from tests.factories import make_drive_history, make_users


def _url(name, user, *args):
    return reverse(
        f"backups:{name}",
        args=[user.configuration.organization.code, user.configuration.code, user.graph_id, *args],
    )


def _rows(response) -> list[str]:
    """The names in the item table, in order."""
    html = response.content.decode()
    return [
        re.sub(r"<[^>]+>", "", cell).strip()
        for cell in re.findall(r'<td class="name">(.*?)</td>', html, re.S)
    ]


def _names(run, path):
    return [v.name for v in browse.folder_items(run, path)]


@pytest.fixture
def user(world):
    return make_users(world.org_a, 1)[0]


@pytest.fixture
def history(user):
    """Three backups of a small drive:

    1. /Documents/a.txt (1 B), /Documents/Old/b.txt, /Photos/p.jpg, /top.txt
    2. a.txt edited (2 B), /Documents renamed /Docs, p.jpg moved to /Docs, /Photos deleted
    3. /top.txt deleted, /new.txt added
    """
    h = make_drive_history(user)
    h.run()
    h.add("/Documents", folder=True)
    h.add("/Documents/a.txt", size=1)
    h.add("/Documents/Old", folder=True)
    h.add("/Documents/Old/b.txt", size=5)
    h.add("/Photos", folder=True)
    h.add("/Photos/p.jpg", size=7)
    h.add("/top.txt", size=3)
    h.run()
    h.edit("/Documents/a.txt", size=2)
    h.move("/Documents", "/Docs")
    h.move("/Photos/p.jpg", "/Docs/p.jpg")
    h.delete("/Photos")
    h.run()
    h.delete("/top.txt")
    h.add("/new.txt", size=4)
    return h


# ----- as of a restore point -----------------------------------------------------------------


def test_each_restore_point_shows_the_drive_as_it_was(history):
    first, second, third = history.runs
    assert _names(first, "/") == ["Documents", "Photos", "top.txt"]
    assert _names(first, "/Documents") == ["Old", "a.txt"]
    assert _names(first, "/Documents/Old") == ["b.txt"]
    assert _names(second, "/") == ["Docs", "top.txt"]
    assert _names(second, "/Docs") == ["Old", "a.txt", "p.jpg"]
    assert _names(second, "/Docs/Old") == ["b.txt"]
    assert _names(third, "/") == ["Docs", "new.txt"]
    sizes = {v.name: v.size for v in browse.folder_items(first, "/Documents")}
    assert sizes["a.txt"] == 1
    sizes = {v.name: v.size for v in browse.folder_items(second, "/Docs")}
    assert sizes["a.txt"] == 2


@pytest.mark.parametrize(
    ("run_index", "path"),
    [(1, "/Documents"), (1, "/Photos"), (0, "/Docs"), (2, "/top.txt"), (0, "/Documents/a.txt")],
)
def test_a_folder_absent_at_the_restore_point_is_not_found(history, run_index, path):
    with pytest.raises(browse.FolderNotFound):
        browse.folder_items(history.runs[run_index], path)


def test_the_page_shows_the_folder_at_the_chosen_backup(admin_a_client, history, user):
    first, second, _ = history.runs
    response = admin_a_client.get(
        _url("browse", user), {"at": str(first.code), "path": "/Documents/"}
    )
    assert response.status_code == 200
    assert _rows(response) == ["Old", "a.txt"]
    html = response.content.decode()
    assert 'aria-current="page">Documents</span>' in html  # the breadcrumb ends at the folder
    response = admin_a_client.get(_url("browse", user), {"at": str(second.code), "path": "/Docs"})
    assert _rows(response) == ["Old", "a.txt", "p.jpg"]


def test_without_a_restore_point_it_shows_the_latest(admin_a_client, history, user):
    assert _rows(admin_a_client.get(_url("browse", user))) == ["Docs", "new.txt"]


def test_a_folder_missing_at_that_backup_says_so(admin_a_client, history, user):
    response = admin_a_client.get(
        _url("browse", user), {"at": str(history.runs[2].code), "path": "/Photos"}
    )
    assert response.status_code == 200
    assert "was not in the OneDrive at this backup" in response.content.decode()


def test_a_user_without_backups_is_told_so(admin_a_client, user):
    response = admin_a_client.get(_url("browse", user))
    assert response.status_code == 200
    assert "has no completed backup yet" in response.content.decode()


def test_runs_that_are_not_restore_points_are_not_offered(history, user):
    history.run(status=BackupRun.Status.FAILED)
    history.run(status=BackupRun.Status.PARTIAL)
    points = browse.timeline(user, history.runs[-1]).points
    assert [p.pk for p in points] == [history.runs[i].pk for i in (4, 2, 1, 0)]


def test_a_run_code_that_is_not_a_restore_point_opens_the_next_one(history, user):
    """Search results name the run that first saw a version; that run may have been canceled
    after recording it."""
    canceled = history.run(status=BackupRun.Status.CANCELED)
    history.add("/late.txt", size=1)
    point = history.run()
    assert browse.restore_point_for(user, str(canceled.code)) == point
    assert "late.txt" in _names(point, "/")


def test_the_timeline_lists_restore_points_newest_first_in_the_org_time_zone(
    admin_a_client, history, user
):
    response = admin_a_client.get(_url("browse", user), {"at": str(history.runs[1].code)})
    html = response.content.decode()
    # 2026-11-01 09:00 UTC is 10:00 in Warsaw (organization A's time zone)
    stamps = re.findall(r'<span class="nowrap">(\d{4}-\d\d-\d\d \d\d:\d\d)</span>', html)
    assert stamps == ["2026-11-01 11:00", "2026-11-01 10:00", "2026-11-01 09:00"]
    assert re.search(
        r'<li aria-current="true"><a [^>]*><span class="nowrap">2026-11-01 10:00', html
    )


def test_a_day_jumps_to_the_last_restore_point_on_or_before_it(admin_a_client, user):
    history = make_drive_history(user)
    history.run(finished_at=dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC))
    history.add("/monday.txt", size=1)
    # 23:30 UTC on the 2nd is already the 3rd in Warsaw
    history.run(finished_at=dt.datetime(2026, 11, 2, 23, 30, tzinfo=dt.UTC))
    history.add("/tuesday.txt", size=1)
    history.run(finished_at=dt.datetime(2026, 11, 5, 12, tzinfo=dt.UTC))
    assert _rows(admin_a_client.get(_url("browse", user), {"day": "2026-11-02"})) == ["monday.txt"]
    assert _rows(admin_a_client.get(_url("browse", user), {"day": "2026-11-03"})) == [
        "monday.txt",
        "tuesday.txt",
    ]
    # before every backup: the oldest
    response = admin_a_client.get(_url("browse", user), {"day": "2020-01-01"})
    assert response.context["run"] == history.runs[0]


# ----- rows ----------------------------------------------------------------------------------


def test_rows_show_size_modified_time_and_versions_kept(admin_a_client, history, user):
    response = admin_a_client.get(_url("browse", user), {"path": "/Docs"})
    a_txt = FileVersion.objects.get(path="/Docs/a.txt", end_run__isnull=True)
    row = next(v for v in response.context["page"] if v.name == "a.txt")
    assert row.versions_kept == 2  # the first, then edited and moved in the same run
    html = response.content.decode()
    assert _url("file-versions", user, a_txt.pk) in html
    assert _url("download-version", user, a_txt.pk) in html
    assert "2\xa0bytes" in html


def test_folders_come_first_then_files_by_name_whatever_the_case(user):
    history = make_drive_history(user)
    history.run()
    for name in ["b.txt", "A.txt", "c.txt"]:
        history.add(f"/{name}", size=1)
    history.add("/zeta", folder=True)
    history.add("/Alpha", folder=True)
    assert _names(history.last_run, "/") == ["Alpha", "zeta", "A.txt", "b.txt", "c.txt"]


# ----- the selection form ----------------------------------------------------------------------


def test_the_form_posts_paths_and_the_restore_point_to_download_and_restore(
    admin_a_client, history, user
):
    second = history.runs[1]
    html = admin_a_client.get(
        _url("browse", user), {"at": str(second.code), "path": "/Docs"}
    ).content.decode()
    assert f'name="at" value="{second.code}"' in html
    assert 'name="path" value="/Docs/a.txt"' in html
    assert 'name="path" value="/Docs/Old"' in html
    assert 'name="path" value="/Docs" data-select-all' in html  # select all in this folder
    assert f'formaction="{_url("download-zip", user)}">DOWNLOAD</button>' in html
    assert f'formaction="{_url("restore-new", user)}">RESTORE</button>' in html
    assert 'name="whole_drive" value="1"' in html
    assert "Restore the whole OneDrive" in html and "Download the whole OneDrive" in html
    assert 'name="csrfmiddlewaretoken"' in html


def test_select_all_at_the_top_is_the_whole_drive(admin_a_client, history, user):
    html = admin_a_client.get(_url("browse", user)).content.decode()
    assert 'name="whole_drive" value="1" data-select-all' in html


def test_without_the_download_policy_only_restore_is_offered(admin_a_client, world, history, user):
    world.org_a.admins_may_download = False
    world.org_a.save(update_fields=["admins_may_download"])
    html = admin_a_client.get(_url("browse", user), {"path": "/Docs"}).content.decode()
    assert "DOWNLOAD" not in html and "Download" not in html
    assert _url("download-zip", user) not in html
    assert "/download/" not in html
    assert ">RESTORE</button>" in html and "Restore the whole OneDrive" in html


# ----- paging and queries --------------------------------------------------------------------


def test_a_folder_of_ten_thousand_items_pages(admin_a_client, user):
    history = make_drive_history(user)
    history.run()
    history.add("/Big", folder=True)
    history.add_many("/Big", 10_000, folders=3)
    first = admin_a_client.get(_url("browse", user), {"path": "/Big"})
    rows = _rows(first)
    assert len(rows) == browse.FOLDER_PAGE_SIZE
    assert rows[:4] == [
        "folder file 00000.txt",
        "folder file 00001.txt",
        "folder file 00002.txt",
        "file 00000.txt",
    ]
    pages = (10_003 + browse.FOLDER_PAGE_SIZE - 1) // browse.FOLDER_PAGE_SIZE
    html = first.content.decode()
    assert f"Page 1 of {pages}" in html
    assert "Select all in this folder (10003 items)" in html
    last = admin_a_client.get(_url("browse", user), {"path": "/Big", "page": pages})
    assert _rows(last)[-1] == "file 09999.txt"
    assert f"at={history.last_run.code}" in html and "path=%2FBig" in html  # paging keeps both


def _folder_of(user, items):
    history = make_drive_history(user)
    history.run()
    history.add("/Work", folder=True)
    history.add("/Work/Deep", folder=True)
    history.add_many("/Work/Deep", items, folders=5)
    history.run()
    # a second version of some items: the count per row is still one query
    for i in range(0, items, 10):
        history.edit(f"/Work/Deep/file {i:05}.txt", size=2)
    return history


BROWSE_PAGE_QUERIES = 14


@pytest.mark.parametrize("items", [100, 1_000])
def test_a_folder_page_is_a_constant_number_of_queries(
    admin_a_client, user, items, django_assert_num_queries
):
    """Session, account, organization, user, restore point, timeline (2), drives, two levels of
    path, count, page, versions kept, the menu's organizations: the same for 100 items and
    for 1,000."""
    history = _folder_of(user, items)
    admin_a_client.get(_url("browse", user))  # the session's first request writes it
    with django_assert_num_queries(BROWSE_PAGE_QUERIES):
        response = admin_a_client.get(
            _url("browse", user), {"at": str(history.last_run.code), "path": "/Work/Deep"}
        )
    assert response.status_code == 200
    assert len(_rows(response)) == min(items + 5, browse.FOLDER_PAGE_SIZE)
    kept = {v.name: v.versions_kept for v in response.context["page"]}
    assert kept["file 00000.txt"] == 2 and kept["file 00001.txt"] == 1


# ----- versions ------------------------------------------------------------------------------


def test_the_versions_of_a_file_newest_first(admin_a_client, history, user):
    a_txt = FileVersion.objects.get(path="/Docs/a.txt", end_run__isnull=True)
    old = FileVersion.objects.get(path="/Documents/a.txt")
    response = admin_a_client.get(_url("file-versions", user, old.pk))
    assert response.status_code == 200
    versions = list(response.context["page"])
    assert [v.pk for v in versions] == [a_txt.pk, old.pk]
    html = response.content.decode()
    assert a_txt.quickxorhash in html and old.quickxorhash in html
    assert "Current" in html and "Replaced" in html
    assert f'name="version" value="{old.pk}"' in html
    assert _url("download-version", user, old.pk) in html
    # each version opens its folder as of the backup that first had it
    assert f"at={history.runs[0].code}&amp;path=%2FDocuments" in html
    assert f"at={history.runs[1].code}&amp;path=%2FDocs" in html


def test_a_lost_version_cannot_be_picked(admin_a_client, history, user):
    old = FileVersion.objects.get(path="/Documents/a.txt")
    old.damage = FileVersion.Damage.LOST
    old.save(update_fields=["damage"])
    html = admin_a_client.get(_url("file-versions", user, old.pk)).content.decode()
    assert "Lost" in html
    assert f'name="version" value="{old.pk}"' not in html
    assert _url("download-version", user, old.pk) not in html


def test_another_users_version_is_404(admin_a_client, world, history, user):
    other = make_users(world.org_a, 1)[0]
    version = FileVersion.objects.get(path="/Docs/a.txt", end_run__isnull=True)
    assert admin_a_client.get(_url("file-versions", other, version.pk)).status_code == 404
    assert admin_a_client.get(_url("file-versions", user, 10**9)).status_code == 404


# ----- links into browse ---------------------------------------------------------------------


def test_the_history_and_backups_pages_link_to_browse(admin_a_client, history, user):
    first = history.runs[0]
    html = admin_a_client.get(_url("backup-user-history", user)).content.decode()
    assert f"{_url('browse', user)}?at={first.code}" in html
    assert f'href="{_url("browse", user)}"' in html
    html = admin_a_client.get(
        reverse("backups:backups", args=[user.configuration.organization.code])
    ).content.decode()
    assert f'href="{_url("browse", user)}"' in html
    user.onedrive = "yes"
    user.save(update_fields=["onedrive"])
    html = admin_a_client.get(
        reverse("o365:configuration-users", args=[user.configuration.organization.code]),
        {"configuration": str(user.configuration.code)},
    ).content.decode()
    assert f'href="{_url("browse", user)}"' in html


# ----- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        {"at": "not-a-run"},
        {"at": "00000000-0000-0000-0000-000000000000"},
        {"path": "/Docs\x00"},
        {"path": "/" * 5000},
        {"page": "last"},
        {"page": "-3"},
        {"day": "2026-13-45"},
        {"day": "\x00"},
    ],
)
def test_bad_input_never_fails(admin_a_client, history, user, query):
    response = admin_a_client.get(_url("browse", user), query)
    assert response.status_code == 200
