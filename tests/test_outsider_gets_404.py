"""Every URL that names an organization-scoped object answers 404 to an admin of another
organization, for GET and POST alike. New URL patterns are covered automatically: a pattern
whose arguments this file cannot fill fails the test until a factory is added below."""

import uuid

import pytest
from django.urls import URLPattern, URLResolver, get_resolver


def _once(world, name, make):
    """One object per test world, shared by every argument of a URL."""
    if not hasattr(world, name):
        setattr(world, name, make())
    return getattr(world, name)


def _configuration(world):
    from tests.factories import make_configuration

    return _once(world, "configuration_a", lambda: make_configuration(world.org_a))


def _directory_job(world):
    from o365.models import DirectoryJob

    return _once(
        world,
        "directory_job_a",
        lambda: DirectoryJob.objects.create(
            configuration=_configuration(world), kind="sync", status="succeeded"
        ),
    )


def _backup_run(world):
    from backups.models import BackupRun
    from o365.models import DirectoryUser

    def make():
        user = DirectoryUser.objects.create(
            configuration=_configuration(world),
            graph_id=str(uuid.uuid4()),
            user_principal_name="kim@alpha.example",
        )
        return BackupRun.objects.create(
            organization=world.org_a, configuration=user.configuration, directory_user=user
        )

    return _once(world, "backup_run_a", make)


def _file_version(world):
    """A backed-up file of organization A's user (the one of the user_graph_id argument)."""
    from backups.models import DriveState, FileVersion

    def make():
        run = _backup_run(world)
        drive = DriveState.objects.create(
            organization=world.org_a, directory_user=run.directory_user, drive_id="b!alpha"
        )
        return FileVersion.objects.create(
            organization=world.org_a,
            drive=drive,
            item_id="item-1",
            path="/Report.docx",
            name="Report.docx",
            size=3,
            first_run=run,
        )

    return _once(world, "file_version_a", make)


def _restore_job(world):
    from backups.models import RestoreJob

    def make():
        run = _backup_run(world)
        return RestoreJob.objects.create(
            organization=world.org_a,
            source_user=run.directory_user,
            target_user=run.directory_user,
            as_of_run=run,
            paths=["/Report.docx"],
        )

    return _once(world, "restore_job_a", make)


def _schedule(world):
    from schedules.models import Schedule

    return _once(
        world,
        "schedule_a",
        lambda: Schedule.objects.create(
            organization=world.org_a, configuration=_configuration(world), name="Nightly"
        ),
    )


def _cloud(world):
    """A custom cloud enabled for organization A (server administrator pages only)."""
    from o365.models import Cloud, CloudAccess

    def make():
        cloud = Cloud.objects.create(
            key="alpha-cloud",
            name="Alpha cloud",
            authority_host="https://login.alpha.example",
            graph_base_url="https://graph.alpha.example/v1.0",
        )
        CloudAccess.objects.create(cloud=cloud, organization=world.org_a)
        return cloud

    return _once(world, "cloud_a", make)


# URL argument name -> a function of the test world giving a value owned by organization A.
ORGANIZATION_OBJECTS = {
    "org_code": lambda world: world.org_a.code,
    "user_id": lambda world: world.admin_a.pk,
    "configuration_code": lambda world: _configuration(world).code,
    "job_code": lambda world: _directory_job(world).code,
    "user_graph_id": lambda world: _backup_run(world).directory_user.graph_id,
    "run_code": lambda world: _backup_run(world).code,
    "schedule_code": lambda world: _schedule(world).code,
    "version_id": lambda world: _file_version(world).pk,
    "restore_code": lambda world: _restore_job(world).code,
    "cloud_code": lambda world: _cloud(world).code,
}

# Patterns with arguments that are not organization data.
NOT_ORGANIZATION_SCOPED = {"password_reset_confirm"}


def _walk(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            if entry.app_name == "admin":
                continue  # Django admin: superusers only, tested by Django itself
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield entry, prefix + str(entry.pattern)


def scoped_patterns():
    found = []
    for pattern, route in _walk(get_resolver().url_patterns):
        if pattern.pattern.converters and pattern.name not in NOT_ORGANIZATION_SCOPED:
            found.append(pytest.param(pattern, route, id=pattern.name or route))
    return found


def _fill(route, converters, world):
    url = "/" + route
    for name, converter in converters.items():
        assert name in ORGANIZATION_OBJECTS, f"add a factory for <{name}> (in {route})"
        value = ORGANIZATION_OBJECTS[name](world)
        placeholder = f"<{converter.__class__.__name__.replace('Converter', '').lower()}:{name}>"
        url = url.replace(placeholder, converter.to_url(value)).replace(f"<{name}>", str(value))
    assert "<" not in url, f"could not fill {route}"
    return url


def test_there_are_organization_scoped_urls():
    assert len(scoped_patterns()) >= 5


@pytest.mark.parametrize(("pattern", "route"), scoped_patterns())
def test_outsider_gets_404(pattern, route, admin_b_client, world):
    url = _fill(route, pattern.pattern.converters, world)
    assert admin_b_client.get(url).status_code == 404, url
    assert admin_b_client.post(url, {}).status_code == 404, url


@pytest.mark.parametrize(("pattern", "route"), scoped_patterns())
def test_anonymous_is_sent_to_log_in(pattern, route, client, world):
    url = _fill(route, pattern.pattern.converters, world)
    response = client.get(url)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"], url


@pytest.fixture(params=["same organization", "another organization"])
def self_service_client(request, client, world):
    """A user with self-service on (every users_may_* allowed) and a OneDrive of their own, in
    organization A (the walked URLs name another user of it) or in organization B."""
    from o365.models import DirectoryUser
    from organizations.models import Membership
    from tests.factories import make_account, make_configuration

    org = world.org_a if request.param == "same organization" else world.org_b
    org.self_service_enabled = True
    org.users_may_browse = org.users_may_download = org.users_may_restore = True
    org.save()
    account = make_account(f"self-{org.pk}@example.com", org, role=Membership.Role.USER)
    DirectoryUser.objects.create(
        configuration=make_configuration(org, name="Own"),
        graph_id=str(uuid.uuid4()),
        user_principal_name=account.email,
        account=account,
    )
    client.force_login(account)
    return client


@pytest.mark.parametrize(("pattern", "route"), scoped_patterns())
def test_a_self_service_user_gets_404_on_every_other_users_url(
    pattern, route, self_service_client, world
):
    """Every browse, download and restore URL of another user (and every admin page) is 404 to
    a user with self-service, of the same organization or of another."""
    url = _fill(route, pattern.pattern.converters, world)
    assert self_service_client.get(url).status_code == 404, url
    assert self_service_client.post(url, {}).status_code == 404, url


def test_a_user_without_self_service_gets_404_on_my_backups(client, world):
    client.force_login(world.user_a)
    assert client.get("/my/").status_code == 404
