"""Search by name at a service provider's size (issue 14 §8, migration backups/0012_name_search):
on SQLite a name of 3 or more characters is looked up in an FTS5 trigram table kept by
triggers, shorter ones and common ones with LIKE; both give what icontains gives, whatever the
case, accents, LIKE's wildcards or quotes in the name or the query. The walk is bounded by the
organization's first and last version ids (PostgreSQL's index versions_of_organization)."""

import pytest
from django.db import connection
from django.urls import reverse

from backups import browse
from backups.models import FileVersion
from tests.factories import make_configuration, make_drive_history, make_users

NAMES = [
    "Budget 2026.xlsx",
    "BUDGET.xlsx",
    "budget-notes.docx",
    "Équipe été.docx",
    "équipe ÉTÉ.pdf",
    "ÉQUIPE.txt",
    "100% sure.txt",
    "1000 sure.txt",
    "a_b.txt",
    "axb.txt",
    'say "hi".txt',
    "Straße.txt",
    "STRASSE.txt",
    "ﬁle ligature.txt",
]
QUERIES = [
    "budget",
    "BUDGET",
    "Budget 2",
    "get",
    "équipe",
    "ÉQUIPE",
    "été",
    "ÉTÉ",
    "ete",
    "0% s",
    "100%",
    "% s",
    "a_b",
    "_b.",
    'y "h',
    '"hi"',
    "straße",
    "STRASSE",
    "file",
    ".txt",
    "zzz",
    # FTS5 query syntax is text here
    "say AND",
    'NEAR("hi"',
    "bud* OR x",
    "^Bu",
    # under 3 characters: LIKE
    "ss",
    "é",
    "%",
    "_",
    "ge",
]
SQLITE = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="the FTS5 table is SQLite's (PostgreSQL: trigram index)"
)


def _search(org, text, **options) -> list[int]:
    return [v.pk for v in browse.search(org, browse.SearchFilters(text=text), **options)]


def _icontains(org, text, **filters) -> list[int]:
    """What the search gave before: icontains over the organization's versions."""
    versions = FileVersion.objects.filter(organization=org, name__icontains=text, **filters)
    return list(versions.order_by("-pk").values_list("pk", flat=True))


def _fts_ids(text) -> set[int]:
    """What the FTS5 table alone finds (no LIKE after it)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rowid FROM backups_fileversion_name WHERE backups_fileversion_name MATCH %s",
            ['"' + text.replace('"', '""') + '"'],
        )
        return {row[0] for row in cursor.fetchall()}


def _assert_index_in_step():
    """FTS5's own check of an external-content table against the table (raises if it is not)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO backups_fileversion_name (backups_fileversion_name, rank) "
            "VALUES ('integrity-check', 1)"
        )


@pytest.fixture
def histories(world):
    """The NAMES in a user's drive of organization A, and a few in organization B, recorded in
    turns so that the two organizations' version ids interleave."""
    ann = make_users(world.org_a, 1)[0]
    outsider = make_users(world.org_b, 1, make_configuration(world.org_b, name="Beta"))[0]
    a, b = make_drive_history(ann), make_drive_history(outsider)
    a.run()
    b.run()
    for name in NAMES:
        a.add("/" + name, size=1)
        if name.endswith(".txt"):
            b.add("/" + name, size=1)
    return a, b


@pytest.mark.parametrize("text", QUERIES)
def test_the_search_finds_what_icontains_finds(world, histories, text):
    found = _search(world.org_a, text)
    assert found == _icontains(world.org_a, text)
    user = histories[0].user
    drives = [histories[0].state.pk]
    assert _search(world.org_a, text, directory_user=user) == _icontains(
        world.org_a, text, drive_id__in=drives
    )


@SQLITE
@pytest.mark.parametrize("text", [q for q in QUERIES if len(q) >= 3])
def test_three_characters_or_more_are_read_from_the_fts_table(world, histories, text):
    low, high = browse._id_bounds(world.org_a)
    assert browse._few_name_matches(text, low, high) is not None  # the FTS path is taken
    expected = set(_icontains(world.org_a, text))
    # The table narrows, LIKE decides: never fewer ids than icontains finds.
    assert _fts_ids(text) >= expected
    assert set(_search(world.org_a, text)) == expected


@SQLITE
def test_some_examples_of_what_matches(world, histories):
    def names(text):
        return sorted(FileVersion.objects.get(pk=pk).name for pk in _search(world.org_a, text))

    assert names("BUDGET") == ["BUDGET.xlsx", "Budget 2026.xlsx", "budget-notes.docx"]
    assert names("100%") == ["100% sure.txt"]  # % is a character, not LIKE's wildcard
    assert names("a_b") == ["a_b.txt"]  # _ alike
    assert names('"hi"') == ['say "hi".txt']
    # SQLite's LIKE folds ASCII letters only: as before, É is not é there.
    assert names("équipe") == ["équipe ÉTÉ.pdf"]
    assert names("ÉTÉ") == ["équipe ÉTÉ.pdf"]
    assert browse._few_name_matches("ge", *browse._id_bounds(world.org_a)) is None  # LIKE


@SQLITE
def test_the_table_follows_every_write_of_the_versions(world, histories):
    a, _ = histories
    a.run()
    a.move("/Budget 2026.xlsx", "/Plan 2027.xlsx")  # a new version, the old one ends
    renamed = a.current["/BUDGET.xlsx"]
    FileVersion.objects.filter(pk=renamed.pk).update(name="Forecast.xlsx")  # no save()
    bulk = a.add_many("/", 3, name="bulk {:02}.txt")  # bulk_create
    a.delete("/budget-notes.docx")
    FileVersion.objects.filter(name="axb.txt").delete()
    _assert_index_in_step()
    assert _fts_ids("forecast") == {renamed.pk}
    assert renamed.pk not in _fts_ids("BUDGET.x")
    assert {v.pk for v in bulk} == _fts_ids("bulk ")
    assert not _fts_ids("axb")
    for text in ("budget", "plan 2027", "forecast", "bulk", "axb", ".xlsx"):
        assert _search(world.org_a, text) == _icontains(world.org_a, text)
    # A version removed with its organization's user (a cascade) leaves the table too.
    a.user.delete()
    _assert_index_in_step()
    assert not _fts_ids("forecast")


@SQLITE
def test_the_triggers_are_there_after_every_migration(db):
    """SQLite drops a table's triggers when a migration rebuilds it: a later migration altering
    backups_fileversion must create these again (as 0012_name_search does)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s",
            ["backups_fileversion"],
        )
        triggers = {row[0] for row in cursor.fetchall()}
    assert {
        "backups_name_search_insert",
        "backups_name_search_delete",
        "backups_name_search_update",
    } <= triggers


@SQLITE
def test_a_common_name_is_read_along_the_organizations_versions(world, histories, monkeypatch):
    monkeypatch.setattr(browse, "FEW_NAMES", 2)
    low, high = browse._id_bounds(world.org_a)
    assert browse._few_name_matches(".txt", low, high) is None  # more than 2: LIKE
    assert browse._few_name_matches("budget-", low, high) is not None
    assert _search(world.org_a, ".txt") == _icontains(world.org_a, ".txt")


def test_pages_of_results_are_the_same_on_either_path(world, monkeypatch):
    user = make_users(world.org_a, 1)[0]
    history = make_drive_history(user)
    history.run()
    history.add_many("/", 130, name="Report {:03}.pdf")
    url_pages = []
    for few in (0, 10_000):  # LIKE (more than 0 matches), then the FTS table on SQLite
        monkeypatch.setattr(browse, "FEW_NAMES", few)
        filters = browse.SearchFilters("REPORT")
        pages = [browse.search_page(world.org_a, filters, page_number=n) for n in (1, 2, 3)]
        url_pages.append([[v.pk for v in page] for page in pages])
    assert url_pages[0] == url_pages[1]
    assert [len(p) for p in url_pages[0]] == [50, 50, 30]
    assert sum(url_pages[0], []) == _icontains(world.org_a, "report")


def test_an_organization_without_versions_finds_nothing(world, histories, admin_b_client):
    FileVersion.objects.filter(organization=world.org_b).delete()
    assert _search(world.org_b, "sure") == []
    response = admin_b_client.get(reverse("backups:search", args=[world.org_b.code]), {"q": "sure"})
    assert response.status_code == 200
    assert list(response.context["page"]) == []


def test_the_other_organizations_versions_stay_out(world, histories):
    found = set(_search(world.org_a, ".txt"))
    theirs = set(FileVersion.objects.filter(organization=world.org_b).values_list("pk", flat=True))
    assert found and theirs and not found & theirs
    low, high = browse._id_bounds(world.org_b)
    assert low < max(found) and high > min(found)  # the ids interleave
