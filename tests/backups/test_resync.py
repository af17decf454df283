from backups.models import BackupRun, FileVersion


def test_an_expired_delta_token_reconciles_without_downloading_again(tenant):
    user = tenant.users[1].graph_id
    tenant.backup()
    files = sorted(tenant.sim_files())
    deleted_id = tenant.sim.get_item(user, files[0])["id"]
    tenant.sim.delete_item(user, files[0])
    modified_id = tenant.sim.modify_file(user, files[1], size=4321)["id"]
    tenant.sim.expire_delta_tokens(user)
    tenant.sim.reset_stats()

    run = tenant.backup()

    assert run.status == BackupRun.Status.SUCCEEDED, run.error
    assert run.full_enumeration
    assert set(tenant.sim.stats()["downloads_by_item"]) == {modified_id}
    assert FileVersion.objects.get(item_id=deleted_id).deleted
    assert run.files_deleted == 1
    assert set(
        FileVersion.objects.current().filter(is_folder=False).values_list("path", flat=True)
    ) == set(tenant.sim_files())

    tenant.sim.reset_stats()
    after = tenant.backup()
    assert not after.full_enumeration and tenant.sim.stats()["downloads"] == 0
