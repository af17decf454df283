from playwright.sync_api import expect

from organizations.models import Organization
from tests.e2e.conftest import log_in
from tests.factories import PASSWORD


def test_services_appear_after_the_server_administrator_enables_them(new_page, world):
    Organization.objects.filter(pk=world.org_b.pk).update(services_enabled=False)

    org_admin = new_page()
    log_in(org_admin, "admin@beta.example", PASSWORD)
    expect(org_admin.get_by_role("heading", name="Dashboard")).to_be_visible()
    menu = org_admin.get_by_role("navigation", name="Main menu")
    expect(menu.get_by_role("link", name="Backups")).to_be_visible()
    expect(menu.get_by_role("link", name="Services")).to_have_count(0)

    server_admin = new_page()
    log_in(server_admin, "root@kodo.example", PASSWORD)
    server_admin.get_by_role("link", name="Beta MSP").click()
    server_admin.get_by_label("Services enabled").check()
    server_admin.get_by_role("form", name="Services").get_by_role("button", name="SAVE").click()
    expect(server_admin.get_by_text("Services enabled.")).to_be_visible()

    org_admin.reload()
    menu.get_by_role("link", name="Services").click()
    expect(org_admin.get_by_role("heading", name="Services")).to_be_visible()
    expect(org_admin.get_by_text("Office 365")).to_be_visible()
