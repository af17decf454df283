from backups.engine import Item, versions_to_compare
from backups.models import BackupRun, DriveState, FileVersion
from backups.storage import iter_version_content
from backups.store import quickxorhash


def current_files():
    return {v.path: v for v in FileVersion.objects.current().filter(is_folder=False)}


def test_a_run_with_no_changes_downloads_nothing(tenant):
    tenant.backup()
    tenant.sim.reset_stats()

    run = tenant.backup()

    assert run.status == BackupRun.Status.SUCCEEDED, run.error
    assert tenant.sim.stats()["downloads"] == 0
    assert run.files_downloaded == run.files_seen == 0


def test_it_downloads_only_changed_content(tenant):
    user = tenant.users[1].graph_id
    first = tenant.backup()
    files = sorted(tenant.sim_files())
    modified, renamed, moved, deleted = files[:4]
    tenant.sim.add_file(user, "/New folder/added.txt", content=b"hello kodo")
    modified_id = tenant.sim.modify_file(user, modified, size=12_345)["id"]
    renamed_id = tenant.sim.rename_item(user, renamed, "renamed.bin")["id"]
    moved_id = tenant.sim.move_item(user, moved, "/New folder")["id"]
    deleted_id = tenant.sim.get_item(user, deleted)["id"]
    tenant.sim.delete_item(user, deleted)
    tenant.sim.reset_stats()

    second = tenant.backup()

    assert second.status == BackupRun.Status.SUCCEEDED, second.error
    downloads = tenant.sim.stats()["downloads_by_item"]
    added_id = tenant.sim.get_item(user, "/New folder/added.txt")["id"]
    assert set(downloads) == {added_id, modified_id}
    assert (second.files_downloaded, second.files_moved, second.files_deleted) == (2, 2, 1)
    now = current_files()
    assert set(now) == set(tenant.sim_files())
    assert b"".join(iter_version_content(now["/New folder/added.txt"])) == b"hello kodo"
    assert now[modified].size == 12_345
    assert (
        quickxorhash(b"".join(iter_version_content(now[modified])))
        == tenant.sim.get_item(user, modified_id)["quickXorHash"]
    )
    # The moved and renamed files keep their content without a download.
    renamed_version = FileVersion.objects.get(item_id=renamed_id, end_run__isnull=True)
    old_renamed = FileVersion.objects.get(item_id=renamed_id, end_run=second)
    assert renamed_version.chunks == old_renamed.chunks and renamed_version.path.endswith(
        "/renamed.bin"
    )
    assert FileVersion.objects.get(item_id=moved_id, end_run__isnull=True).path.startswith(
        "/New folder/"
    )
    gone = FileVersion.objects.get(item_id=deleted_id)
    assert (gone.first_run, gone.end_run, gone.deleted) == (first, second, True)


def test_renaming_a_folder_moves_its_files_without_downloads(tenant):
    user = tenant.users[1].graph_id
    tenant.backup()
    folder = next(
        i
        for i in tenant.sim.list_items(user)
        if i["folder"] and any(p.startswith(i["path"] + "/") for p in tenant.sim_files())
    )
    inside = [p for p in tenant.sim_files() if p.startswith(folder["path"] + "/")]
    tenant.sim.rename_item(user, folder["id"], "Renamed folder")
    tenant.sim.reset_stats()

    run = tenant.backup()

    assert tenant.sim.stats()["downloads"] == 0
    assert set(current_files()) == set(tenant.sim_files())
    assert run.files_moved == len(inside)


def test_it_reconstructs_any_past_run(tenant):
    user = tenant.users[1].graph_id
    first = tenant.backup()
    state_one = {p: i["quickXorHash"] for p, i in tenant.sim_files().items()}
    path = sorted(state_one)[0]
    tenant.sim.modify_file(user, path, size=999)
    tenant.sim.delete_item(user, sorted(state_one)[1])
    tenant.sim.add_file(user, "/later.txt", content=b"later")
    second = tenant.backup()
    state_two = {p: i["quickXorHash"] for p, i in tenant.sim_files().items()}
    tenant.sim.delete_item(user, "/later.txt")
    third = tenant.backup()

    def as_of(run):
        return {
            v.path: v.quickxorhash
            for v in FileVersion.objects.files_as_of(run).filter(is_folder=False)
        }

    assert as_of(first) == state_one
    assert as_of(second) == state_two
    assert "/later.txt" not in as_of(third) and len(as_of(third)) == len(state_two) - 1
    assert state_one != state_two


def test_moving_a_folder_into_another_moves_everything_under_it(tenant):
    user = tenant.users[1].graph_id
    tenant.sim.add_file(user, "/A/B/c.txt", content=b"c")
    tenant.sim.add_file(user, "/A/B/D/e.txt", content=b"e")
    tenant.sim.add_folder(user, "/Z")
    tenant.backup()
    tenant.sim.move_item(user, "/A/B", "/Z")
    tenant.sim.reset_stats()

    run = tenant.backup()

    assert tenant.sim.stats()["downloads"] == 0
    now = current_files()
    assert set(now) == set(tenant.sim_files())
    assert {"/Z/B/c.txt", "/Z/B/D/e.txt"} <= set(now) and run.files_moved == 2
    assert b"".join(iter_version_content(now["/Z/B/D/e.txt"])) == b"e"
    folders = {v.path for v in FileVersion.objects.current().filter(is_folder=True)}
    assert {"/A", "/Z", "/Z/B", "/Z/B/D"} <= folders and "/A/B" not in folders


def test_deleting_a_folder_ends_everything_under_it(tenant):
    user = tenant.users[1].graph_id
    tenant.sim.add_file(user, "/X/Y/f.txt", content=b"f")
    tenant.sim.add_file(user, "/X/g.txt", content=b"g")
    tenant.backup()
    tenant.sim.delete_item(user, "/X")

    run = tenant.backup()

    assert set(current_files()) == set(tenant.sim_files())
    gone = FileVersion.objects.filter(path__in=["/X", "/X/Y", "/X/Y/f.txt", "/X/g.txt"])
    assert gone.count() == 4 and all(v.deleted and v.end_run == run for v in gone)
    assert run.files_deleted == 2


def test_a_delta_run_loads_only_the_versions_it_compares(tenant):
    user = tenant.users[1]
    tenant.sim.add_file(user.graph_id, "/Deep/er/still/file.txt", content=b"one")
    tenant.backup()
    state = DriveState.objects.get(directory_user=user)
    changed = tenant.sim.modify_file(user.graph_id, "/Deep/er/still/file.txt", content=b"two")

    assert versions_to_compare(state, {}, state.root_item_id, full=False) == {}
    listing = {
        changed["id"]: Item(
            id=changed["id"], parent_id=changed["parent_id"], name="file.txt", size=3
        )
    }
    loaded = versions_to_compare(state, listing, state.root_item_id, full=False)
    assert sorted(v.path for v in loaded.values()) == [
        "/Deep",
        "/Deep/er",
        "/Deep/er/still",
        "/Deep/er/still/file.txt",
    ]
    everything = versions_to_compare(state, {}, state.root_item_id, full=True)
    assert len(everything) == FileVersion.objects.current().filter(drive=state).count()


def test_a_deleted_tree_is_read_with_one_query_for_its_top_folder(
    tenant, django_assert_max_num_queries
):
    user = tenant.users[1]
    for n in range(5):
        tenant.sim.add_file(user.graph_id, f"/T/{n}/a/b/f.txt", content=b"f")
    tenant.backup()
    state = DriveState.objects.get(directory_user=user)
    folders = [
        v
        for v in FileVersion.objects.current().filter(drive=state, is_folder=True)
        if v.path == "/T" or v.path.startswith("/T/")
    ]
    listing = {v.item_id: Item(id=v.item_id, deleted=True) for v in folders}

    with django_assert_max_num_queries(3):  # by id, the tree under /T, the ancestors by path
        loaded = versions_to_compare(state, listing, state.root_item_id, full=False)
    assert {v.path for v in loaded.values()} >= {f"/T/{n}/a/b/f.txt" for n in range(5)}
