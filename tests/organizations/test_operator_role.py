"""The restore operator (issue 15 §4): browses, downloads (while the organization's
administrators may) and restores for every user of their organization, sees Backups and Tasks,
and nothing else: every other organization page answers 404, as to an outsider. The organization
admin makes a user an operator and back on the Settings page, audited."""

from unittest import mock

import pytest
from django.urls import reverse

from backups.models import RestoreJob
from organizations.models import AuditEvent, Membership
from tests.backups.stored_files import back_up, make_user
from tests.factories import make_account, make_finished_run
from tests.test_outsider_gets_404 import _fill, scoped_patterns

# What an operator may open (organizations.access.org_restorer_required and
# backups.access.backup_data_required); every other organization-scoped URL is 404.
OPERATOR_PAGES = {
    "backups",
    "backup-run",
    "backup-run-cancel",
    "start-configuration-backup",
    "start-user-backup",
    "backup-user-history",
    "tasks",
    "browse",
    "file-versions",
    "deleted-items",
    "user-search",
    "search",
    "download-version",
    "download-zip",
    "restore-new",
    "restore",
    "restore-cancel",
    "restore-results",
}


@pytest.fixture
def operator(world):
    return make_account("operator@alpha.example", world.org_a, role=Membership.Role.OPERATOR)


@pytest.fixture
def operator_client(client, operator):
    client.force_login(operator)
    return client


@pytest.fixture
def ada(world, settings, tmp_path):
    """A user of organization A with a backed-up file (not the operator's own)."""
    settings.KODO_STORE_URL = str(tmp_path / "store")
    user = make_user(world.org_a)
    user.report = back_up(user, {"/Docs/report.txt": b"ada's report\n"})["/Docs/report.txt"]
    return user


def _user_url(name, directory_user, *extra):
    configuration = directory_user.configuration
    return reverse(
        name,
        args=[configuration.organization.code, configuration.code, directory_user.graph_id, *extra],
    )


def test_an_operator_lands_on_backups_and_sees_backups_and_tasks_only(operator_client, world):
    backups = reverse("backups:backups", args=[world.org_a.code])
    assert operator_client.get("/")["Location"] == backups

    html = operator_client.get(backups).content.decode()

    menu = html.split('aria-label="Main menu"')[1].split("</nav>")[0]
    assert ">Backups<" in menu and ">Tasks<" in menu
    for admin_item in ("Dashboard", "Services", "Users", "Schedules", "Audit log", "Settings"):
        assert admin_item not in menu


def test_an_operator_browses_and_downloads_any_users_files(operator_client, operator, ada):
    browse = operator_client.get(_user_url("backups:browse", ada), {"path": "/Docs"})
    download = operator_client.get(_user_url("backups:download-version", ada, ada.report.pk))

    assert browse.status_code == 200 and "report.txt" in browse.content.decode()
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == b"ada's report\n"
    assert AuditEvent.objects.get(action="download_file").actor == operator


def test_an_operator_restores_for_any_user(operator_client, operator, ada, world):
    run = make_finished_run(ada)
    with mock.patch("backups.actions.check_target", return_value="b!drive"):
        response = operator_client.post(
            _user_url("backups:restore-new", ada),
            {
                "at": str(run.code),
                "whole_drive": "1",
                "confirm": "1",
                "where": "new_folder",
                "conflict": "skip",
            },
        )

    job = RestoreJob.objects.get()
    assert response.status_code == 302
    assert job.source_user == ada and job.requested_by == operator
    assert AuditEvent.objects.get(action="restore_started").actor == operator
    page = operator_client.get(reverse("backups:restore", args=[world.org_a.code, job.code]))
    assert page.status_code == 200


def test_an_operators_downloads_follow_the_administrators_policy(operator_client, world, ada):
    world.org_a.admins_may_download = False
    world.org_a.save(update_fields=["admins_may_download"])

    response = operator_client.get(_user_url("backups:download-version", ada, ada.report.pk))
    zipped = operator_client.post(_user_url("backups:download-zip", ada), {"path": ["/Docs"]})
    browse = operator_client.get(_user_url("backups:browse", ada), {"path": "/Docs"})

    assert response.status_code == zipped.status_code == 403
    assert ">DOWNLOAD</button>" not in browse.content.decode()
    assert not AuditEvent.objects.filter(action__startswith="download").exists()


@pytest.mark.parametrize(
    ("pattern", "route"),
    [p for p in scoped_patterns() if p.values[0].name not in OPERATOR_PAGES],
)
def test_every_other_organization_page_is_404_for_an_operator(
    pattern, route, operator_client, world
):
    url = _fill(route, pattern.pattern.converters, world)
    assert operator_client.get(url).status_code == 404, url
    assert operator_client.post(url, {}).status_code == 404, url


def test_the_walk_covers_what_an_operator_must_not_reach():
    refused = {p.values[0].name for p in scoped_patterns()} - OPERATOR_PAGES
    for name in (
        "dashboard",
        "configurations",
        "configuration-edit",
        "directory-import",
        "schedules",
        "schedule-edit",
        "services",
        "organization-users",
        "audit-log",
        "settings",
        "settings-operator-add",
        "server-organization",
    ):
        assert name in refused


def test_my_backups_is_404_for_an_operator(operator_client):
    assert operator_client.get("/my/").status_code == 404


# ----- making and unmaking operators -------------------------------------------------------------


def test_the_admin_makes_a_user_a_restore_operator(admin_a_client, world):
    url = reverse("organizations:settings-operator-add", args=[world.org_a.code])

    response = admin_a_client.post(url, {"email": " User@Alpha.example "})

    assert response.status_code == 302
    membership = Membership.objects.get(user=world.user_a)
    assert membership.role == Membership.Role.OPERATOR
    event = AuditEvent.objects.get(action="role_changed")
    assert event.actor == world.admin_a and "restore operator" in event.message
    page = admin_a_client.get(reverse("organizations:settings", args=[world.org_a.code]))
    assert "user@alpha.example" in page.content.decode()


def test_the_admin_makes_an_operator_a_user_again(admin_a_client, world, operator):
    url = reverse("organizations:settings-operator-remove", args=[world.org_a.code, operator.pk])

    assert admin_a_client.post(url).status_code == 302

    assert Membership.objects.get(user=operator).role == Membership.Role.USER
    assert "is now user" in AuditEvent.objects.get(action="role_changed").message


@pytest.mark.parametrize(
    ("email", "message"),
    [
        ("admin@alpha.example", "is an administrator of Alpha University"),
        ("admin@beta.example", "is not a user of Alpha University"),
        ("nobody@alpha.example", "is not a user of Alpha University"),
        ("not an email", "Enter a valid email address"),
    ],
)
def test_only_users_of_the_organization_become_operators(admin_a_client, world, email, message):
    url = reverse("organizations:settings-operator-add", args=[world.org_a.code])

    response = admin_a_client.post(url, {"email": email})

    assert response.status_code == 400
    assert message in response.content.decode().replace("&#x27;", "'")
    assert not AuditEvent.objects.filter(action="role_changed").exists()
    assert Membership.objects.get(user=world.admin_a).role == Membership.Role.ADMIN


def test_an_administrator_is_never_made_a_user_here(admin_a_client, world):
    url = reverse(
        "organizations:settings-operator-remove", args=[world.org_a.code, world.admin_a.pk]
    )
    assert admin_a_client.post(url).status_code == 404
    assert Membership.objects.get(user=world.admin_a).role == Membership.Role.ADMIN


def test_an_operators_pages_never_link_to_administrators_pages(operator_client, world, ada):
    """The Tasks page lists user imports too; their page is under Services (admins only), so an
    operator sees the task without a link that would answer 404."""
    from o365.models import DirectoryJob

    job = DirectoryJob.objects.create(
        configuration=ada.configuration, kind=DirectoryJob.Kind.IMPORT
    )
    world.org_a.services_enabled = True
    world.org_a.save()
    tasks = operator_client.get(reverse("backups:tasks", args=[world.org_a.code]))

    html = tasks.content.decode()
    assert "Import users" in html
    assert job.link and job.link not in html
    assert "/services/" not in html
