import datetime as dt

from django.utils import timezone

from organizations.models import AuditEvent
from tests.factories import PASSWORD


def _event(org, action, message, days_ago=0, ip="192.0.2.1"):
    event = AuditEvent.objects.create(
        organization=org,
        action=action,
        message=message,
        actor_email="someone@example.com",
        ip_address=ip,
    )
    AuditEvent.objects.filter(pk=event.pk).update(
        created_at=timezone.now() - dt.timedelta(days=days_ago)
    )
    return event


def test_log_in_and_failed_log_in_are_recorded_with_ip(client, world):
    client.post(
        "/accounts/login/",
        {"username": "admin@alpha.example", "password": "wrong"},
        REMOTE_ADDR="203.0.113.9",
    )
    client.post(
        "/accounts/login/",
        {"username": "ADMIN@alpha.example", "password": PASSWORD},
        REMOTE_ADDR="203.0.113.9",
    )
    failed = AuditEvent.objects.get(action="login_failed")
    assert failed.organization == world.org_a and failed.ip_address == "203.0.113.9"
    login = AuditEvent.objects.get(action="login")
    assert login.actor == world.admin_a and login.organization == world.org_a


def test_failed_log_in_as_unknown_email_is_recorded(client, world):
    client.post("/accounts/login/", {"username": "nobody@example.com", "password": "x"})
    event = AuditEvent.objects.get(action="login_failed")
    assert event.actor is None and event.actor_email == "nobody@example.com"
    assert event.organization is None


def test_org_admin_sees_only_their_organization(admin_a_client, world):
    _event(world.org_a, "services_enabled", "Alpha thing")
    _event(world.org_b, "services_enabled", "Beta thing")
    page = admin_a_client.get(f"/o/{world.org_a.code}/audit/").content
    assert b"Alpha thing" in page and b"Beta thing" not in page


def test_server_admin_sees_all(server_admin_client, world):
    _event(world.org_a, "x", "Alpha thing")
    _event(world.org_b, "x", "Beta thing")
    page = server_admin_client.get("/server/audit/").content
    assert b"Alpha thing" in page and b"Beta thing" in page


def test_search_by_keyword_and_dates(admin_a_client, world):
    _event(world.org_a, "login", "Old entry", days_ago=10)
    _event(world.org_a, "services_enabled", "New entry", days_ago=0)
    url = f"/o/{world.org_a.code}/audit/"
    assert b"Old entry" not in admin_a_client.get(url, {"q": "services"}).content
    today = timezone.localdate()
    recent = admin_a_client.get(url, {"since": (today - dt.timedelta(days=2)).isoformat()})
    assert b"New entry" in recent.content and b"Old entry" not in recent.content
    older = admin_a_client.get(url, {"until": (today - dt.timedelta(days=5)).isoformat()})
    assert b"Old entry" in older.content and b"New entry" not in older.content


def test_bad_search_input_gets_a_message(admin_a_client, world):
    url = f"/o/{world.org_a.code}/audit/"
    response = admin_a_client.get(url, {"since": "2026-02-30", "page": "zz"})
    assert response.status_code == 200 and b"Enter a valid date" in response.content
    response = admin_a_client.get(url, {"since": "2026-05-02", "until": "2026-05-01"})
    assert b"The start date is after the end date." in response.content


def test_audit_pages_are_paginated(admin_a_client, world, django_assert_max_num_queries):
    AuditEvent.objects.bulk_create(
        AuditEvent(organization=world.org_a, action="x", message=f"entry {i}") for i in range(120)
    )
    with django_assert_max_num_queries(8):
        response = admin_a_client.get(f"/o/{world.org_a.code}/audit/", {"page": 2})
    assert b"Page 2 of 3" in response.content


def test_times_are_shown_in_the_organizations_time_zone(admin_a_client, world):
    event = _event(world.org_a, "x", "Zoned entry")
    AuditEvent.objects.filter(pk=event.pk).update(
        created_at=dt.datetime(2026, 7, 1, 10, 0, tzinfo=dt.UTC)
    )
    page = admin_a_client.get(f"/o/{world.org_a.code}/audit/").content.decode()
    assert "2026-07-01 12:00:00" in page  # Europe/Warsaw in summer: UTC+2
