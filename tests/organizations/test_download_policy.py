"""The policy "Administrators may download users' data": on by default, set per organization by
the server administrator on the organization's server page, audited; organization admins
cannot change it."""

import re

from django.urls import reverse

from organizations.models import AuditEvent, Organization


def policy_url(org):
    return reverse("organizations:server-organization-download-policy", args=[org.code])


def test_it_is_on_by_default(db):
    assert Organization.objects.create(name="New").admins_may_download


def test_the_server_page_shows_it(server_admin_client, world):
    response = server_admin_client.get(
        reverse("organizations:server-organization", args=[world.org_a.code])
    )
    text = response.content.decode().replace("&#x27;", "'")
    assert "Administrators may download users' data" in text
    assert f'action="{policy_url(world.org_a)}"' in text
    assert re.search(r'<input type="checkbox" name="admins_may_download"[^>]* checked', text)


def test_the_server_administrator_turns_it_off_and_on_with_audit_entries(
    server_admin_client, world
):
    org = world.org_a
    response = server_admin_client.post(policy_url(org), {})
    assert response.status_code == 302
    org.refresh_from_db()
    assert not org.admins_may_download
    server_admin_client.post(policy_url(org), {})  # unchanged: no second entry
    server_admin_client.post(policy_url(org), {"admins_may_download": "on"})
    org.refresh_from_db()
    assert org.admins_may_download
    messages = list(
        AuditEvent.objects.filter(organization=org, action="download_policy_changed")
        .order_by("pk")
        .values_list("message", flat=True)
    )
    assert messages == [
        "Administrators of Alpha University may no longer download users' data.",
        "Administrators of Alpha University may download users' data.",
    ]
    assert Organization.objects.get(pk=world.org_b.pk).admins_may_download


def test_an_organization_admin_cannot_change_it(admin_a_client, world):
    assert admin_a_client.post(policy_url(world.org_a), {}).status_code == 404
    world.org_a.refresh_from_db()
    assert world.org_a.admins_may_download


def test_it_needs_post(server_admin_client, world):
    assert server_admin_client.get(policy_url(world.org_a)).status_code == 405
