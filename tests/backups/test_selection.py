"""backups.selection: what a selection means (download, export and restore all ask it), which
restore point a code or a time names, and which directory user an email names."""

import datetime as dt

import pytest

from backups.models import BackupRun, DriveState, FileVersion
from backups.selection import (
    NoRestorePoint,
    UnknownUser,
    deleted_items,
    find_directory_user,
    resolve_restore_point,
    restore_points,
    select,
)
from o365.models import DirectoryUser
from tests.factories import make_configuration, make_finished_run

MONDAY = dt.datetime(2026, 11, 30, 18, 0, tzinfo=dt.UTC)
TUESDAY = dt.datetime(2026, 12, 1, 18, 0, tzinfo=dt.UTC)


class History:
    """A user's drive across two runs: Monday's, then Tuesday's, which changed /b.txt, deleted
    /a.txt and /Old (with its file), and added /Docs/Reports/new.txt."""

    def __init__(self, organization):
        configuration = make_configuration(organization)
        self.user = DirectoryUser.objects.create(
            configuration=configuration,
            graph_id="g-1",
            user_principal_name="Ada@Alpha.example",
            mail="ada.lovelace@alpha.example",
            display_name="Ada",
        )
        self.drive = DriveState.objects.create(
            organization=organization, directory_user=self.user, drive_id="d"
        )
        self.monday = self.run(MONDAY)
        self.failed = self.run(MONDAY, status=BackupRun.Status.FAILED)
        self.tuesday = self.run(TUESDAY)
        self.v = {}
        for path in (
            "/a.txt",
            "/b.txt",
            "/Docs",
            "/Docs/Reports",
            "/Docs/Reports/q3.xlsx",
            "/Docs/Reports/Empty",
            "/Docs/readme.md",
            "/Docs Archive",
            "/Docs Archive/old.txt",
            "/Old",
            "/Old/gone.txt",
        ):
            self.add(path, self.monday)
        self.end("/a.txt", deleted=True)
        self.end("/Old/gone.txt", deleted=True)
        self.end("/Old", deleted=True)
        self.end("/b.txt")
        self.add("/b.txt", self.tuesday, key="/b.txt@tuesday")
        self.add("/Docs/Reports/new.txt", self.tuesday)

    def run(self, finished_at, **fields):
        run = make_finished_run(self.user, **fields)
        BackupRun.objects.filter(pk=run.pk).update(finished_at=finished_at)
        run.refresh_from_db()
        return run

    def add(self, path, run, key=None):
        folder = "." not in path.rsplit("/", 1)[1]
        self.v[key or path] = FileVersion.objects.create(
            organization=self.drive.organization,
            drive=self.drive,
            item_id=path,
            path=path,
            name=path.rsplit("/", 1)[1],
            is_folder=folder,
            first_run=run,
        )

    def end(self, path, deleted=False):
        version = self.v[path]
        version.end_run = self.tuesday
        version.deleted = deleted
        version.save(update_fields=["end_run", "deleted"])


@pytest.fixture
def history(world):
    return History(world.org_a)


def picked(history, run, **selection):
    return [(p.version.path, p.relative_path) for p in select(history.user, run, **selection)]


def test_a_folder_keeps_its_name_and_brings_everything_below_it(history):
    assert picked(history, history.tuesday, paths=["/Docs/Reports"]) == [
        ("/Docs/Reports", "Reports"),
        ("/Docs/Reports/Empty", "Reports/Empty"),
        ("/Docs/Reports/new.txt", "Reports/new.txt"),
        ("/Docs/Reports/q3.xlsx", "Reports/q3.xlsx"),
    ]


def test_a_folder_does_not_bring_a_sibling_whose_name_starts_the_same(history):
    paths = [p for p, _ in picked(history, history.tuesday, paths=["/Docs"])]
    assert "/Docs Archive/old.txt" not in paths and "/Docs/readme.md" in paths


def test_a_file_is_picked_alone_by_its_name(history):
    assert picked(history, history.tuesday, paths=["/Docs/readme.md"]) == [
        ("/Docs/readme.md", "readme.md")
    ]


def test_nested_paths_are_picked_once(history):
    both = picked(history, history.tuesday, paths=["/Docs/Reports/q3.xlsx", "/Docs/", "Docs"])
    assert len(both) == len(set(both)) == 6
    assert ("/Docs/Reports/q3.xlsx", "Docs/Reports/q3.xlsx") in both


def test_paths_mean_the_drive_as_of_the_run(history):
    assert picked(history, history.monday, paths=["/a.txt", "/b.txt", "/Docs/Reports/new.txt"]) == [
        ("/a.txt", "a.txt"),
        ("/b.txt", "b.txt"),
    ]
    tuesday = picked(history, history.tuesday, paths=["/a.txt", "/b.txt"])
    assert tuesday == [("/b.txt", "b.txt")]
    assert (
        next(select(history.user, history.tuesday, paths=["/b.txt"])).version
        == (history.v["/b.txt@tuesday"])
    )


def test_a_version_is_picked_by_id_whatever_the_run(history):
    old = history.v["/b.txt"]
    assert picked(history, history.tuesday, version_ids=[old.pk, str(old.pk)]) == [
        ("/b.txt", "b.txt")
    ]


def test_a_version_of_another_user_is_not_picked(history, world):
    other = History(world.org_b)
    assert picked(history, history.tuesday, version_ids=[other.v["/b.txt"].pk]) == []


def test_the_whole_drive_is_every_item_as_of_the_run(history):
    monday = {p for p, _ in picked(history, history.monday, whole_drive=True)}
    tuesday = {p for p, _ in picked(history, history.tuesday, whole_drive=True)}
    assert {"/a.txt", "/Old", "/Old/gone.txt"} <= monday
    assert not {"/a.txt", "/Old", "/Old/gone.txt"} & tuesday
    assert "/Docs/Reports/new.txt" in tuesday - monday
    assert all(rel == path[1:] for path, rel in picked(history, history.tuesday, whole_drive=True))


def test_deleted_only_is_the_last_version_of_each_deleted_item(history):
    expected = [("/Old", "Old"), ("/Old/gone.txt", "Old/gone.txt"), ("/a.txt", "a.txt")]
    assert picked(history, history.monday, deleted_only=True) == expected
    assert {v.path for v in deleted_items(history.user)} == {"/Old", "/Old/gone.txt", "/a.txt"}


def test_restore_points_are_completed_runs_newest_first(history):
    assert list(restore_points(history.user)) == [history.tuesday, history.monday]


def test_a_restore_point_is_named_by_code(history):
    assert resolve_restore_point(history.user, str(history.monday.code)) == history.monday
    with pytest.raises(NoRestorePoint, match="has the code"):
        resolve_restore_point(history.user, str(history.failed.code))


def test_a_restore_point_is_named_by_a_date_or_a_time(history):
    resolve = resolve_restore_point
    assert resolve(history.user, "2026-11-30") == history.monday  # the end of that day
    assert resolve(history.user, "2026-12-01") == history.tuesday
    assert resolve(history.user, "2026-12-01T17:59") == history.monday
    assert resolve(history.user, "2026-12-01 18:00") == history.tuesday
    assert resolve(history.user, "2026-12-01T19:30+02:00") == history.monday
    with pytest.raises(NoRestorePoint, match="at or before"):
        resolve(history.user, "2026-11-29")


def test_no_time_means_the_latest(history):
    assert resolve_restore_point(history.user) == history.tuesday
    assert resolve_restore_point(history.user, "  ") == history.tuesday


@pytest.mark.parametrize("text", ["yesterday", "2026-13-45", "2026-02-30T10:00", "12345"])
def test_nonsense_is_a_clear_error(history, text):
    with pytest.raises(NoRestorePoint, match="neither a backup's code nor a date"):
        resolve_restore_point(history.user, text)


def test_a_user_without_backups_has_no_restore_point(world):
    user = DirectoryUser.objects.create(
        configuration=make_configuration(world.org_a), graph_id="g-2", user_principal_name="x@y"
    )
    with pytest.raises(NoRestorePoint, match="no completed backup yet"):
        resolve_restore_point(user)


def test_find_directory_user_by_mail_or_principal_name_in_any_case(history, world):
    assert find_directory_user(world.org_a, "ADA.LOVELACE@alpha.example") == history.user
    assert find_directory_user(world.org_a, " ada@alpha.EXAMPLE ") == history.user
    with pytest.raises(UnknownUser, match="No user ada@alpha.example in Beta MSP"):
        find_directory_user(world.org_b, "ada@alpha.example")
    with pytest.raises(UnknownUser):
        find_directory_user(world.org_a, "")


def test_find_directory_user_prefers_a_present_user_and_refuses_ambiguity(history, world):
    removed = DirectoryUser.objects.create(
        configuration=make_configuration(world.org_a, name="Old tenant"),
        graph_id="g-old",
        user_principal_name="ada@alpha.example",
        removed_at=MONDAY,
    )
    assert find_directory_user(world.org_a, "ada@alpha.example") == history.user
    removed.removed_at = None
    removed.save()
    with pytest.raises(UnknownUser, match="several configurations .*Contoso, Old tenant"):
        find_directory_user(world.org_a, "ada@alpha.example")
