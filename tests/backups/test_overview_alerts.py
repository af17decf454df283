"""The overview's alerts where an organization's admins see them: the Dashboard and the weekly
summary email (failing connection, expiring certificate, users not backed up for 48 hours)."""

import datetime as dt

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from backups.models import BackupRun
from o365.models import DirectoryJob
from schedules.notifications import send_summary_report
from tests.backups.test_server_overview import back_up, directory_job
from tests.factories import make_configuration, make_users


@pytest.fixture
def troubled(world):
    """Organization A: a configuration whose TEST CONNECTION failed, one whose certificate
    expires in 5 days, 12 users last backed up 3 days ago and one backed up an hour ago."""
    now = timezone.now()
    users = make_users(world.org_a, 13)
    configuration = users[0].configuration
    configuration.name = "Contoso"
    configuration.save(update_fields=["name"])
    configuration.record_test(ok=False, message="AADSTS7000215: Invalid client secret")
    make_configuration(world.org_a, name="Fabrikam", certificate_not_after=now + dt.timedelta(5))
    for hours, user in enumerate(users[:12]):
        back_up(user, hours_ago=72 + hours)
    back_up(users[12], hours_ago=1)
    # Organization B's troubles stay in B.
    other = make_users(world.org_b, 1)[0]
    other.configuration.name = "Northwind"
    other.configuration.save(update_fields=["name"])
    back_up(other, hours_ago=80)
    directory_job(other.configuration, hours_ago=1, status=DirectoryJob.Status.FAILED)
    return users


def _dashboard(client, world) -> str:
    response = client.get(f"/o/{world.org_a.code}/")
    assert response.status_code == 200
    return response.content.decode()


def test_the_dashboard_shows_the_organizations_alerts(admin_a_client, world, troubled):
    page = _dashboard(admin_a_client, world)

    assert "Needs attention" in page
    assert "Connection failing" in page and "Contoso: TEST CONNECTION failed" in page
    assert f'href="/o/{world.org_a.code}/services/office365/configuration/"' in page
    assert "Certificate expiring" in page and "The certificate of Fabrikam expires on" in page
    assert "12 users were not backed up for more than 48 hours" in page
    # The ten longest late are named, with a link to their history; the others are counted.
    oldest = troubled[11]
    assert str(oldest) in page
    assert f"/users/{oldest.graph_id}/" in page
    assert f"/users/{troubled[1].graph_id}/" not in page
    assert "and 2 more" in page
    assert "Northwind" not in page  # organization B's


def test_a_dashboard_without_trouble_has_no_alerts(admin_a_client, world):
    user = make_users(world.org_a, 1)[0]
    back_up(user, hours_ago=1)

    assert "Needs attention" not in _dashboard(admin_a_client, world)


def test_a_removed_user_is_not_late(admin_a_client, world):
    user = make_users(world.org_a, 1)[0]
    back_up(user, hours_ago=100)
    user.removed_at = timezone.now()
    user.save(update_fields=["removed_at"])

    assert "Needs attention" not in _dashboard(admin_a_client, world)


def test_a_user_whose_last_backup_failed_is_late_from_its_last_completed_one(admin_a_client, world):
    user = make_users(world.org_a, 1)[0]
    back_up(user, hours_ago=50)
    back_up(user, hours_ago=1, status=BackupRun.Status.FAILED)

    assert "1 user was not backed up for more than 48 hours" in _dashboard(admin_a_client, world)


def test_the_dashboards_alerts_cost_a_fixed_number_of_queries(admin_a_client, world, troubled):
    _dashboard(admin_a_client, world)
    with CaptureQueriesContext(connection) as few:
        _dashboard(admin_a_client, world)
    for user in make_users(world.org_a, 30, configuration=troubled[0].configuration):
        back_up(user, hours_ago=60)
    for i in range(5):
        make_configuration(world.org_a, name=f"Failing {i}").record_test(ok=False, message="no")
    with CaptureQueriesContext(connection) as many:
        page = _dashboard(admin_a_client, world)

    assert "42 users were not backed up" in page
    assert len(many) == len(few)


def test_the_weekly_email_lists_the_alerts(world, troubled):
    since = timezone.now() - dt.timedelta(days=7)

    assert send_summary_report(world.org_a, since, 7)

    [email] = mail.outbox
    body = email.body
    assert "Needs attention:" in body
    assert "- Configuration Contoso: TEST CONNECTION failed on " in body
    assert "- Configuration Fabrikam: the certificate expires on " in body
    assert "- 12 users not backed up for more than 48 hours: " in body
    assert troubled[11].email in body and "and 2 more." in body
    assert "Northwind" not in body
    assert "AADSTS" not in body


def test_a_weekly_email_without_trouble_has_no_alerts(world):
    back_up(make_users(world.org_a, 1)[0], hours_ago=2)

    assert send_summary_report(world.org_a, timezone.now() - dt.timedelta(days=7), 7)

    assert "Needs attention" not in mail.outbox[0].body
