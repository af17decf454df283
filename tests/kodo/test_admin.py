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


def test_the_admin_never_shows_a_second_factor_secret(server_admin_client, world):
    """The authenticator app's key (and its QR code) and the recovery codes sign in as the
    account: django-otp's admin pages must not show them."""
    from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
    from django_otp.plugins.otp_totp.models import TOTPDevice

    app = TOTPDevice.objects.create(user=world.admin_a, name="Authenticator app", confirmed=True)
    codes = StaticDevice.objects.create(user=world.admin_a, name="Recovery codes", confirmed=True)
    StaticToken.objects.create(device=codes, token="rcvry2345code")
    pages = [
        server_admin_client.get(f"/admin/otp_totp/totpdevice/{app.pk}/change/"),
        server_admin_client.get("/admin/otp_totp/totpdevice/"),
        server_admin_client.get(f"/admin/otp_static/staticdevice/{codes.pk}/change/"),
    ]
    assert [page.status_code for page in pages] == [200, 200, 200]
    for page in pages:
        text = page.content.decode()
        assert app.key not in text and "rcvry2345code" not in text and "qrcode" not in text
    assert server_admin_client.get(f"/admin/otp_totp/totpdevice/{app.pk}/qrcode/").status_code in (
        403,
        404,
    )
