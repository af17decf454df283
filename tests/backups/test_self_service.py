"""Self-service (issue 15 §3): a user of an organization with self-service on lands on My
backups and reaches their own OneDrive only (browse, versions, deleted items, search, download,
restore to their own OneDrive, their own restores), and only what the organization allows. The
switches: the server administrator's (per organization) and the organization admin's (what users
may do), both audited."""

from unittest import mock

import pytest
from django.urls import reverse

from backups.models import FileVersion, RestoreJob
from organizations.models import AuditEvent
from tests.backups.stored_files import back_up, make_user
from tests.factories import make_drive_history, make_users


def _user_url(name, directory_user, *extra):
    configuration = directory_user.configuration
    return reverse(
        name,
        args=[configuration.organization.code, configuration.code, directory_user.graph_id, *extra],
    )


@pytest.fixture
def self_service(world):
    org = world.org_a
    org.self_service_enabled = True
    org.users_may_browse = org.users_may_download = org.users_may_restore = True
    org.save()
    return org


@pytest.fixture
def mine(world, self_service, store_dir):
    """The OneDrive of user@alpha.example (linked to their account): a report kept in the store,
    and a photo deleted at the second backup."""
    own = make_user(world.org_a, name="Uma User")
    own.account = world.user_a
    own.mail = "user@alpha.example"
    own.save(update_fields=["account", "mail"])
    versions = back_up(own, {"/Docs/report.txt": b"my report\n", "/Docs/photo.jpg": b"jpeg"})
    history = make_drive_history(own)
    history.run()
    history.add("/Old", folder=True)
    history.add("/Old/gone.txt", size=7)
    history.run()
    history.delete("/Old/gone.txt")
    history.run()
    own.report = versions["/Docs/report.txt"]
    own.history = history
    return own


@pytest.fixture
def someone_else(world, store_dir):
    """Another user of the same organization, with a backed-up file."""
    other = make_users(world.org_a, 1)[0]
    other.mail = "kim@alpha.example"
    other.save(update_fields=["mail"])
    other.secret = back_up(other, {"/Salary.txt": b"kim's salary\n"})["/Salary.txt"]
    return other


@pytest.fixture
def user_client(client, world):
    client.force_login(world.user_a)
    return client


def _body(response) -> bytes:
    return b"".join(response.streaming_content)


# ----- landing and My backups --------------------------------------------------------------------


def test_a_user_lands_on_my_backups_with_only_their_own_onedrive(user_client, mine, someone_else):
    assert user_client.get("/")["Location"] == "/my/"

    html = user_client.get("/my/").content.decode()

    assert "OneDrive of Uma User" in html
    assert _user_url("backups:browse", mine) in html
    assert _user_url("backups:deleted-items", mine) in html
    assert "kim@alpha.example" not in html and str(someone_else.graph_id) not in html
    menu = html.split('aria-label="Main menu"')[1].split("</nav>")[0]
    assert "My backups" in menu
    for admin_item in ("Dashboard", "Schedules", "Audit log", "Settings", ">Backups<", "Tasks"):
        assert admin_item not in menu


def test_my_backups_is_404_without_self_service(user_client, world, mine):
    world.org_a.self_service_enabled = False
    world.org_a.save(update_fields=["self_service_enabled"])

    assert user_client.get("/my/").status_code == 404
    assert user_client.get(_user_url("backups:browse", mine)).status_code == 404
    assert b"has not turned on self-service" in user_client.get("/").content


def test_my_backups_is_404_for_administrators(admin_a_client, self_service):
    assert admin_a_client.get("/my/").status_code == 404


def test_my_backups_says_when_the_account_has_no_onedrive(user_client, self_service):
    html = user_client.get("/my/").content.decode()
    assert "No OneDrive of yours is backed up by Kodo" in html


# ----- browse, versions, deleted items, search ---------------------------------------------------


def test_a_user_browses_their_own_onedrive(user_client, mine):
    browse = user_client.get(_user_url("backups:browse", mine), {"path": "/Docs"})
    versions = user_client.get(_user_url("backups:file-versions", mine, mine.report.pk))
    deleted = user_client.get(_user_url("backups:deleted-items", mine))
    search = user_client.get(_user_url("backups:user-search", mine), {"q": "report"})

    assert browse.status_code == versions.status_code == 200
    assert deleted.status_code == search.status_code == 200
    assert "report.txt" in browse.content.decode()
    assert ">DOWNLOAD</button>" in browse.content.decode()
    assert ">RESTORE</button>" in browse.content.decode()
    assert "Backup history" not in browse.content.decode()  # an administrator's page
    assert "gone.txt" in deleted.content.decode()
    assert "/Docs/report.txt" in search.content.decode()


def test_a_user_gets_404_on_another_users_data(user_client, mine, someone_else):
    secret = someone_else.secret
    for url in (
        _user_url("backups:browse", someone_else),
        _user_url("backups:deleted-items", someone_else),
        _user_url("backups:user-search", someone_else),
        _user_url("backups:file-versions", someone_else, secret.pk),
        _user_url("backups:download-version", someone_else, secret.pk),
        _user_url("backups:backup-user-history", someone_else),
        reverse("backups:search", args=[someone_else.configuration.organization.code]),
    ):
        assert user_client.get(url).status_code == 404, url
    for url in (
        _user_url("backups:download-zip", someone_else),
        _user_url("backups:restore-new", someone_else),
    ):
        assert user_client.post(url, {"whole_drive": "1"}).status_code == 404, url


def test_another_users_version_through_the_users_own_url_is_404(user_client, mine, someone_else):
    """The user's own URL with another user's version id: the version is checked too."""
    secret = someone_else.secret
    assert user_client.get(_user_url("backups:file-versions", mine, secret.pk)).status_code == 404
    assert user_client.get(_user_url("backups:download-version", mine, secret.pk)).status_code == (
        404
    )
    response = user_client.post(
        _user_url("backups:download-zip", mine), {"version": [str(secret.pk)]}
    )
    assert response.status_code == 404 or secret.name.encode() not in _body(response)


def test_the_organization_pages_are_404_for_a_user(user_client, world, mine):
    code = world.org_a.code
    for name in ("backups:dashboard", "backups:backups", "backups:tasks", "o365:services"):
        assert user_client.get(reverse(name, args=[code])).status_code == 404, name
    for name in ("organizations:audit-log", "organizations:settings", "schedules:schedules"):
        assert user_client.get(reverse(name, args=[code])).status_code == 404, name


# ----- download ----------------------------------------------------------------------------------


def test_a_user_downloads_their_own_file_and_it_is_audited(user_client, world, mine):
    response = user_client.get(_user_url("backups:download-version", mine, mine.report.pk))

    assert response.status_code == 200
    assert _body(response) == b"my report\n"
    event = AuditEvent.objects.get(action="download_file")
    assert event.actor == world.user_a and event.organization == world.org_a
    assert "/Docs/report.txt" in event.message


def test_a_user_downloads_a_zip_of_their_own_files(user_client, mine):
    response = user_client.post(_user_url("backups:download-zip", mine), {"path": ["/Docs"]})

    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert b"report.txt" in _body(response)
    assert AuditEvent.objects.filter(action="download_zip", actor__email="user@alpha.example")


def test_downloads_are_404_when_users_may_not_download(user_client, world, mine):
    world.org_a.users_may_download = False
    world.org_a.save(update_fields=["users_may_download"])

    url = _user_url("backups:download-version", mine, mine.report.pk)
    assert user_client.get(url).status_code == 404
    assert (
        user_client.post(_user_url("backups:download-zip", mine), {"path": ["/Docs"]}).status_code
        == 404
    )
    html = user_client.get(_user_url("backups:browse", mine), {"path": "/Docs"}).content.decode()
    assert ">DOWNLOAD</button>" not in html and ">Download</a>" not in html
    assert not AuditEvent.objects.filter(action__startswith="download").exists()


def test_users_download_even_when_administrators_may_not(user_client, world, mine):
    """The server administrator's policy is about administrators reading users' data."""
    world.org_a.admins_may_download = False
    world.org_a.save(update_fields=["admins_may_download"])

    url = _user_url("backups:download-version", mine, mine.report.pk)
    assert user_client.get(url).status_code == 200


def test_browse_is_404_when_users_may_not_browse(user_client, world, mine):
    world.org_a.users_may_browse = False
    world.org_a.save(update_fields=["users_may_browse"])

    assert user_client.get(_user_url("backups:browse", mine)).status_code == 404
    assert user_client.get(_user_url("backups:deleted-items", mine)).status_code == 404
    html = user_client.get("/my/").content.decode()
    assert _user_url("backups:browse", mine) not in html
    assert "Restore the whole OneDrive" in html  # restoring is still allowed


# ----- restore -----------------------------------------------------------------------------------


def _restore(client, directory_user, **fields):
    values = {"at": str(directory_user.history.runs[-1].code), "confirm": "1"}
    values.update(fields)
    with mock.patch("backups.actions.check_target", return_value="b!drive"):
        return client.post(_user_url("backups:restore-new", directory_user), values)


def test_the_restore_form_offers_only_the_users_own_onedrive(user_client, mine, someone_else):
    response = user_client.post(
        _user_url("backups:restore-new", mine),
        {"at": str(mine.history.runs[-1].code), "deleted_only": "1"},
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert "Whose OneDrive" not in html and "kim@alpha.example" not in html
    assert 'value="new_folder"' in html and 'value="original"' in html
    assert 'value="folder"' not in html
    assert "Restored to your own OneDrive." in html


def test_a_user_restores_a_deleted_file_to_a_new_folder_of_their_own(
    user_client, world, mine, someone_else
):
    response = _restore(
        user_client,
        mine,
        deleted_only="1",
        where="new_folder",
        conflict="skip",
        target=someone_else.mail,  # ignored: a user restores to their own OneDrive only
    )

    job = RestoreJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("backups:restore", args=[world.org_a.code, job.code])
    assert job.source_user == mine and job.target_user == mine
    assert job.what == RestoreJob.What.DELETED and job.where == RestoreJob.Where.NEW_FOLDER
    assert job.requested_by == world.user_a
    event = AuditEvent.objects.get(action="restore_started")
    assert event.actor == world.user_a

    page = user_client.get(response["Location"])
    assert page.status_code == 200
    assert "/my/" in page.content.decode()
    assert (
        user_client.get(
            reverse("backups:restore-results", args=[world.org_a.code, job.code])
        ).status_code
        == 200
    )
    listing = user_client.get("/my/").content.decode()
    assert reverse("backups:restore", args=[world.org_a.code, job.code]) in listing


def test_a_user_cannot_restore_into_another_folder_path(user_client, mine):
    response = _restore(
        user_client, mine, deleted_only="1", where="folder", folder="/x", conflict="skip"
    )
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not RestoreJob.objects.exists()


def test_restore_is_404_when_users_may_not_restore(user_client, world, mine):
    world.org_a.users_may_restore = False
    world.org_a.save(update_fields=["users_may_restore"])

    assert _restore(user_client, mine, deleted_only="1").status_code == 404
    html = user_client.get(_user_url("backups:browse", mine)).content.decode()
    assert ">RESTORE</button>" not in html and "Restore the whole OneDrive" not in html
    assert "My restores" not in user_client.get("/my/").content.decode()


def test_a_user_sees_only_the_restores_they_asked_for(user_client, world, mine):
    run = mine.history.runs[-1]
    by_admin = RestoreJob.objects.create(
        organization=world.org_a,
        source_user=mine,
        target_user=mine,
        as_of_run=run,
        paths=["/Docs"],
        requested_by=world.admin_a,
    )
    for name in ("backups:restore", "backups:restore-results"):
        url = reverse(name, args=[world.org_a.code, by_admin.code])
        assert user_client.get(url).status_code == 404
    cancel = reverse("backups:restore-cancel", args=[world.org_a.code, by_admin.code])
    assert user_client.post(cancel).status_code == 404
    assert str(by_admin.code) not in user_client.get("/my/").content.decode()


def test_a_user_cancels_their_own_restore(user_client, world, mine):
    _restore(user_client, mine, deleted_only="1", where="original", conflict="skip")
    job = RestoreJob.objects.get()

    url = reverse("backups:restore-cancel", args=[world.org_a.code, job.code])
    response = user_client.post(url)

    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == RestoreJob.Status.CANCELED
    assert AuditEvent.objects.get(action="restore_canceled").actor == world.user_a


def test_my_backups_is_a_constant_number_of_queries(
    user_client, mine, django_assert_max_num_queries
):
    for _ in range(3):
        _restore(user_client, mine, deleted_only="1", where="original", conflict="skip")
    extra = make_users(mine.configuration.organization, 3, mine.configuration)
    for directory_user in extra:
        directory_user.account = mine.account
        directory_user.save(update_fields=["account"])
    with django_assert_max_num_queries(12):
        assert user_client.get("/my/").status_code == 200


# ----- the switches ------------------------------------------------------------------------------


def test_the_server_administrator_turns_self_service_on(server_admin_client, world):
    url = reverse("organizations:server-organization-self-service", args=[world.org_a.code])

    response = server_admin_client.post(url, {"self_service_enabled": "on"})

    assert response.status_code == 302
    world.org_a.refresh_from_db()
    assert world.org_a.self_service_enabled
    assert AuditEvent.objects.filter(action="self_service_enabled").count() == 1
    page = server_admin_client.get(
        reverse("organizations:server-organization", args=[world.org_a.code])
    )
    assert "Self-service" in page.content.decode()


def test_only_the_server_administrator_turns_self_service_on(admin_a_client, world):
    url = reverse("organizations:server-organization-self-service", args=[world.org_a.code])
    assert admin_a_client.post(url, {"self_service_enabled": "on"}).status_code == 404
    world.org_a.refresh_from_db()
    assert not world.org_a.self_service_enabled


def test_the_admin_chooses_what_users_may_do(admin_a_client, world, self_service):
    page = admin_a_client.get(reverse("organizations:settings", args=[world.org_a.code]))
    assert "Users may download their own files" in page.content.decode()
    url = reverse("organizations:settings-user-permissions", args=[world.org_a.code])

    response = admin_a_client.post(url, {"users_may_browse": "on"})

    assert response.status_code == 302
    world.org_a.refresh_from_db()
    assert world.org_a.users_may_browse
    assert not world.org_a.users_may_download and not world.org_a.users_may_restore
    event = AuditEvent.objects.get(action="self_service_permissions_changed")
    assert "may not download" in event.message and "may not restore" in event.message
    assert event.actor == world.admin_a


def test_the_settings_page_says_when_self_service_is_off(admin_a_client, world):
    html = admin_a_client.get(reverse("organizations:settings", args=[world.org_a.code])).content
    assert b"Self-service is off for Alpha University" in html
    assert b"Users may download their own files" not in html


def test_unchanged_settings_write_no_audit_entry(admin_a_client, world, self_service):
    url = reverse("organizations:settings-user-permissions", args=[world.org_a.code])
    admin_a_client.post(
        url, {"users_may_browse": "on", "users_may_download": "on", "users_may_restore": "on"}
    )
    assert not AuditEvent.objects.filter(action="self_service_permissions_changed").exists()


def test_deleted_version_belongs_to_the_user(mine):
    """The fixture's deleted file is the user's (guards the tests above against a vacuous
    deleted-items page)."""
    assert FileVersion.objects.filter(drive__directory_user=mine, deleted=True).exists()
