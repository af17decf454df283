"""Inviting imported users from the Users page (a password link or Sign in with Microsoft), and
the person signed in after setting a password from an invitation link."""

import datetime as dt
import importlib
import re
from unittest import mock

import pytest
from django.apps import apps as django_apps
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from o365.models import DirectoryUser
from organizations import invitations
from organizations.models import AuditEvent, Membership
from tests.factories import make_account, make_configuration

NEW_PASSWORD = "a-new-long-password-7"


def imported(world, email, organization=None):
    """A user account as IMPORT USERS makes it: role user, no password, linked to the directory."""
    organization = organization or world.org_a
    account = make_account(email, organization, role=Membership.Role.USER, first_name="Kim")
    account.set_unusable_password()
    account.save()
    configuration = organization.configurations.first() or make_configuration(organization)
    DirectoryUser.objects.create(
        configuration=configuration,
        graph_id=email,
        account=account,
        user_principal_name=email,
    )
    return account


def users_url(world):
    return f"/o/{world.org_a.code}/users/"


def invite_url(world, user):
    return f"/o/{world.org_a.code}/users/{user.pk}/invite/"


def link_in(email):
    return re.search(r"https?://\S+/accounts/reset/\S+/", email.body).group(0)


def test_an_admin_invites_one_user_with_a_password_link(admin_a_client, world, mailoutbox):
    kim = imported(world, "kim@alpha.example")
    response = admin_a_client.post(invite_url(world, kim), {"method": "password"})
    assert response.status_code == 302 and response["Location"] == users_url(world)
    assert [m.to for m in mailoutbox] == [["kim@alpha.example"]]
    assert "Alpha University" in mailoutbox[0].body and "/accounts/reset/" in mailoutbox[0].body
    event = AuditEvent.objects.get(action="user_invited")
    assert event.actor == world.admin_a and event.organization == world.org_a
    assert "kim@alpha.example" in event.message

    page = admin_a_client.get(users_url(world)).content.decode()
    assert "Invited " in page and "INVITE ALL" in page


def test_setting_the_password_from_the_invitation_signs_the_user_in(
    admin_a_client, world, mailoutbox
):
    kim = imported(world, "kim@alpha.example")
    admin_a_client.post(invite_url(world, kim), {"method": "password"})
    visitor = Client()
    form_page = visitor.get(link_in(mailoutbox[0]))
    assert form_page.status_code == 302  # Django moves the token into the session
    response = visitor.post(
        form_page["Location"], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert response.status_code == 302 and response["Location"] == "/"
    assert visitor.session["_auth_user_id"] == str(kim.pk)
    kim.refresh_from_db()
    assert kim.check_password(NEW_PASSWORD)
    # The link works once.
    assert "expired" in Client().get(link_in(mailoutbox[0]), follow=True).content.decode()


def test_an_invited_admin_who_must_use_two_factor_sets_it_up_first(
    server_admin_client, world, mailoutbox, settings
):
    world.admin_a.set_unusable_password()
    world.admin_a.save()
    server_admin_client.post(
        f"/server/organizations/{world.org_a.code}/admins/{world.admin_a.pk}/invite/"
    )
    # Turned on after the server administrator's force_login, whose session gave no code.
    settings.KODO_REQUIRE_TWO_FACTOR_FOR_ADMINS = True
    visitor = Client()
    form_page = visitor.get(link_in(mailoutbox[-1]))
    response = visitor.post(
        form_page["Location"], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert response["Location"] == "/accounts/login/set-up/"
    assert "_auth_user_id" not in visitor.session


def test_invite_all_sends_only_to_users_not_invited_yet(admin_a_client, world, mailoutbox):
    first = imported(world, "a1@alpha.example")
    imported(world, "a2@alpha.example")
    imported(world, "a3@alpha.example")
    admin_a_client.post(invite_url(world, first), {"method": "password"})
    mailoutbox.clear()

    admin_a_client.post(f"/o/{world.org_a.code}/users/invite/", {"method": "password"})
    assert sorted(m.to[0] for m in mailoutbox) == ["a2@alpha.example", "a3@alpha.example"]
    assert AuditEvent.objects.filter(action="user_invited").count() == 3

    mailoutbox.clear()
    again = admin_a_client.post(
        f"/o/{world.org_a.code}/users/invite/", {"method": "password"}, follow=True
    )
    assert mailoutbox == []
    assert "invited already" in again.content.decode()


def test_invitations_never_go_to_an_admin_or_an_unlinked_account(admin_a_client, world, mailoutbox):
    operator = make_account("op@alpha.example", world.org_a, role=Membership.Role.OPERATOR)
    DirectoryUser.objects.create(
        configuration=make_configuration(world.org_a),
        graph_id="op",
        account=operator,
        user_principal_name="op@alpha.example",
    )
    for account in (world.admin_a, world.user_a, operator):  # user_a was never imported
        response = admin_a_client.post(invite_url(world, account), {"method": "password"})
        assert response.status_code == 404, account
    admin_a_client.post(f"/o/{world.org_a.code}/users/invite/", {"method": "password"})
    assert mailoutbox == []


def test_a_user_of_another_organization_cannot_be_invited(admin_a_client, world, mailoutbox):
    stranger = imported(world, "kim@beta.example", organization=world.org_b)
    assert (
        admin_a_client.post(invite_url(world, stranger), {"method": "password"}).status_code == 404
    )
    assert mailoutbox == []


def test_only_admins_invite(client, world, mailoutbox):
    kim = imported(world, "kim@alpha.example")
    client.force_login(world.user_a)
    assert client.post(invite_url(world, kim), {"method": "password"}).status_code == 404
    assert mailoutbox == []


def test_sign_in_with_microsoft_invitation_needs_the_server_setting(
    admin_a_client, world, mailoutbox, settings
):
    kim = imported(world, "kim@alpha.example")
    settings.KODO_MICROSOFT_SIGNIN_CLIENT_ID = ""
    admin_a_client.post(invite_url(world, kim), {"method": "microsoft"})
    assert mailoutbox == []
    assert "INVITE (MICROSOFT)" not in admin_a_client.get(users_url(world)).content.decode()

    settings.KODO_MICROSOFT_SIGNIN_CLIENT_ID = "11111111-2222-3333-4444-555555555555"
    assert "INVITE (MICROSOFT)" in admin_a_client.get(users_url(world)).content.decode()
    admin_a_client.post(invite_url(world, kim), {"method": "microsoft"})
    assert "Sign in with Microsoft" in mailoutbox[0].body
    assert "/accounts/reset/" not in mailoutbox[0].body
    assert "to sign in with Microsoft" in AuditEvent.objects.get(action="user_invited").message


@pytest.mark.parametrize("method", ["", "sms", "x" * 500])
def test_a_bad_method_is_refused_without_an_email(admin_a_client, world, mailoutbox, method):
    kim = imported(world, "kim@alpha.example")
    response = admin_a_client.post(invite_url(world, kim), {"method": method})
    assert response.status_code == 302 and mailoutbox == []


def test_the_users_page_queries_do_not_grow_with_invitations(
    admin_a_client, world, django_assert_max_num_queries
):
    users = [imported(world, f"u{i}@alpha.example") for i in range(3)]
    admin_a_client.post(f"/o/{world.org_a.code}/users/invite/", {"method": "password"})
    with django_assert_max_num_queries(30) as few:
        admin_a_client.get(users_url(world))
    budget = len(few)  # read now: the next request starts a new query log
    users += [imported(world, f"v{i}@alpha.example") for i in range(20)]
    admin_a_client.post(f"/o/{world.org_a.code}/users/invite/", {"method": "password"})
    with django_assert_max_num_queries(budget):
        page = admin_a_client.get(users_url(world)).content.decode()
    assert page.count("Invited ") >= len(users)
    assert get_user_model().objects.filter(last_login__isnull=False).count() == 1


def test_the_invitation_time_is_kept_on_the_membership(admin_a_client, world, mailoutbox):
    kim = imported(world, "kim@alpha.example")
    membership = Membership.objects.get(user=kim, organization=world.org_a)
    assert membership.invited_at is None
    assert "Not invited" in admin_a_client.get(users_url(world)).content.decode()
    admin_a_client.post(invite_url(world, kim), {"method": "password"})
    membership.refresh_from_db()
    event = AuditEvent.objects.get(action="user_invited")
    assert abs((membership.invited_at - event.created_at).total_seconds()) < 5
    page = admin_a_client.get(users_url(world)).content.decode()
    assert f'title="{timezone.localtime(membership.invited_at):%Y-%m-%d %H:%M}"' in page
    assert "Not invited" not in page
    # An email that could not be sent is no invitation.
    membership.invited_at = None
    membership.save()
    with mock.patch("organizations.actions.send_email", return_value=False):
        admin_a_client.post(invite_url(world, kim), {"method": "password"})
    membership.refresh_from_db()
    assert membership.invited_at is None


def test_the_migration_fills_invited_at_from_the_audit_log(world):
    migration = importlib.import_module("organizations.migrations.0005_membership_invited_at")
    kim = imported(world, "kim@alpha.example")
    lee = imported(world, "lee@alpha.example")
    beta_kim = imported(world, "kim@beta.example", organization=world.org_b)
    never = imported(world, "never@alpha.example")
    when = timezone.now() - dt.timedelta(days=3)
    for days, organization, email, method in [
        (0, world.org_a, kim.email, "password"),
        (2, world.org_a, kim.email, "microsoft"),  # the last one counts
        (1, world.org_a, lee.email, "microsoft"),
        (1, world.org_b, kim.email, "password"),  # another organization's entry
        (1, world.org_b, beta_kim.email, "password"),
    ]:
        AuditEvent.objects.create(
            action="user_invited",
            message=invitations.message(email, method),
            organization=organization,
        )
        AuditEvent.objects.filter(pk=AuditEvent.objects.latest("pk").pk).update(
            created_at=when + dt.timedelta(days=days)
        )
    migration.invited_from_audit_log(django_apps, None)
    invited = dict(Membership.objects.values_list("user_id", "invited_at"))
    assert invited[kim.pk] == when + dt.timedelta(days=2)
    assert invited[lee.pk] == when + dt.timedelta(days=1)
    assert invited[beta_kim.pk] == when + dt.timedelta(days=1)
    assert invited[never.pk] is None and invited[world.admin_a.pk] is None
