"""IMPORT USERS and SYNCHRONIZE USERS against m365sim: matching, choices, delta, faults."""

import pytest
from django.contrib.auth import get_user_model

from o365 import actions
from o365.models import DirectoryJob, DirectoryUser
from organizations.models import Membership
from tests.factories import make_account, sim_configuration

User = get_user_model()


@pytest.fixture
def tenant(tmp_path):
    """A fresh simulated tenant per test: these tests change its users."""
    from m365sim import Simulator

    sim = Simulator.generate(
        seed=7, users=40, files_per_user=0, users_without_drive=2, users_delta_page_size=15
    )
    with sim.serve(state_dir=tmp_path) as running:
        running.sim = sim
        yield running


def run(configuration, kind="import", **options):
    job = DirectoryJob.objects.create(configuration=configuration, kind=kind, options=options)
    actions.do_run_directory_job(job.pk)
    job.refresh_from_db()
    return job


def sim_users(tenant):
    return tenant.sim.list_users()


def expected_imports(tenant):
    return {
        (u.get("mail") or u["userPrincipalName"]).lower()
        for u in sim_users(tenant)
        if u["accountEnabled"] and u["licensed"] and not u["deleted"]
    }


def accounts_of(org):
    """The organization's user accounts made or linked from Microsoft 365."""
    return set(
        Membership.objects.filter(organization=org, role="user")
        .exclude(user__username="user@alpha.example")
        .values_list("user__username", flat=True)
    )


def test_it_imports_enabled_licensed_users_as_accounts(tenant, world):
    configuration = sim_configuration(world.org_a, tenant)
    job = run(configuration)
    assert job.status == "succeeded", job.error
    assert accounts_of(world.org_a) == expected_imports(tenant)
    assert job.created == len(expected_imports(tenant))
    assert job.users_seen == 40 and job.pages_read == 3
    assert job.skipped == 40 - job.created
    assert DirectoryUser.objects.filter(configuration=configuration).count() == 40
    new = User.objects.get(username=sorted(expected_imports(tenant))[0])
    assert not new.has_usable_password()


def test_users_without_onedrive_are_shown_as_such(tenant, world):
    configuration = sim_configuration(world.org_a, tenant)
    run(configuration, include_unlicensed=True)
    missing = DirectoryUser.objects.filter(configuration=configuration, onedrive="no").count()
    assert missing == 2
    assert not DirectoryUser.objects.filter(
        configuration=configuration, onedrive="yes", drive_id=""
    ).exists()
    assert not DirectoryUser.objects.filter(
        configuration=configuration, account__isnull=False, onedrive="unknown"
    ).exists()


def test_it_includes_disabled_and_unlicensed_users_on_request(tenant, world):
    configuration = sim_configuration(world.org_a, tenant)
    job = run(configuration, include_disabled=True, include_unlicensed=True)
    assert job.created == 40
    disabled = DirectoryUser.objects.filter(
        configuration=configuration, account_enabled=False
    ).first()
    assert disabled.account.is_active is False


def test_it_imports_only_the_chosen_users(tenant, world):
    configuration = sim_configuration(world.org_a, tenant)
    run(configuration, kind="sync")
    chosen = list(
        DirectoryUser.objects.filter(
            configuration=configuration, licensed=True, account_enabled=True
        )[:3]
    )
    job = run(configuration, graph_ids=[u.graph_id for u in chosen])
    assert job.created == 3
    assert accounts_of(world.org_a) == {u.email for u in chosen}


def test_guests_are_skipped_unless_included(tenant, world):
    tenant.sim.add_user(
        upn="pat_partner.example#EXT#@" + tenant.info["tenants"][0]["domain"],
        display_name="Pat Partner",
        mail="pat@partner.example",
    )
    configuration = sim_configuration(world.org_a, tenant)
    run(configuration)
    guest = DirectoryUser.objects.get(configuration=configuration, mail="pat@partner.example")
    assert guest.is_guest and guest.account is None
    run(configuration, include_guests=True)
    guest.refresh_from_db()
    assert guest.account.username == "pat@partner.example"


def test_it_links_existing_accounts_by_email_whatever_the_case(tenant, world):
    email = sorted(expected_imports(tenant))[0]
    existing = make_account(email, world.org_a, role=Membership.Role.USER)
    configuration = sim_configuration(world.org_a, tenant)
    job = run(configuration)
    assert job.linked == 1
    assert DirectoryUser.objects.get(configuration=configuration, account=existing).email == email


def test_an_email_of_another_organization_is_a_conflict(tenant, world):
    email = sorted(expected_imports(tenant))[0]
    outsider = make_account(email, world.org_b, role=Membership.Role.USER)
    configuration = sim_configuration(world.org_a, tenant)
    job = run(configuration)
    assert job.conflicts == 1 and job.conflict_details[0]["email"] == email
    assert "another organization" in job.conflict_details[0]["reason"]
    assert not DirectoryUser.objects.filter(account=outsider).exists()
    assert list(outsider.memberships.values_list("organization", flat=True)) == [world.org_b.pk]


def test_synchronize_updates_renamed_and_marks_deleted_users(tenant, world):
    configuration = sim_configuration(world.org_a, tenant)
    run(configuration)
    linked = list(
        DirectoryUser.objects.filter(configuration=configuration, account__isnull=False).order_by(
            "pk"
        )[:3]
    )
    sim = tenant.sim
    sim.rename_user(linked[0].graph_id, display_name="Renamed Person")
    sim.delete_user(linked[1].graph_id)
    sim.delete_user(linked[2].graph_id, permanent=True)
    sim.reset_stats()

    job = run(configuration, kind="sync")
    assert job.status == "succeeded" and not job.full_read
    assert job.users_seen == 1 and job.removed == 2 and job.updated == 3
    assert sim.stats()["users_delta_pages"] == 1  # only the changes, from the deltaLink
    renamed = User.objects.get(pk=linked[0].account_id)
    assert (renamed.first_name, renamed.last_name) == ("Renamed", "Person")
    soft, hard = (DirectoryUser.objects.get(pk=r.pk) for r in linked[1:])
    assert soft.removed_at and not soft.removed_permanently
    assert hard.removed_at and hard.removed_permanently
    assert not User.objects.get(pk=soft.account_id).is_active  # kept, with its backups


def test_a_synchronization_with_no_changes_reads_one_page(tenant, world):
    configuration = sim_configuration(world.org_a, tenant)
    run(configuration)
    tenant.sim.reset_stats()
    job = run(configuration, kind="sync")
    assert (job.users_seen, job.updated, job.created) == (0, 0, 0)
    assert tenant.sim.stats()["users_delta_pages"] == 1


def test_an_expired_delta_token_falls_back_to_a_full_read(tenant, world):
    configuration = sim_configuration(world.org_a, tenant)
    run(configuration)
    gone = DirectoryUser.objects.filter(configuration=configuration, account__isnull=False).first()
    tenant.sim.delete_user(gone.graph_id, permanent=True)
    tenant.sim.expire_delta_tokens(tenant=tenant.info["tenants"][0]["tenant_id"])
    job = run(configuration, kind="sync")
    assert job.status == "succeeded" and job.full_read
    gone.refresh_from_db()
    assert gone.removed_at is not None  # reconciled: known, no longer listed
    assert (
        DirectoryUser.objects.filter(configuration=configuration, removed_at__isnull=False).count()
        == 1
    )
    assert (
        DirectoryUser.objects.filter(configuration=configuration, account__is_active=False).count()
        == DirectoryUser.objects.filter(
            configuration=configuration, account_enabled=False, account__isnull=False
        ).count()
        + 1
    )


def test_throttling_and_a_revoked_token_do_not_stop_an_import(tenant, world):
    sim = tenant.sim
    sim.set_fault("users_delta", "429", rate=0.3, seed=3, retry_after=0.05)
    sim.set_fault("users_delta", "503", rate=0.2, seed=4, retry_after=0.05)
    sim.set_fault("users_delta", "revoke", rate=1.0, seed=5, max_count=1)
    configuration = sim_configuration(world.org_a, tenant)
    job = run(configuration)
    assert job.status == "succeeded", job.error
    assert accounts_of(world.org_a) == expected_imports(tenant)


def test_a_failure_ends_the_job_clearly_without_half_linked_accounts(tenant, world, settings):
    settings.KODO_GRAPH_BACKOFF_SECONDS = 0.01
    tenant.sim.set_fault("users_delta", "500", rate=1.0, seed=1)
    configuration = sim_configuration(world.org_a, tenant)
    job = run(configuration)
    assert job.status == "failed"
    assert job.error.startswith("Microsoft 365 kept failing (HTTP 500).\nLikely cause: ")
    assert not accounts_of(world.org_a)
    assert configuration.users_delta_link == ""


def test_one_job_per_configuration_at_a_time(world, django_capture_on_commit_callbacks):
    from tests.factories import make_configuration

    configuration = make_configuration(world.org_a)
    with django_capture_on_commit_callbacks() as callbacks:
        first, created = actions.do_start_directory_job(configuration=configuration, kind="import")
        second, created_again = actions.do_start_directory_job(
            configuration=configuration, kind="sync"
        )
    assert created and not created_again and first == second
    assert len(callbacks) == 1


def test_a_running_job_is_not_claimed_twice(world):
    from tests.factories import make_configuration

    job = DirectoryJob.objects.create(configuration=make_configuration(world.org_a), kind="sync")
    assert actions.claim_directory_job(job.pk) is not None
    assert actions.claim_directory_job(job.pk) is None


def onedrive_states(configuration):
    rows = DirectoryUser.objects.filter(configuration=configuration, account__isnull=False)
    return {state: rows.filter(onedrive=state).count() for state in ("yes", "no", "unknown")}


def test_onedrives_are_checked_in_json_batches(tenant, world):
    configuration = sim_configuration(world.org_a, tenant)
    job = run(configuration, include_unlicensed=True)
    linked = DirectoryUser.objects.filter(
        configuration=configuration, account__isnull=False
    ).count()
    requests = tenant.sim.stats()["requests"]
    assert requests["drive"] == linked
    assert requests["batch"] == -(-linked // 20)  # 20 users a batch
    assert onedrive_states(configuration) == {"yes": linked - 2, "no": 2, "unknown": 0}
    assert job.errors == 0
    drives = {u["id"]: u["drive_id"] for u in sim_users(tenant)}
    for row in DirectoryUser.objects.filter(configuration=configuration, onedrive="yes"):
        assert row.drive_id == drives[row.graph_id]


def test_throttled_onedrive_checks_are_retried(tenant, world):
    # A 429 throttles the rest of its batch too (they came within its Retry-After). The
    # Retry-After is far longer than a batch takes even on a slow machine: with a shorter one,
    # a batch still in flight when another's 429 arrives would extend the throttling again.
    tenant.sim.set_fault("drive", "429", rate=0.05, seed=8, retry_after=0.5)
    tenant.sim.set_fault("drive", "503", rate=0.1, seed=9, retry_after=0.05)
    tenant.sim.set_fault("batch", "429", max_count=1, retry_after=0.5)
    configuration = sim_configuration(world.org_a, tenant)
    job = run(configuration, include_unlicensed=True)
    assert job.status == "succeeded" and job.errors == 0
    assert (
        onedrive_states(configuration)["unknown"] == 0 and onedrive_states(configuration)["no"] == 2
    )
    assert tenant.sim.stats()["faults"]["drive"]["429"] > 0


def test_failed_onedrive_checks_are_counted_and_left_unknown(tenant, world, settings):
    settings.KODO_GRAPH_MAX_RETRIES = 0
    configuration = sim_configuration(world.org_a, tenant)
    run(configuration)  # mirror and accounts
    DirectoryUser.objects.filter(configuration=configuration).update(
        onedrive="unknown", drive_id=""
    )
    linked = DirectoryUser.objects.filter(
        configuration=configuration, account__isnull=False
    ).count()

    tenant.sim.set_fault("drive", "502", rate=0.5, seed=2)  # some users fail (no retries)
    job = run(configuration, kind="sync")
    states = onedrive_states(configuration)
    assert job.status == "succeeded" and 0 < job.errors == states["unknown"] < linked
    tenant.sim.clear_faults()

    tenant.sim.set_fault("batch", "503", retry_after=0.01)  # every batch refused
    job = run(configuration, kind="sync")
    assert job.status == "succeeded" and job.errors == states["unknown"]
    assert onedrive_states(configuration) == states
    tenant.sim.clear_faults()

    job = run(configuration, kind="sync")  # the next synchronization checks them again
    assert job.errors == 0 and onedrive_states(configuration)["unknown"] == 0
