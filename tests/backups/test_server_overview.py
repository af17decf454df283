"""The server administrator's overview across organizations and the monthly usage CSV."""

import csv
import datetime as dt
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from backups import overview
from backups.models import BackupRun, DriveState, UsageSample
from backups.tasks import record_usage
from o365.models import DirectoryJob
from organizations.models import Organization
from tests.factories import make_configuration, make_finished_run, make_users

OVERVIEW = "/server/overview/"
USAGE = "/server/usage.csv"
DONE = (BackupRun.Status.SUCCEEDED, BackupRun.Status.PARTIAL)


def back_up(user, *, hours_ago, status=BackupRun.Status.SUCCEEDED, bytes_stored=0):
    """A run of `user` that finished `hours_ago`, recorded as the engine records it: a completed
    run becomes its drive's `last_run` (backups/engine/record.py _finish)."""
    finished = timezone.now() - dt.timedelta(hours=hours_ago)
    run = make_finished_run(user, status=status, bytes_stored=bytes_stored)
    BackupRun.objects.filter(pk=run.pk).update(
        created_at=finished - dt.timedelta(minutes=5),
        started_at=finished - dt.timedelta(minutes=5),
        finished_at=finished,
    )
    if status in DONE:
        drive, _ = DriveState.objects.get_or_create(
            directory_user=user,
            drive_id=f"b!{user.graph_id}",
            defaults={"organization_id": user.configuration.organization_id},
        )
        DriveState.objects.filter(pk=drive.pk).update(last_run=run, updated_at=finished)
    return run


def directory_job(configuration, *, hours_ago, status, kind=DirectoryJob.Kind.SYNC):
    finished = timezone.now() - dt.timedelta(hours=hours_ago)
    job = DirectoryJob.objects.create(configuration=configuration, kind=kind, status=status)
    DirectoryJob.objects.filter(pk=job.pk).update(finished_at=finished)
    return job


@pytest.fixture
def providers(world):
    """Alpha: five users (2 backed up lately, 1 late, 1 never, 1 removed since), a failing
    synchronization, a certificate expiring in 10 days. Beta: one user, a failed TEST CONNECTION.
    Charlie: nothing yet."""
    now = timezone.now()
    alpha = make_users(world.org_a, 5)
    contoso = alpha[0].configuration
    contoso.name = "Contoso"
    contoso.save(update_fields=["name"])
    back_up(alpha[0], hours_ago=2, bytes_stored=1000)
    back_up(alpha[1], hours_ago=3, status=BackupRun.Status.PARTIAL, bytes_stored=500)
    back_up(alpha[2], hours_ago=72, bytes_stored=300)
    back_up(alpha[2], hours_ago=1, status=BackupRun.Status.FAILED)
    back_up(alpha[3], hours_ago=5, status=BackupRun.Status.FAILED)
    back_up(alpha[4], hours_ago=100, bytes_stored=200)
    back_up(alpha[0], hours_ago=30, status=BackupRun.Status.SKIPPED)  # before the last day
    alpha[4].removed_at = now - dt.timedelta(hours=90)
    alpha[4].save(update_fields=["removed_at"])
    BackupRun.objects.create(  # running: not a result yet
        organization=world.org_a,
        configuration=contoso,
        directory_user=alpha[1],
        active_user=alpha[1],
        status=BackupRun.Status.RUNNING,
    )
    directory_job(contoso, hours_ago=30, status=DirectoryJob.Status.SUCCEEDED)
    directory_job(contoso, hours_ago=4, status=DirectoryJob.Status.FAILED)
    make_configuration(world.org_a, name="Fabrikam", certificate_not_after=now + dt.timedelta(10))

    beta = make_users(world.org_b, 1)
    back_up(beta[0], hours_ago=1, bytes_stored=5000)
    beta[0].configuration.record_test(ok=False, message="AADSTS7000215: Invalid client secret")
    charlie = Organization.objects.create(name="Charlie Corp")
    return {"alpha": alpha, "beta": beta, "charlie": charlie}


def _rows(response) -> dict:
    return {row.organization.name: row for row in response.context["rows"]}


def _names(response) -> list[str]:
    return [row.organization.name for row in response.context["rows"]]


def test_it_shows_each_organizations_numbers(server_admin_client, world, providers):
    response = server_admin_client.get(OVERVIEW)

    assert response.status_code == 200
    rows = _rows(response)
    assert set(rows) == {"Alpha University", "Beta MSP", "Charlie Corp"}
    alpha, beta, charlie = rows["Alpha University"], rows["Beta MSP"], rows["Charlie Corp"]
    # Protected: a completed backup, even of a user since removed; a user never backed up is not.
    assert alpha.usage.protected_users == 4
    # Late: protected, still in Microsoft 365, last completed backup more than 48 hours ago.
    assert alpha.usage.stale_users == 1
    assert alpha.results == {"succeeded": 1, "partial": 1, "failed": 2}
    assert alpha.backups_last_day == 4
    assert alpha.failures == 3  # two backups and the synchronization
    assert alpha.usage.bytes_stored == 2000
    assert [(a.configuration.name, a.text) for a in alpha.failing] == [
        ("Contoso", "SYNCHRONIZE USERS failed")
    ]
    assert [(a.configuration.name, a.text) for a in alpha.expiring] == [
        ("Fabrikam", "Certificate expires")
    ]
    assert beta.usage.protected_users == 1 and beta.usage.stale_users == 0
    assert beta.results == {"succeeded": 1} and beta.failures == 0
    assert beta.usage.bytes_stored == 5000
    assert [a.text for a in beta.failing] == ["TEST CONNECTION failed"] and not beta.expiring
    assert (charlie.usage, charlie.results, charlie.failures, charlie.alerts) == (
        overview.Usage(),
        {},
        0,
        [],
    )


def test_each_row_links_into_its_organization(server_admin_client, world, providers):
    page = server_admin_client.get(OVERVIEW).content.decode()

    for org in (world.org_a, world.org_b, providers["charlie"]):
        assert f'href="/o/{org.code}/"' in page
    assert f'href="/o/{world.org_a.code}/tasks/?status=failed"' in page
    assert "SYNCHRONIZE USERS failed" in page and "TEST CONNECTION failed" in page
    assert "Certificate expires" in page
    # Microsoft's message may hold details for the configuration's admins; not shown here.
    assert "AADSTS7000215" not in page
    assert "Kodo does not know when a client secret expires" in page


def test_the_newest_connection_event_decides(world):
    configuration = make_configuration(world.org_a)
    directory_job(configuration, hours_ago=3, status=DirectoryJob.Status.FAILED)
    configuration.record_test(ok=True, message="Connected.")  # fixed since
    assert overview.organization_alerts(world.org_a).failing == []

    directory_job(configuration, hours_ago=0, status=DirectoryJob.Status.FAILED)
    [alert] = overview.organization_alerts(world.org_a).failing
    assert alert.text == "SYNCHRONIZE USERS failed"


def test_an_expired_certificate_and_one_far_from_expiry(world):
    now = timezone.now()
    make_configuration(world.org_a, name="Old", certificate_not_after=now - dt.timedelta(days=1))
    make_configuration(world.org_a, name="Fine", certificate_not_after=now + dt.timedelta(40))

    [alert] = overview.organization_alerts(world.org_a).expiring
    assert (alert.configuration.name, alert.text, alert.expired) == (
        "Old",
        "Certificate expired",
        True,
    )


@pytest.mark.parametrize("column", list(overview.SORTS))
@pytest.mark.parametrize("descending", [False, True])
def test_it_sorts_by_each_column(server_admin_client, world, providers, column, descending):
    response = server_admin_client.get(OVERVIEW, {"sort": f"{'-' if descending else ''}{column}"})

    rows = response.context["rows"]
    keys = [overview.SORTS[column](row) for row in rows]
    assert keys == sorted(keys, reverse=descending)
    # Equal values keep the names' order.
    for before, after in zip(rows, rows[1:], strict=False):
        if overview.SORTS[column](before) == overview.SORTS[column](after):
            assert before.organization.name < after.organization.name
    current = next(h for h in response.context["headings"] if h.aria_sort)
    assert current.aria_sort == ("descending" if descending else "ascending")
    assert current.url == f"?sort={'' if descending else '-'}{column}"


def test_sorting_orders_the_organizations(server_admin_client, world, providers):
    by = lambda sort: _names(server_admin_client.get(OVERVIEW, {"sort": sort}))  # noqa: E731

    assert by("") == ["Alpha University", "Beta MSP", "Charlie Corp"]
    assert by("-organization") == ["Charlie Corp", "Beta MSP", "Alpha University"]
    assert by("-stored") == ["Beta MSP", "Alpha University", "Charlie Corp"]
    assert by("-protected") == ["Alpha University", "Beta MSP", "Charlie Corp"]
    assert by("stale") == ["Beta MSP", "Charlie Corp", "Alpha University"]
    assert by("-failures")[0] == "Alpha University"
    assert by("nonsense") == by("<script>") == by("-") == by("")


def _populate(organization, index):
    """An organization with everything the overview counts: users, runs, alerts."""
    users = make_users(organization, 3)
    back_up(users[0], hours_ago=1, bytes_stored=10)
    back_up(users[1], hours_ago=60, bytes_stored=10)
    back_up(users[2], hours_ago=2, status=BackupRun.Status.FAILED)
    directory_job(users[0].configuration, hours_ago=1, status=DirectoryJob.Status.FAILED)
    make_configuration(
        organization,
        name=f"Expiring {index}",
        certificate_not_after=timezone.now() + dt.timedelta(days=3),
    )


def test_the_query_count_does_not_grow_with_organizations(server_admin_client, world):
    _populate(world.org_a, 0)
    server_admin_client.get(OVERVIEW)  # the session's first queries
    with CaptureQueriesContext(connection) as few:
        assert server_admin_client.get(OVERVIEW, {"sort": "-stale"}).status_code == 200

    for i in range(1, 8):
        _populate(Organization.objects.create(name=f"Customer {i}"), i)
    with CaptureQueriesContext(connection) as many:
        response = server_admin_client.get(OVERVIEW, {"sort": "-stale"})

    assert len(response.context["rows"]) == 9
    assert len(many) == len(few)
    assert len(few) <= 6  # session, user, the organizations with their numbers, the alerts


@pytest.mark.parametrize("url", [OVERVIEW, USAGE, f"{USAGE}?month=2026-11"])
def test_only_the_server_administrator_may_look(client, admin_a_client, world, url):
    assert admin_a_client.get(url).status_code == 404

    client.logout()
    response = client.get(url)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_menu_links_the_overview_for_the_server_administrator_only(
    client, server_admin_client, world
):
    assert (
        f'href="{OVERVIEW}"' in server_admin_client.get("/server/organizations/").content.decode()
    )
    client.force_login(world.admin_a)
    assert OVERVIEW not in client.get(f"/o/{world.org_a.code}/").content.decode()


# ----- the monthly usage report ----------------------------------------------------------------


def _csv(response) -> list[dict]:
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def _sample(organization, day, protected, stored):
    UsageSample.objects.create(
        organization=organization, day=day, protected_users=protected, stored_bytes=stored
    )


def test_the_usage_csv_gives_the_months_end_and_peak(server_admin_client, world):
    november = dt.date(2026, 11, 1)
    Organization.objects.filter(pk__in=[world.org_a.pk, world.org_b.pk]).update(
        created_at=timezone.make_aware(dt.datetime(2026, 1, 1))
    )
    for day, protected, stored in [(1, 10, 100), (15, 14, 900), (30, 12, 700)]:
        _sample(world.org_a, november.replace(day=day), protected, stored)
    _sample(world.org_a, dt.date(2026, 10, 31), 99, 9999)  # other months are left out
    _sample(world.org_a, dt.date(2026, 12, 1), 99, 9999)

    response = server_admin_client.get(USAGE, {"month": "2026-11"})

    assert response["Content-Disposition"] == 'attachment; filename="kodo-usage-2026-11.csv"'
    rows = {row["organization"]: row for row in _csv(response)}
    assert rows["Alpha University"] == {
        "organization": "Alpha University",
        "organization_code": str(world.org_a.code),
        "month": "2026-11",
        "protected_users": "12",
        "peak_protected_users": "14",
        "stored_bytes": "700",
        "peak_stored_bytes": "900",
        "days_sampled": "3",
        "last_day_sampled": "2026-11-30",
    }
    # Not sampled in the month: its numbers are not known, and the CSV says so (empty, 0 days).
    beta = rows["Beta MSP"]
    assert (beta["protected_users"], beta["stored_bytes"], beta["days_sampled"]) == ("", "", "0")


def test_organizations_created_after_the_month_are_left_out(server_admin_client, world):
    Organization.objects.filter(pk=world.org_b.pk).update(
        created_at=timezone.make_aware(dt.datetime(2026, 12, 2))
    )
    Organization.objects.filter(pk=world.org_a.pk).update(
        created_at=timezone.make_aware(dt.datetime(2026, 11, 30))
    )
    rows = _csv(server_admin_client.get(USAGE, {"month": "2026-11"}))

    assert [row["organization"] for row in rows] == ["Alpha University"]


def test_the_current_month_includes_todays_numbers(server_admin_client, world):
    user = make_users(world.org_a, 1)[0]
    back_up(user, hours_ago=1, bytes_stored=4321)
    today = timezone.now().astimezone(dt.UTC).date()
    yesterday = today - dt.timedelta(days=1)
    if yesterday.month == today.month:
        _sample(world.org_a, yesterday, 7, 99999)

    rows = {r["organization"]: r for r in _csv(server_admin_client.get(USAGE))}

    alpha = rows["Alpha University"]
    assert alpha["month"] == today.strftime("%Y-%m")
    assert (alpha["protected_users"], alpha["stored_bytes"]) == ("1", "4321")
    assert alpha["last_day_sampled"] == today.isoformat()
    if yesterday.month == today.month:
        assert (alpha["peak_protected_users"], alpha["peak_stored_bytes"]) == ("7", "99999")


def test_the_usage_csv_cannot_carry_a_formula(server_admin_client, world):
    for name in ('=HYPERLINK("http://evil")', "+1+1", "-2", "@SUM(A1)", "\tTab"):
        Organization.objects.create(name=name)

    rows = _csv(server_admin_client.get(USAGE))

    names = sorted(row["organization"] for row in rows)
    assert '\'=HYPERLINK("http://evil")' in names
    assert {"'+1+1", "'-2", "'@SUM(A1)", "'\tTab"} <= set(names)
    assert not any(n.startswith(overview.FORMULA_STARTS) for n in names)


@pytest.mark.parametrize(
    "month", ["2026-13", "26-11", "2026-1", "November", "2026-11-05", "1999-12", "9999-12", "'"]
)
def test_a_bad_month_is_refused_in_words(server_admin_client, world, month):
    response = server_admin_client.get(USAGE, {"month": month})

    assert response.status_code == 400
    assert "YYYY-MM" in response.content.decode()


def test_the_daily_task_records_each_organizations_usage(world):
    users = make_users(world.org_a, 2)
    back_up(users[0], hours_ago=1, bytes_stored=100)

    assert record_usage() == "2 organizations sampled"
    back_up(users[1], hours_ago=0, bytes_stored=50)
    record_usage()  # the day's last numbers stand

    today = timezone.now().astimezone(dt.UTC).date()
    samples = {
        s.organization_id: (s.day, s.protected_users, s.stored_bytes)
        for s in UsageSample.objects.all()
    }
    assert samples == {world.org_a.pk: (today, 2, 150), world.org_b.pk: (today, 0, 0)}


def test_the_daily_task_is_in_the_beat_schedule_and_the_maintenance_queue(settings):
    from kodo.celery import queue_of

    [entry] = [
        e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"].endswith("record_usage")
    ]
    assert entry["task"] == "backups.tasks.record_usage"
    assert queue_of("backups.tasks.record_usage") == "maintenance"


# ----- with the real backup engine -------------------------------------------------------------


def test_a_real_backup_makes_a_protected_user_late_after_48_hours(tenant):
    run = tenant.backup()
    assert run.status == BackupRun.Status.SUCCEEDED, run.error

    [row] = [r for r in overview.overview() if r.organization == tenant.organization]
    assert (row.usage.protected_users, row.usage.stale_users) == (1, 0)
    assert row.usage.bytes_stored == run.bytes_stored > 0
    assert row.results == {"succeeded": 1}

    later = timezone.now() + dt.timedelta(hours=49)
    [row] = [r for r in overview.overview(now=later) if r.organization == tenant.organization]
    assert (row.usage.protected_users, row.usage.stale_users) == (1, 1)
    alerts = overview.organization_alerts(tenant.organization, now=later)
    assert [late.directory_user for late in alerts.stale_shown] == [tenant.users[1]]
