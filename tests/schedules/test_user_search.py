"""The wizard's users picker: a server search over the configuration's directory users, paged,
a constant number of queries however many users there are, and only this organization's
configuration's users accepted."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from o365.models import DirectoryUser
from schedules.models import Schedule
from schedules.picker import USERS_PAGE_SIZE
from tests.factories import make_configuration, mirror, wizard_values


@pytest.fixture
def configuration(world):
    return make_configuration(world.org_a)


def _search(client, world, configuration, **params):
    return client.get(
        f"/o/{world.org_a.code}/schedules/users/",
        {"configuration": getattr(configuration, "pk", configuration), **params},
    )


def _found(response) -> list[str]:
    return re.findall(r'value="(\d+)" data-pick', response.content.decode())


def _values(configuration, **overrides):
    return wizard_values(configuration, name="Chosen few", scope="chosen", **overrides)


def test_it_finds_users_by_name_email_or_upn_in_any_case(admin_a_client, world, configuration):
    DirectoryUser.objects.bulk_create(
        [
            DirectoryUser(
                configuration=configuration,
                graph_id="g1",
                display_name="Adele Tanaka",
                mail="adele.t@contoso.example",
                user_principal_name="adele.tanaka@contoso.onmicrosoft.example",
            ),
            DirectoryUser(
                configuration=configuration,
                graph_id="g2",
                display_name="Bruno Costa",
                mail="",
                user_principal_name="bcosta@contoso.onmicrosoft.example",
            ),
            DirectoryUser(
                configuration=configuration,
                graph_id="g3",
                display_name="Adele Removed",
                user_principal_name="gone@contoso.example",
                removed_at=timezone.now(),
            ),
        ]
    )
    adele = DirectoryUser.objects.get(graph_id="g1")
    bruno = DirectoryUser.objects.get(graph_id="g2")
    for text, expected in [
        ("ADELE", [adele]),  # a name, any case; the removed Adele is not offered
        ("ele.T@CONTOSO", [adele]),  # part of an email
        ("tanaka@contoso.onmicro", [adele]),  # part of a user principal name
        ("bcosta", [bruno]),
        ("contoso", [adele, bruno]),
        ("nobody", []),
        ("AD\x00ELE", [adele]),  # NUL is dropped (PostgreSQL refuses it in a query)
        ("x" * 5000, []),
    ]:
        response = _search(admin_a_client, world, configuration, user_q=text)
        assert response.status_code == 200
        assert _found(response) == [str(u.pk) for u in expected], text
    assert (
        "No user's name, email or user principal name contains"
        in _search(admin_a_client, world, configuration, user_q="nobody").content.decode()
    )


def test_it_pages_the_users(admin_a_client, world, configuration):
    users = sorted(mirror(configuration, USERS_PAGE_SIZE + 3), key=lambda u: u.display_name)
    first = _search(admin_a_client, world, configuration)
    assert _found(first) == [str(u.pk) for u in users[:USERS_PAGE_SIZE]]
    assert "More users" in first.content.decode()
    second = _search(admin_a_client, world, configuration, user_page="2")
    assert _found(second) == [str(u.pk) for u in users[USERS_PAGE_SIZE:]]
    assert "More users" not in second.content.decode()
    assert "Previous users" in second.content.decode()
    for bad in ("abc", "-1", "0", "1e3"):
        response = _search(admin_a_client, world, configuration, user_page=bad)
        assert response.status_code == 200 and _found(response) == _found(first), bad
    beyond = _search(admin_a_client, world, configuration, user_page="9" * 40)
    assert beyond.status_code == 200 and "No more users." in beyond.content.decode()


def test_it_searches_only_this_organizations_configurations(
    admin_a_client, admin_b_client, world, configuration
):
    mirror(configuration, 2)
    other = make_configuration(world.org_b, name="B")
    mirror(other, 2, prefix="b")
    for bad in (other.pk, "", "abc", "9" * 40, -3):
        assert _search(admin_a_client, world, bad).status_code == 404, bad
    assert _search(admin_b_client, world, configuration).status_code == 404


def test_fifty_thousand_users_answer_one_page_in_constant_queries(
    admin_a_client, world, configuration, django_assert_max_num_queries
):
    mirror(configuration, 3)
    with CaptureQueriesContext(connection) as few_search:
        _search(admin_a_client, world, configuration, user_q="u")
    with CaptureQueriesContext(connection) as few_step:
        admin_a_client.get(f"/o/{world.org_a.code}/schedules/new/")

    DirectoryUser.objects.bulk_create(
        (
            DirectoryUser(
                configuration=configuration,
                graph_id=f"many-{i}",
                user_principal_name=f"person{i}@alpha.example",
                mail=f"person{i}@alpha.example",
                display_name=f"Person {i:05d}",
            )
            for i in range(50_000)
        ),
        batch_size=5000,
    )
    assert DirectoryUser.objects.count() == 50_003
    with django_assert_max_num_queries(len(few_search.captured_queries)):
        search = _search(admin_a_client, world, configuration, user_q="PERSON 4", user_page="3")
    assert len(_found(search)) == USERS_PAGE_SIZE and "More users" in search.content.decode()
    assert "Person 40050" in search.content.decode()  # the third page of 11,111 matches
    with django_assert_max_num_queries(len(few_step.captured_queries)):
        step = admin_a_client.get(f"/o/{world.org_a.code}/schedules/new/")
    assert len(_found(step)) == USERS_PAGE_SIZE
    assert len(step.content) < 100_000
    # Without JavaScript: Search reloads the step with the results and keeps the chosen users.
    chosen = DirectoryUser.objects.get(graph_id="many-7")
    with django_assert_max_num_queries(len(few_step.captured_queries) + 3):
        reloaded = admin_a_client.post(
            f"/o/{world.org_a.code}/schedules/new/",
            {
                **_values(configuration, users=[chosen.pk]),
                "step": 1,
                "action": "search",
                "user_q": "person 4999",
            },
        )
    page = reloaded.content.decode()
    assert "Step 1: What to back up" in page and "This field is required" not in page
    assert f'name="users" value="{chosen.pk}" checked>' in page  # the chosen list
    assert len(_found(reloaded)) == 10  # Person 49990 ... Person 49999


def test_without_javascript_the_next_page_reloads_the_step(admin_a_client, world, configuration):
    users = sorted(mirror(configuration, USERS_PAGE_SIZE + 1), key=lambda u: u.display_name)
    response = admin_a_client.post(
        f"/o/{world.org_a.code}/schedules/new/",
        {**_values(configuration), "step": 1, "user_page": "2", "user_q": ""},
    )
    assert "Step 1: What to back up" in response.content.decode()
    assert _found(response) == [str(users[-1].pk)]


def test_chosen_users_are_saved_by_id_and_foreign_ids_are_form_errors(
    admin_a_client, world, configuration
):
    mine = mirror(configuration, 2)
    same_org_other_configuration = mirror(make_configuration(world.org_a, name="Second"), 1, "s")
    other_org = mirror(make_configuration(world.org_b, name="B"), 1, prefix="b")
    url = f"/o/{world.org_a.code}/schedules/new/"
    for users, message in [
        ([same_org_other_configuration[0].pk], "Choose users of the chosen configuration only."),
        ([other_org[0].pk], "Select a valid choice"),
        (["abc"], "Select a valid choice"),
    ]:
        page = admin_a_client.post(
            url, {**_values(configuration, users=users), "step": 4, "action": "save"}
        )
        assert page.status_code == 200 and message in page.content.decode(), users
        assert "Step 1:" in page.content.decode()
    assert not Schedule.objects.exists()
    response = admin_a_client.post(
        url, {**_values(configuration, users=[mine[1].pk, mine[1].pk]), "step": 4, "action": "save"}
    )
    assert response.status_code == 302
    assert list(Schedule.objects.get().users.all()) == [mine[1]]


def test_editing_shows_the_chosen_users(admin_a_client, world, configuration):
    users = mirror(configuration, 3)
    admin_a_client.post(
        f"/o/{world.org_a.code}/schedules/new/",
        {**_values(configuration, users=[users[2].pk]), "step": 4, "action": "save"},
    )
    schedule = Schedule.objects.get()
    page = admin_a_client.get(f"/o/{world.org_a.code}/schedules/{schedule.code}/").content.decode()
    chosen = page.split('id="chosen-users"')[1].split("</ul>")[0]
    assert f'value="{users[2].pk}" checked' in chosen and "U 2" in chosen and "U 1" not in chosen
