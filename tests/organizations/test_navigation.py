import pytest


def test_home_sends_each_person_to_their_work(client, world):
    client.force_login(world.server_admin)
    assert client.get("/")["Location"] == "/server/organizations/"
    client.force_login(world.admin_a)
    assert client.get("/")["Location"] == f"/o/{world.org_a.code}/"
    client.force_login(world.user_a)
    assert b"has not turned on self-service" in client.get("/").content


def test_services_appear_only_when_enabled(admin_a_client, world):
    services_url = f"/o/{world.org_a.code}/services/"
    assert services_url.encode() in admin_a_client.get(f"/o/{world.org_a.code}/").content
    assert admin_a_client.get(services_url).status_code == 200

    world.org_a.services_enabled = False
    world.org_a.save()
    page = admin_a_client.get(f"/o/{world.org_a.code}/")
    assert services_url.encode() not in page.content
    assert b"contact your Kodo server administrator" in page.content
    assert admin_a_client.get(services_url).status_code == 404


@pytest.mark.parametrize("page", ["", "users/", "schedules/", "backups/", "audit/"])
def test_org_admin_pages_render(admin_a_client, world, page):
    response = admin_a_client.get(f"/o/{world.org_a.code}/{page}")
    assert response.status_code == 200
    for item in (b"Dashboard", b"Users", b"Schedules", b"Backups", b"Audit log"):
        assert item in response.content


def test_unbuilt_pages_say_so_plainly(admin_a_client, world):
    assert b"No schedules yet" in admin_a_client.get(f"/o/{world.org_a.code}/schedules/").content
    assert b"No backups yet" in admin_a_client.get(f"/o/{world.org_a.code}/backups/").content


def test_a_plain_user_cannot_open_admin_pages(client, world):
    client.force_login(world.user_a)
    assert client.get(f"/o/{world.org_a.code}/").status_code == 404


def test_server_admin_sees_every_organization(server_admin_client, world):
    assert server_admin_client.get(f"/o/{world.org_b.code}/users/").status_code == 200


def test_dashboard_queries_do_not_grow(admin_a_client, world, django_assert_max_num_queries):
    with django_assert_max_num_queries(11):  # 9, and the alerts' 2 (backups/overview.py)
        admin_a_client.get(f"/o/{world.org_a.code}/")
