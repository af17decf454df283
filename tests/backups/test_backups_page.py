from django.urls import reverse

from backups.models import BackupRun
from tests.factories import make_finished_run, make_users


def test_it_lists_runs_users_and_configurations(admin_a_client, world):
    user = make_users(world.org_a, 1)[0]
    make_finished_run(
        user, files_downloaded=7, bytes_stored=2048, files_failed=1, status=BackupRun.Status.PARTIAL
    )
    response = admin_a_client.get(reverse("backups:backups", args=[world.org_a.code]))

    assert response.status_code == 200
    html = response.content.decode()
    assert "Partially succeeded" in html and "User 0" in html and user.configuration.name in html
    assert (
        reverse(
            "backups:start-configuration-backup", args=[world.org_a.code, user.configuration.code]
        )
        in html
    )
    assert "hx-get" not in html  # nothing active: the page does not poll


def test_an_active_run_is_polled(admin_a_client, world):
    user = make_users(world.org_a, 1)[0]
    BackupRun.objects.create(
        organization=world.org_a,
        configuration=user.configuration,
        directory_user=user,
        active_user=user,
        status=BackupRun.Status.RUNNING,
        files_to_download=10,
        bytes_to_download=1000,
        bytes_downloaded=500,
    )
    response = admin_a_client.get(reverse("backups:backups", args=[world.org_a.code]))

    html = response.content.decode()
    url = reverse("backups:backups", args=[world.org_a.code])
    assert f'hx-get="{url}" hx-trigger="every 2s"' in html and 'value="50"' in html
    fragment = admin_a_client.get(url, headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.content.decode()
    assert 'value="50"' in fragment.content.decode()


def test_it_shows_only_this_organizations_runs(admin_a_client, world):
    theirs = make_users(world.org_b, 1)[0]
    make_finished_run(theirs)
    html = admin_a_client.get(reverse("backups:backups", args=[world.org_a.code])).content.decode()
    assert theirs.display_name not in html and "No backups yet" in html


def test_its_query_count_does_not_grow_with_data(
    admin_a_client, world, django_assert_max_num_queries
):
    for user in make_users(world.org_a, 30):
        make_finished_run(user)
        make_finished_run(user)
    url = reverse("backups:backups", args=[world.org_a.code])
    with django_assert_max_num_queries(12):
        assert admin_a_client.get(url).status_code == 200
    with django_assert_max_num_queries(12):  # its live part, polled
        assert admin_a_client.get(url, headers={"HX-Request": "true"}).status_code == 286
