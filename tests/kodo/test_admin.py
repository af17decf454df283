import pytest
from django.contrib import admin


@pytest.mark.parametrize(
    "model_admin", list(admin.site._registry.values()), ids=lambda m: m.model._meta.label
)
def test_every_admin_page_renders(server_admin_client, world, model_admin):
    opts = model_admin.model._meta
    response = server_admin_client.get(f"/admin/{opts.app_label}/{opts.model_name}/")
    assert response.status_code == 200


def test_kodo_models_are_in_the_admin():
    labels = {m._meta.label for m in admin.site._registry}
    assert {
        "organizations.Organization",
        "o365.Configuration",
        "o365.DirectoryUser",
        "schedules.Schedule",
        "backups.BackupRun",
        "backups.FileVersion",
    } <= labels


def test_the_admin_never_shows_a_secret(server_admin_client, world):
    from tests.factories import SECRET, make_configuration

    configuration = make_configuration(world.org_a)
    page = server_admin_client.get(
        f"/admin/o365/configuration/{configuration.pk}/change/"
    ).content.decode()
    assert configuration.name in page and SECRET not in page and "encrypted" not in page
