"""Search by name within a user's backups or across the organization (issue 13 §1), with its
filters; results point at the version, its folder as of a backup and its versions."""

import datetime as dt
import re

import pytest
from django.db import connection
from django.urls import reverse

from backups import browse
from backups.models import FileVersion
from tests.factories import make_configuration, make_drive_history, make_users

MB = 1_000_000


def _user_url(name, user, *args):
    return reverse(
        f"backups:{name}",
        args=[user.configuration.organization.code, user.configuration.code, user.graph_id, *args],
    )


def _found(response) -> list[str]:
    assert response.status_code == 200
    page = response.context["page"]
    return sorted(v.path for v in page) if page is not None else []


@pytest.fixture
def users(world):
    return make_users(world.org_a, 2)


@pytest.fixture
def drives(world, users):
    """Two users of organization A and one of B, all with a "Budget" file."""
    ann, bob = users
    a = make_drive_history(ann)
    a.run()  # 2026-11-01 08:00 UTC
    a.add("/Finance", folder=True)
    a.add(
        "/Finance/Budget 2026.xlsx",
        size=3 * MB,
        modified_datetime=dt.datetime(2026, 10, 30, 23, 30, tzinfo=dt.UTC),  # the 31st in Warsaw
    )
    a.add("/Finance/budget-notes.docx", size=20_000)
    a.add("/Finance/Q3 report.pdf", size=12 * MB)
    a.add("/holiday.jpg", size=2 * MB)
    a.run()
    a.edit("/Finance/Budget 2026.xlsx", size=4 * MB)
    a.delete("/Finance/budget-notes.docx")
    b = make_drive_history(bob)
    b.run()
    b.add("/BUDGET.xlsx", size=1 * MB)
    outsider = make_users(world.org_b, 1, make_configuration(world.org_b, name="Beta"))[0]
    c = make_drive_history(outsider)
    c.run()
    c.add("/Budget secret.xlsx", size=1)
    return a, b, c


def test_a_users_search_finds_a_substring_in_any_case(admin_a_client, drives, users):
    response = admin_a_client.get(_user_url("user-search", users[0]), {"q": "budget"})
    assert _found(response) == [
        "/Finance/Budget 2026.xlsx",
        "/Finance/Budget 2026.xlsx",  # both kept versions
        "/Finance/budget-notes.docx",
    ]


def test_the_organization_search_covers_its_users_only(admin_a_client, world, drives):
    response = admin_a_client.get(reverse("backups:search", args=[world.org_a.code]), {"q": "BUDG"})
    found = _found(response)
    assert "/BUDGET.xlsx" in found and "/Finance/budget-notes.docx" in found
    assert "/Budget secret.xlsx" not in found
    assert len(found) == 4


def test_the_other_organization_searches_only_its_own(admin_b_client, world, drives):
    response = admin_b_client.get(reverse("backups:search", args=[world.org_b.code]), {"q": "budg"})
    assert _found(response) == ["/Budget secret.xlsx"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"extension": "xlsx"}, ["/Finance/Budget 2026.xlsx"] * 2),
        ({"extension": ".PDF"}, ["/Finance/Q3 report.pdf"]),
        ({"size_min": "3.5"}, ["/Finance/Budget 2026.xlsx", "/Finance/Q3 report.pdf"]),
        ({"size_max": "2"}, ["/Finance/budget-notes.docx", "/holiday.jpg"]),
        ({"size_min": "2", "size_max": "3"}, ["/Finance/Budget 2026.xlsx", "/holiday.jpg"]),
        ({"q": "budget", "deleted_only": "on"}, ["/Finance/budget-notes.docx"]),
        # modified on the 31st in the organization's time zone (Warsaw), 30th in UTC
        ({"since": "2026-10-31", "until": "2026-10-31"}, ["/Finance/Budget 2026.xlsx"]),
        ({"q": "budget", "until": "2026-10-30"}, []),
    ],
)
def test_filters(admin_a_client, drives, users, query, expected):
    response = admin_a_client.get(_user_url("user-search", users[0]), query)
    assert _found(response) == sorted(expected)


def test_a_result_opens_its_folder_as_of_its_backup_and_its_versions(admin_a_client, drives, users):
    ann_drive = drives[0]
    edited = FileVersion.objects.get(path="/Finance/Budget 2026.xlsx", end_run__isnull=True)
    html = admin_a_client.get(_user_url("user-search", users[0]), {"q": "2026"}).content.decode()
    assert (
        f"{_user_url('browse', users[0])}?at={ann_drive.runs[1].code}&amp;path=%2FFinance" in html
    )
    assert _user_url("file-versions", users[0], edited.pk) in html
    assert _user_url("download-version", users[0], edited.pk) in html
    assert f'name="version" value="{edited.pk}"' in html  # tick to DOWNLOAD or RESTORE
    assert ">RESTORE</button>" in html


def test_organization_results_name_their_user(admin_a_client, world, drives, users):
    html = admin_a_client.get(
        reverse("backups:search", args=[world.org_a.code]), {"q": "budget.x"}
    ).content.decode()
    bob = users[1]
    assert f'<a href="{_user_url("browse", bob)}">{bob}</a>' in html
    assert 'name="version"' not in html  # versions of several users are not one selection


def test_nothing_asked_searches_nothing(admin_a_client, drives, users):
    response = admin_a_client.get(_user_url("user-search", users[0]))
    assert response.context["page"] is None
    response = admin_a_client.get(_user_url("user-search", users[0]), {"q": "  "})
    assert response.context["page"] is None
    assert "Type part of a name" in response.content.decode()


def test_search_pages_are_a_constant_number_of_queries(
    admin_a_client, world, users, django_assert_num_queries
):
    history = make_drive_history(users[0])
    history.run()
    history.add_many("/", 400, name="report {:04}.pdf")
    url = reverse("backups:search", args=[world.org_a.code])
    admin_a_client.get(url)
    counts = []
    # The page's 5, the organization's first and last version ids, and on SQLite how many
    # names the FTS5 table holds (backups.browse.search).
    expected = 6 + (connection.vendor == "sqlite")
    for query in ({"q": "report 000"}, {"q": "report"}):  # 10 results, then a full page
        with django_assert_num_queries(expected) as captured:
            response = admin_a_client.get(url, query)
        counts.append(len(captured.captured_queries))
        assert len(list(response.context["page"])) == min(
            browse.SEARCH_PAGE_SIZE, 10 if query["q"].endswith("0") else 400
        )
    assert counts == [expected, expected]


@pytest.mark.parametrize(
    "query",
    [
        {"q": "a\x00b"},
        {"q": "x" * 500},
        {"size_min": "-1"},
        {"size_min": "lots"},
        {"size_min": "5", "size_max": "1"},
        {"extension": "tar/gz"},
        {"since": "2026-12-31", "until": "2026-01-01"},
        {"since": "yesterday"},
        {"q": "budget", "page": "999999"},
        {"q": "%_\\"},
    ],
)
def test_bad_input_is_a_form_error_or_nothing_found(admin_a_client, drives, users, query):
    response = admin_a_client.get(_user_url("user-search", users[0]), query)
    assert response.status_code == 200
    form = response.context["form"]
    if not form.is_valid():
        assert re.search(r'class="(error|errors)"', response.content.decode())


def test_results_page_newest_first_without_counting_them(admin_a_client, world, users):
    history = make_drive_history(users[0])
    history.run()
    history.add_many("/", 400, name="scan {:04}.pdf")
    url = reverse("backups:search", args=[world.org_a.code])
    first = admin_a_client.get(url, {"q": "scan"})
    assert [v.name for v in first.context["page"]][:2] == ["scan 0399.pdf", "scan 0398.pdf"]
    html = first.content.decode()
    assert "Versions 1 to 50 (more on the next pages)" in html
    assert "q=scan&amp;page=2" in html and "Previous" not in html
    last = admin_a_client.get(url, {"q": "scan", "page": "8"})
    assert [v.name for v in last.context["page"]][-1] == "scan 0000.pdf"
    html = last.content.decode()
    assert "Versions 351 to 400" in html and "Next" not in html and "page=7" in html
    beyond = admin_a_client.get(url, {"q": "scan", "page": "9"})
    assert "No more results." in beyond.content.decode()
