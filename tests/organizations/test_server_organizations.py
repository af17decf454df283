import re

from django.contrib.auth import get_user_model
from django.core import mail

from organizations.models import AuditEvent, Membership, Organization


def test_server_admin_lists_organizations(server_admin_client, world):
    response = server_admin_client.get("/server/organizations/")
    assert response.status_code == 200
    assert b"Alpha University" in response.content and b"Beta MSP" in response.content


def test_org_admin_cannot_see_server_pages(admin_a_client):
    assert admin_a_client.get("/server/organizations/").status_code == 404
    assert admin_a_client.get("/server/organizations/new/").status_code == 404
    assert admin_a_client.get("/server/audit/").status_code == 404


def test_it_creates_an_organization_with_its_first_admin(
    server_admin_client, world, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = server_admin_client.post(
            "/server/organizations/new/",
            {
                "name": "Gamma College",
                "time_zone": "America/New_York",
                "admin_name": "Grace Hopper",
                "admin_email": "Grace@Gamma.example",
            },
        )
    org = Organization.objects.get(name="Gamma College")
    assert response.status_code == 302
    assert response["Location"] == f"/server/organizations/{org.code}/"
    admin = get_user_model().objects.get(username="grace@gamma.example")
    assert not admin.has_usable_password()
    assert (admin.first_name, admin.last_name) == ("Grace", "Hopper")
    assert Membership.objects.get(user=admin).role == "admin"
    assert not org.services_enabled
    assert AuditEvent.objects.filter(action="organization_created", organization=org).exists()

    [email] = mail.outbox
    assert email.to == ["grace@gamma.example"]
    link = re.search(r"https?://\S+/accounts/reset/\S+/", email.body).group(0)

    # Shown once on screen, then gone.
    first = server_admin_client.get(response["Location"])
    assert link.encode() in first.content
    assert link.encode() not in server_admin_client.get(response["Location"]).content


def test_the_invitation_link_sets_a_password(
    server_admin_client, client, world, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        server_admin_client.post(
            "/server/organizations/new/",
            {
                "name": "Delta",
                "time_zone": "UTC",
                "admin_name": "Dee",
                "admin_email": "dee@delta.example",
            },
        )
    link = re.search(r"https?://[^/\s]+(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)
    client.logout()
    form_page = client.get(link, follow=True)
    assert b"Set your password" in form_page.content
    set_url = form_page.redirect_chain[-1][0]
    response = client.post(
        set_url,
        {"new_password1": "a-long-new-passphrase-42", "new_password2": "a-long-new-passphrase-42"},
    )
    assert response.status_code == 302
    assert (
        get_user_model()
        .objects.get(username="dee@delta.example")
        .check_password("a-long-new-passphrase-42")
    )
    # The link works once.
    assert b"This link has expired" in client.get(link, follow=True).content


def test_it_refuses_bad_organization_input(server_admin_client, world):
    response = server_admin_client.post(
        "/server/organizations/new/",
        {
            "name": "alpha university",
            "time_zone": "Mars/Olympus",
            "admin_name": "",
            "admin_email": "admin@beta.example",
        },
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert "An organization with this name already exists." in text
    assert "Select a valid choice" in text
    assert "This email already has a Kodo account" in text
    assert Organization.objects.count() == 2


def test_it_enables_and_disables_services(server_admin_client, world):
    org = world.org_b
    server_admin_client.post(f"/server/organizations/{org.code}/services/", {})
    org.refresh_from_db()
    assert not org.services_enabled
    server_admin_client.post(
        f"/server/organizations/{org.code}/services/", {"services_enabled": "on"}
    )
    org.refresh_from_db()
    assert org.services_enabled
    actions = list(AuditEvent.objects.filter(organization=org).values_list("action", flat=True))
    assert actions == ["services_enabled", "services_disabled"]


def test_services_toggle_needs_post(server_admin_client, world):
    response = server_admin_client.get(f"/server/organizations/{world.org_a.code}/services/")
    assert response.status_code == 405


def test_it_sends_a_new_invitation(server_admin_client, world):
    url = f"/server/organizations/{world.org_a.code}/admins/{world.admin_a.pk}/invite/"
    response = server_admin_client.post(url)
    assert response.status_code == 302
    assert mail.outbox[0].to == ["admin@alpha.example"]
    # A plain user is not an admin: nothing to re-invite.
    url = f"/server/organizations/{world.org_a.code}/admins/{world.user_a.pk}/invite/"
    assert server_admin_client.post(url).status_code == 404
