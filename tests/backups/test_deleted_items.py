"""Deleted items (issue 13 §1): what was deleted from the OneDrive and is still kept, with where
it was, when it was deleted and its last version, selectable for DOWNLOAD or RESTORE in bulk."""

import re

import pytest
from django.urls import reverse

from backups import browse
from backups.models import FileVersion
from tests.factories import make_drive_history, make_users


def _url(name, user, *args):
    return reverse(
        f"backups:{name}",
        args=[user.configuration.organization.code, user.configuration.code, user.graph_id, *args],
    )


def _paths(response) -> list[str]:
    assert response.status_code == 200
    return [v.path for v in response.context["page"]]


@pytest.fixture
def user(world):
    return make_users(world.org_a, 1)[0]


@pytest.fixture
def history(user):
    h = make_drive_history(user)
    h.run()  # 08:00 UTC
    h.add("/Projects", folder=True)
    h.add("/Projects/plan.docx", size=10)
    h.add("/Projects/old.docx", size=11)
    h.add("/keep.txt", size=1)
    h.add("/moved.txt", size=1)
    h.run()  # 09:00 UTC
    h.edit("/Projects/plan.docx", size=20)
    h.move("/moved.txt", "/Projects/moved.txt")
    h.delete("/Projects/old.docx")
    h.run()  # 10:00 UTC
    h.delete("/Projects")
    return h


def test_it_lists_deleted_items_newest_deletion_first(admin_a_client, history, user):
    paths = _paths(admin_a_client.get(_url("deleted-items", user)))
    # /Projects and everything still in it went at the third backup; old.docx at the second
    assert paths == [
        "/Projects",
        "/Projects/moved.txt",
        "/Projects/plan.docx",
        "/Projects/old.docx",
    ]


def test_each_row_shows_its_last_version_and_when_it_was_deleted(admin_a_client, history, user):
    response = admin_a_client.get(_url("deleted-items", user))
    plan = next(v for v in response.context["page"] if v.name == "plan.docx")
    assert plan.size == 20 and plan.versions_kept == 2
    html = response.content.decode()
    # deleted at the third backup: 10:00 UTC is 11:00 in Warsaw
    row = re.search(rf'<tr>\s*<td><input[^>]*value="{plan.pk}".*?</tr>', html, re.S).group(0)
    assert "2026-11-01 11:00" in row and "/Projects/plan.docx" in row
    assert _url("file-versions", user, plan.pk) in row
    assert _url("download-version", user, plan.pk) in row


def test_moved_renamed_and_current_items_are_not_deleted(admin_a_client, history, user):
    paths = _paths(admin_a_client.get(_url("deleted-items", user)))
    assert "/keep.txt" not in paths and "/moved.txt" not in paths


def test_an_item_back_in_the_onedrive_is_not_deleted_any_more(user):
    history = make_drive_history(user)
    history.run()
    gone = history.add("/back.txt", size=1)
    history.run()
    history.delete("/back.txt")
    assert [v.pk for v in browse.deleted_page(user)] == [gone.pk]
    history.run()
    FileVersion.objects.create(  # restored: the same item is current again
        organization_id=gone.organization_id,
        drive=gone.drive,
        item_id=gone.item_id,
        parent_id=gone.parent_id,
        path=gone.path,
        name=gone.name,
        first_run=history.last_run,
    )
    assert list(browse.deleted_page(user)) == []


def test_the_form_picks_versions_or_every_deleted_item(admin_a_client, history, user):
    html = admin_a_client.get(_url("deleted-items", user)).content.decode()
    old = FileVersion.objects.get(path="/Projects/old.docx")
    assert f'name="version" value="{old.pk}"' in html
    assert f'name="at" value="{history.last_run.code}"' in html
    assert f'formaction="{_url("restore-new", user)}">RESTORE</button>' in html
    assert f'formaction="{_url("download-zip", user)}">DOWNLOAD</button>' in html
    assert (
        f'name="deleted_only" value="1" formaction="{_url("restore-new", user)}">'
        "Restore all deleted items</button>"
    ) in html


def test_without_the_download_policy_only_restore_is_offered(admin_a_client, world, history, user):
    world.org_a.admins_may_download = False
    world.org_a.save(update_fields=["admins_may_download"])
    html = admin_a_client.get(_url("deleted-items", user)).content.decode()
    assert "DOWNLOAD" not in html and "/download/" not in html
    assert ">RESTORE</button>" in html and "Restore all deleted items" in html


def test_only_this_users_deleted_items(admin_a_client, world, history, user):
    other = make_users(world.org_a, 1)[0]
    assert _paths(admin_a_client.get(_url("deleted-items", other))) == []


@pytest.mark.parametrize("deleted", [250, 450])
def test_deleted_items_page_with_a_constant_number_of_queries(
    admin_a_client, user, deleted, django_assert_num_queries
):
    history = make_drive_history(user)
    history.run()
    history.add_many("/", deleted, name="gone {:04}.txt")
    history.run()
    FileVersion.objects.filter(drive=history.state).update(end_run=history.last_run, deleted=True)
    admin_a_client.get(_url("deleted-items", user))
    with django_assert_num_queries(9):
        response = admin_a_client.get(_url("deleted-items", user), {"page": 2})
    page = response.context["page"]
    assert page.paginator.count == deleted
    assert len(page.object_list) == browse.DELETED_PAGE_SIZE
    assert f"Page 2 of {-(-deleted // browse.DELETED_PAGE_SIZE)}" in response.content.decode()
