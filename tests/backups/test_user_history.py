from django.urls import reverse

from backups.models import RunIssue
from tests.factories import make_finished_run, make_users


def test_it_lists_the_users_runs(admin_a_client, world, django_assert_max_num_queries):
    user, other = make_users(world.org_a, 2)
    for _ in range(5):
        make_finished_run(user, files_downloaded=3)
    make_finished_run(other, files_downloaded=99)
    url = reverse(
        "backups:backup-user-history",
        args=[world.org_a.code, user.configuration.code, user.graph_id],
    )
    with django_assert_max_num_queries(10):
        response = admin_a_client.get(url)

    assert response.status_code == 200
    assert response.content.decode().count("Succeeded") == 5
    assert ">99<" not in response.content.decode()


def test_the_run_page_shows_skips_and_failures(admin_a_client, world):
    user = make_users(world.org_a, 1)[0]
    run = make_finished_run(user)
    RunIssue.objects.create(run=run, kind="skipped", reason="malware", path="/bad.exe")
    RunIssue.objects.create(
        run=run, kind="failed", reason="verify", path="/broken.bin", message="did not match"
    )
    html = admin_a_client.get(
        reverse("backups:backup-run", args=[world.org_a.code, run.code])
    ).content.decode()
    assert "/bad.exe" in html and "Flagged as malware" in html and "/broken.bin" in html
