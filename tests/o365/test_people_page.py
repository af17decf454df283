from organizations.models import Membership
from tests.factories import make_account, make_configuration


def _people(world, count):
    from o365.models import DirectoryUser

    configuration = make_configuration(world.org_a)
    for i in range(count):
        account = make_account(
            f"p{i}@alpha.example", world.org_a, role=Membership.Role.USER, first_name=f"Person{i}"
        )
        DirectoryUser.objects.create(
            configuration=configuration,
            graph_id=f"g{i}",
            account=account,
            user_principal_name=account.username,
            licensed=i % 2 == 0,
            onedrive="yes" if i % 3 else "no",
        )


def test_it_searches_and_filters(admin_a_client, world):
    _people(world, 12)
    url = f"/o/{world.org_a.code}/users/"
    page = admin_a_client.get(url, {"q": "person1"}).content.decode()
    assert "p1@alpha.example" in page and "p10@alpha.example" in page
    assert "p2@alpha.example" not in page
    page = admin_a_client.get(url, {"onedrive": "no", "licensed": "yes"}).content.decode()
    assert "p0@alpha.example" in page and "p6@alpha.example" in page
    assert "p3@alpha.example" not in page and "p1@alpha.example" not in page


def test_queries_do_not_grow_with_users(admin_a_client, world, django_assert_max_num_queries):
    _people(world, 5)
    url = f"/o/{world.org_a.code}/users/"
    with django_assert_max_num_queries(20) as few:
        admin_a_client.get(url)
    _people_more = 60
    from o365.models import Configuration, DirectoryUser

    configuration = Configuration.objects.get()
    for i in range(_people_more):
        account = make_account(f"q{i}@alpha.example", world.org_a, role=Membership.Role.USER)
        DirectoryUser.objects.create(
            configuration=configuration,
            graph_id=f"q{i}",
            account=account,
            user_principal_name=account.username,
        )
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = admin_a_client.get(url, {"page": 2})
    assert "Page 2 of 2" in response.content.decode()


def test_bad_filter_values_get_a_message(admin_a_client, world):
    response = admin_a_client.get(f"/o/{world.org_a.code}/users/", {"onedrive": "maybe"})
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
