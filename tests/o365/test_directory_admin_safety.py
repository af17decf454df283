"""Directory data (IMPORT USERS, SYNCHRONIZE USERS, automatic synchronization) only creates, links
and changes accounts whose one role is *user* of the organization; a link is kept by the Microsoft
365 object id; an address that is not a valid email is never stored as a login (issue 10, item 1).
"""

import pytest
from django.contrib.auth import get_user_model

from o365 import actions, tasks
from o365.directory import ADMINISTRATOR
from o365.models import DirectoryJob, DirectoryUser
from organizations.models import Membership
from tests.factories import make_account, sim_configuration

User = get_user_model()


@pytest.fixture
def tenant(tmp_path):
    """A small simulated tenant per test: these tests change its users."""
    from m365sim import Simulator

    sim = Simulator.generate(seed=10, users=6, files_per_user=0, users_without_drive=0)
    with sim.serve(state_dir=tmp_path) as running:
        running.sim = sim
        yield running


def run(configuration, kind="import", **options):
    job = DirectoryJob.objects.create(configuration=configuration, kind=kind, options=options)
    actions.do_run_directory_job(job.pk)
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    return job


def add_sim_user(tenant, upn, **fields):
    fields.setdefault("display_name", "Eve Mallory")
    return tenant.sim.add_user(upn=upn, **fields)["id"]


def state(account):
    """What directory data must never change on an administrator."""
    account.refresh_from_db()
    return (
        account.username,
        account.email,
        account.is_active,
        account.first_name,
        account.last_name,
        sorted(account.memberships.values_list("organization", "role")),
    )


def reasons(job, email):
    return [d["reason"] for d in job.conflict_details if d["email"] == email.lower()]


def linked_pairs(configuration):
    """(graph id, account) of each linked, enabled and licensed Microsoft 365 user."""
    rows = DirectoryUser.objects.filter(
        configuration=configuration, account__isnull=False, account_enabled=True
    ).select_related("account")
    return [(row.graph_id, row.account) for row in rows.order_by("pk")]


def test_a_mail_set_to_the_org_admins_email_never_disables_or_renames_the_admin(tenant, world):
    configuration = sim_configuration(world.org_a, tenant)
    run(configuration)
    admin_before = state(world.admin_a)
    eve = add_sim_user(tenant, "eve", mail="admin@alpha.example", account_enabled=False)

    job = run(configuration, kind="sync")
    assert state(world.admin_a) == admin_before  # still enabled, same login
    assert reasons(job, "admin@alpha.example") == [ADMINISTRATOR]
    assert DirectoryUser.objects.get(configuration=configuration, graph_id=eve).account is None

    tenant.sim.update_user(eve, mail="eve@evil.example", account_enabled=True)
    run(configuration, kind="sync")
    assert state(world.admin_a) == admin_before
    assert not User.objects.filter(username="eve@evil.example").exists()
    assert not DirectoryUser.objects.filter(account=world.admin_a).exists()


@pytest.mark.parametrize("who", ["admin_a", "server_admin", "admin_b"])
def test_import_reports_an_administrators_email_as_a_conflict(tenant, world, who):
    administrator = getattr(world, who)
    if who != "admin_a":  # also a plain user of A: still an administrator
        Membership.objects.create(
            user=administrator, organization=world.org_a, role=Membership.Role.USER
        )
    before = state(administrator)
    add_sim_user(tenant, "eve", mail=administrator.email.upper())
    configuration = sim_configuration(world.org_a, tenant)

    job = run(configuration)
    assert reasons(job, administrator.email) == [ADMINISTRATOR]
    assert state(administrator) == before
    assert not DirectoryUser.objects.filter(account=administrator).exists()
    assert User.objects.filter(email__iexact=administrator.email).count() == 1


def test_import_never_links_a_restore_operators_account(tenant, world):
    """An operator reaches every user's data: like an administrator, never linked by email
    (Sign in with Microsoft needs the link the operator confirmed)."""
    Membership.objects.filter(user=world.user_a, organization=world.org_a).update(
        role=Membership.Role.OPERATOR
    )
    before = state(world.user_a)
    add_sim_user(tenant, "olga", mail=world.user_a.email)
    configuration = sim_configuration(world.org_a, tenant)

    job = run(configuration)
    assert reasons(job, world.user_a.email) == [ADMINISTRATOR]
    assert state(world.user_a) == before
    assert not DirectoryUser.objects.filter(account=world.user_a).exists()


def test_a_user_of_another_organization_is_never_linked_even_if_also_a_user_here(tenant, world):
    shared = make_account("pat@beta.example", world.org_b, role=Membership.Role.USER)
    Membership.objects.create(user=shared, organization=world.org_a, role=Membership.Role.USER)
    before = state(shared)
    add_sim_user(tenant, "pat", mail="pat@beta.example", account_enabled=True)
    configuration = sim_configuration(world.org_a, tenant)

    job = run(configuration)
    assert "another organization" in reasons(job, "pat@beta.example")[0]
    assert state(shared) == before
    assert not DirectoryUser.objects.filter(account=shared).exists()


def test_a_mail_moved_to_a_linked_accounts_email_never_moves_the_link_or_merges(tenant, world):
    configuration = sim_configuration(world.org_a, tenant)
    run(configuration)
    (first_id, first), (second_id, second) = linked_pairs(configuration)[:2]
    first_before, second_before = state(first), state(second)
    skipped = add_sim_user(tenant, "sam", account_enabled=False)  # not imported: disabled
    run(configuration)
    tenant.sim.update_user(skipped, mail=first.email)
    tenant.sim.update_user(second_id, mail=first.email.upper())

    job = run(configuration, kind="sync")
    assert "already linked" in reasons(job, first.email)[0]
    assert "another Kodo account has that email" in reasons(job, first.email)[1]
    assert DirectoryUser.objects.get(configuration=configuration, graph_id=skipped).account is None
    assert (
        DirectoryUser.objects.get(configuration=configuration, graph_id=first_id).account == first
    )
    assert (
        DirectoryUser.objects.get(configuration=configuration, graph_id=second_id).account == second
    )
    assert state(first) == first_before and state(second) == second_before


def test_a_mail_changed_to_a_free_address_renames_only_the_linked_user(tenant, world):
    configuration = sim_configuration(world.org_a, tenant)
    run(configuration)
    graph_id, account = linked_pairs(configuration)[0]
    tenant.sim.update_user(graph_id, mail="New.Address@alpha.example")

    job = run(configuration, kind="sync")
    assert not job.conflict_details
    assert (
        DirectoryUser.objects.get(configuration=configuration, graph_id=graph_id).account == account
    )
    account.refresh_from_db()
    assert (account.username, account.email) == ("new.address@alpha.example",) * 2


def test_a_mail_that_another_account_has_in_another_case_is_a_conflict(tenant, world):
    other = make_account("Casey@Alpha.example", world.org_a, role=Membership.Role.USER)
    configuration = sim_configuration(world.org_a, tenant)
    run(configuration)
    graph_id, account = linked_pairs(configuration)[0]
    before = state(account)
    tenant.sim.update_user(graph_id, mail="casey@alpha.example")

    job = run(configuration, kind="sync")
    assert "another Kodo account has that email" in reasons(job, "casey@alpha.example")[0]
    assert state(account) == before
    assert User.objects.filter(email__iexact="casey@alpha.example").get() == other


@pytest.mark.parametrize("role", [Membership.Role.ADMIN, Membership.Role.OPERATOR])
def test_a_linked_account_made_an_administrator_is_unlinked_and_never_changed(tenant, world, role):
    configuration = sim_configuration(world.org_a, tenant)
    run(configuration)
    graph_id, account = linked_pairs(configuration)[0]
    Membership.objects.filter(user=account).update(role=role)
    before = state(account)
    tenant.sim.update_user(
        graph_id, display_name="Changed Name", account_enabled=False, mail="elsewhere@evil.example"
    )

    job = run(configuration, kind="sync")
    assert state(account) == before
    assert DirectoryUser.objects.get(configuration=configuration, graph_id=graph_id).account is None
    assert (
        "is an administrator or a restore operator: it was unlinked"
        in reasons(job, "elsewhere@evil.example")[0]
    )


BAD_ADDRESSES = [
    "not-an-email",
    '"a\x01b"@alpha.example',  # a control character Django's EmailValidator lets through
    "eve@evil.example\r\nBcc: x@evil.example",
    "ev\u202ee@alpha.example",  # right-to-left override
    "eve@alpha.exa\x00mple",  # NUL: PostgreSQL refuses it even in the mirror
    "x" * 140 + "@alpha.example",  # longer than a login may be
    "y" * 400 + "@alpha.example",  # longer than Graph's column: cut, never valid
]


@pytest.mark.parametrize("address", BAD_ADDRESSES)
def test_an_address_that_is_not_a_valid_email_is_skipped_with_a_reason(tenant, world, address):
    add_sim_user(tenant, "odd", mail=address)
    configuration = sim_configuration(world.org_a, tenant)

    job = run(configuration)
    row = DirectoryUser.objects.get(
        configuration=configuration, user_principal_name__startswith="odd@"
    )
    assert row.account is None
    assert len(row.mail) <= DirectoryUser._meta.get_field("mail").max_length
    assert "\x00" not in row.mail
    detail = next(d for d in job.conflict_details if d["name"] == "Eve Mallory")
    assert detail["skipped"] and "skipped" in detail["reason"]
    assert not User.objects.filter(username__startswith=address[:10].lower()).exists()


@pytest.mark.parametrize("address", BAD_ADDRESSES)
def test_a_linked_users_mail_changed_to_an_invalid_address_keeps_the_login(tenant, world, address):
    configuration = sim_configuration(world.org_a, tenant)
    run(configuration)
    graph_id, account = linked_pairs(configuration)[0]
    login = account.username
    tenant.sim.update_user(graph_id, mail=address)

    job = run(configuration, kind="sync")
    account.refresh_from_db()
    assert (account.username, account.email) == (login, login)
    assert any(d.get("skipped") and login in d["reason"] for d in job.conflict_details)


def test_a_display_name_with_a_nul_is_stored_without_it(tenant, world):
    add_sim_user(tenant, "nul", display_name="Nul\x00Name")
    configuration = sim_configuration(world.org_a, tenant)
    run(configuration)
    row = DirectoryUser.objects.get(
        configuration=configuration, user_principal_name__startswith="nul@"
    )
    assert row.display_name == "Nul\ufffdName" and "\x00" not in row.account.first_name


def test_automatic_synchronization_leaves_administrators_alone(tenant, world):
    configuration = sim_configuration(world.org_a, tenant)
    configuration.auto_sync_enabled = True
    configuration.save(update_fields=["auto_sync_enabled"])
    run(configuration)
    before = state(world.admin_a)
    add_sim_user(tenant, "eve", mail="admin@alpha.example", account_enabled=False)

    tasks.auto_synchronize(configuration.pk)
    job = DirectoryJob.objects.get(configuration=configuration, trigger="schedule")
    actions.do_run_directory_job(job.pk)
    job.refresh_from_db()
    assert job.kind == "sync" and reasons(job, "admin@alpha.example") == [ADMINISTRATOR]
    assert state(world.admin_a) == before


def test_the_job_summary_shows_the_conflict_reason(tenant, world, admin_a_client):
    add_sim_user(tenant, "eve", mail="admin@alpha.example")
    configuration = sim_configuration(world.org_a, tenant)
    job = run(configuration)

    page = admin_a_client.get(
        f"/o/{world.org_a.code}/services/office365/users/{configuration.code}/jobs/{job.code}/"
    )
    assert page.status_code == 200
    assert (
        "admin@alpha.example (Eve Mallory): email belongs to an administrator or a restore operator"
        in page.content.decode()
    )
