import datetime as dt

from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from o365.models import DirectoryJob, DirectoryUser
from organizations.models import AuditEvent
from tests.factories import make_configuration


def _base(world):
    return f"/o/{world.org_a.code}/services/office365/users/"


def _mirror(configuration, count):
    DirectoryUser.objects.bulk_create(
        DirectoryUser(
            configuration=configuration,
            graph_id=f"id-{i}",
            user_principal_name=f"u{i}@a.example",
            mail=f"u{i}@a.example",
            display_name=f"User {i}",
            licensed=i % 2 == 0,
        )
        for i in range(count)
    )


def test_import_users_records_a_job_and_enqueues_it_on_commit(
    admin_a_client, world, django_capture_on_commit_callbacks
):
    configuration = make_configuration(world.org_a)
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_a_client.post(
            f"{_base(world)}{configuration.code}/import/", {"include_unlicensed": "on"}
        )
    assert response.status_code == 302
    job = DirectoryJob.objects.get()
    assert (job.kind, job.status, job.options) == ("import", "queued", {"include_unlicensed": True})
    assert job.requested_by == world.admin_a and len(callbacks) == 1
    assert AuditEvent.objects.filter(action="users_import", organization=world.org_a).exists()


def test_a_second_click_shows_the_running_job(
    admin_a_client, world, django_capture_on_commit_callbacks
):
    configuration = make_configuration(world.org_a)
    with django_capture_on_commit_callbacks():
        admin_a_client.post(f"{_base(world)}{configuration.code}/sync/")
        page = admin_a_client.post(f"{_base(world)}{configuration.code}/import/", follow=True)
    assert DirectoryJob.objects.count() == 1
    assert "Synchronize users is already queued" in page.content.decode()
    users_tab = f"{reverse('o365:configuration-users', args=[world.org_a.code])}?configuration="
    poll = f'hx-get="{users_tab}{configuration.code}" hx-trigger="every 2s"'
    assert poll in page.content.decode()


def test_choosing_unknown_users_is_refused(admin_a_client, world):
    configuration = make_configuration(world.org_a)
    page = admin_a_client.post(
        f"{_base(world)}{configuration.code}/import/",
        {"graph_ids": ["not-in-directory"]},
        follow=True,
    )
    assert "are not in this configuration" in page.content.decode()
    assert not DirectoryJob.objects.exists()


def test_the_job_page_serves_a_fragment_for_polling(admin_a_client, world):
    configuration = make_configuration(world.org_a)
    job = DirectoryJob.objects.create(
        configuration=configuration, kind="import", status="running", users_seen=1234
    )
    url = f"{_base(world)}{configuration.code}/jobs/{job.code}/"

    def poll():
        return admin_a_client.get(url, headers={"HX-Request": "true"})

    running = poll()
    assert running.status_code == 200 and "1234" in running.content.decode()
    assert "<html" not in running.content.decode()
    job.status = "succeeded"
    job.save()
    assert poll().status_code == 286  # htmx shows it, then stops polling
    page = admin_a_client.get(url)
    assert page.status_code == 200 and "<html" in page.content.decode()
    assert "hx-get" not in page.content.decode()


def test_the_tab_lists_and_filters_the_directory(
    admin_a_client, world, django_assert_max_num_queries
):
    configuration = make_configuration(world.org_a)
    _mirror(configuration, 120)
    with django_assert_max_num_queries(12):
        page = admin_a_client.get(_base(world), {"licensed": "yes", "q": "User 1"}).content.decode()
    assert "<td>User 10</td>" in page and "<td>User 11</td>" not in page
    assert "IMPORT USERS" in page and "SYNCHRONIZE USERS" in page


def test_the_tab_query_count_does_not_grow(admin_a_client, world, django_assert_max_num_queries):
    configuration = make_configuration(world.org_a)
    _mirror(configuration, 10)
    with django_assert_max_num_queries(12) as few:
        admin_a_client.get(_base(world))
    _mirror_more = [
        DirectoryUser(
            configuration=configuration, graph_id=f"more-{i}", user_principal_name=f"m{i}@a.example"
        )
        for i in range(300)
    ]
    DirectoryUser.objects.bulk_create(_mirror_more)
    with django_assert_max_num_queries(len(few.captured_queries)):
        admin_a_client.get(_base(world))


def test_automatic_synchronization_keeps_a_beat_entry(admin_a_client, world):
    configuration = make_configuration(world.org_a)
    url = f"{_base(world)}{configuration.code}/auto-sync/"
    admin_a_client.post(
        url,
        {
            "auto_sync_enabled": "on",
            "auto_sync_time": "02:30",
            "auto_sync_time_zone": "Europe/Warsaw",
        },
    )
    task = PeriodicTask.objects.get(task="o365.tasks.auto_synchronize")
    assert task.args == f"[{configuration.pk}]"
    assert (task.crontab.hour, task.crontab.minute, str(task.crontab.timezone)) == (
        "2",
        "30",
        "Europe/Warsaw",
    )
    configuration.refresh_from_db()
    assert configuration.auto_sync_time == dt.time(2, 30)

    admin_a_client.post(url, {"auto_sync_time_zone": "UTC"})
    assert not PeriodicTask.objects.filter(task="o365.tasks.auto_synchronize").exists()


def test_automatic_synchronization_needs_a_time(admin_a_client, world):
    configuration = make_configuration(world.org_a)
    response = admin_a_client.post(
        f"{_base(world)}{configuration.code}/auto-sync/",
        {"auto_sync_enabled": "on", "auto_sync_time_zone": "UTC"},
    )
    assert "Choose the time of the daily synchronization." in response.content.decode()


def test_the_beat_task_starts_a_synchronization(world, django_capture_on_commit_callbacks):
    from o365.tasks import auto_synchronize

    configuration = make_configuration(
        world.org_a, auto_sync_enabled=True, auto_sync_time=dt.time(3)
    )
    with django_capture_on_commit_callbacks():
        auto_synchronize(configuration.pk)
    assert DirectoryJob.objects.get().trigger == "schedule"


def test_deleting_a_configuration_removes_its_beat_entry(admin_a_client, world):
    configuration = make_configuration(world.org_a)
    admin_a_client.post(
        f"{_base(world)}{configuration.code}/auto-sync/",
        {"auto_sync_enabled": "on", "auto_sync_time": "01:00", "auto_sync_time_zone": "UTC"},
    )
    admin_a_client.post(
        f"/o/{world.org_a.code}/services/office365/configuration/{configuration.code}/delete/"
    )
    assert not PeriodicTask.objects.filter(task="o365.tasks.auto_synchronize").exists()


def test_another_organizations_configuration_in_the_query_is_404(admin_a_client, world):
    outsider = make_configuration(world.org_b, name="Theirs")
    assert admin_a_client.get(_base(world), {"configuration": outsider.code}).status_code == 404
    assert admin_a_client.get(_base(world), {"configuration": "garbage"}).status_code == 404
