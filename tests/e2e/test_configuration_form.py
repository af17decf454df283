"""The configuration form in a browser (issue 14 §1 and §3): choosing KodoADSettings.json fills
the fields before anything is sent; the manual's hand-typed path passes TEST CONNECTION with the
organization's default cloud (the simulator, as in the demo); with Cloud left at Global the
failure reads in words, its technical detail folded away."""

import json
import socket

import pytest
from playwright.sync_api import expect

from o365.models import Configuration
from tests.e2e.conftest import log_in, screenshot
from tests.factories import PASSWORD, sim_cloud

DNS_WHAT = (
    "Kodo could not reach Microsoft's sign-in service (login.microsoftonline.com): the name "
    "does not resolve from this server."
)


@pytest.fixture
def admin_page(new_page, world):
    page = new_page()
    log_in(page, "admin@alpha.example", PASSWORD)
    return page


@pytest.fixture
def unresolvable(monkeypatch):
    """Microsoft's real hosts do not resolve from this server (the live server runs in this
    process), whatever the machine's DNS says."""
    resolve = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host in ("login.microsoftonline.com", "graph.microsoft.com"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def open_the_form(page, org):
    """The manual's way: Services -> Configure Office 365 -> + ADD CONFIGURATION."""
    page.goto(f"/o/{org.code}/")
    page.get_by_role("navigation", name="Main menu").get_by_role("link", name="Services").click()
    page.get_by_role("link", name="Configure Office 365").click()
    page.get_by_role("link", name="+ ADD CONFIGURATION").click()
    page.wait_for_load_state()  # its script is loaded


def type_by_hand(page, m365sim):
    tenant = m365sim.info["tenants"][0]
    app = tenant["apps"][0]
    page.get_by_label("Name").fill("Typed by hand")
    page.get_by_label("Tenant ID").fill(tenant["tenant_id"])
    page.get_by_label("Client ID").fill(app["client_id"])
    page.get_by_label("Client Secret").fill(app["client_secret"])


def test_choosing_the_file_fills_the_fields_before_anything_is_sent(
    admin_page, world, m365sim, tmp_path
):
    sim_cloud(m365sim, world.org_a, default=True)
    settings = m365sim.kodo_settings(0, 0)
    settings["Cloud"] = "Global"
    path = tmp_path / "KodoADSettings.json"
    path.write_text(json.dumps(settings))
    open_the_form(admin_page, world.org_a)
    form_url = admin_page.url

    admin_page.get_by_label("KodoADSettings.json").set_input_files(str(path))

    note = admin_page.get_by_role("status").filter(has_text="Filled from KodoADSettings.json")
    expect(note).to_contain_text("Tenant ID, Client ID, Client Secret")
    expect(note).to_contain_text("Cloud (Global)")
    expect(admin_page.get_by_label("Tenant ID")).to_have_value(settings["TenantId"])
    expect(admin_page.get_by_label("Client ID")).to_have_value(settings["ClientId"])
    expect(admin_page.get_by_label("Client Secret")).to_have_value(settings["ClientSecret"])
    expect(admin_page.get_by_label("Name")).to_have_value(settings["AppName"])
    expect(admin_page.get_by_label("Cloud")).to_have_value("global")
    assert admin_page.url == form_url and not Configuration.objects.exists()


def test_the_custom_cloud_of_the_demo_file_keeps_the_default(admin_page, world, m365sim, tmp_path):
    cloud = sim_cloud(m365sim, world.org_a, default=True)
    path = tmp_path / "KodoADSettings.json"
    path.write_text(json.dumps(m365sim.kodo_settings(0, 0)))  # "Cloud": "Custom"
    open_the_form(admin_page, world.org_a)

    admin_page.get_by_label("KodoADSettings.json").set_input_files(str(path))

    expect(admin_page.get_by_role("status")).to_contain_text(f"The Cloud stays {cloud.name}")
    expect(admin_page.get_by_label("Cloud")).to_have_value(cloud.key)
    screenshot(admin_page, "configuration-form")
    admin_page.get_by_role("button", name="SAVE").click()
    expect(admin_page.get_by_text("Now TEST CONNECTION.")).to_be_visible()
    admin_page.get_by_role("button", name="TEST CONNECTION").click()
    expect(admin_page.get_by_text("Connection OK").first).to_be_visible()
    screenshot(admin_page, "services-configuration")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "KodoADSettings.json is not valid JSON"),
        ('{"TenantId": "x"}', "KodoADSettings.json lacks ClientId"),
        ('{"TenantId": "a", "ClientId": "b"}', "neither a ClientSecret nor"),
        ('{"TenantId": "a", "ClientId": "b", "ClientSecret": "c", "Cloud": "Moon"}', '"Moon"'),
    ],
)
def test_a_file_that_is_not_the_settings_is_named(admin_page, world, tmp_path, content, message):
    path = tmp_path / "KodoADSettings.json"
    path.write_text(content)
    open_the_form(admin_page, world.org_a)

    admin_page.get_by_label("KodoADSettings.json").set_input_files(str(path))

    expect(admin_page.get_by_role("alert").filter(has_text=message)).to_be_visible()
    expect(admin_page.get_by_label("Tenant ID")).to_have_value("")


def test_the_hand_typed_path_passes_test_connection_with_the_default_cloud(
    admin_page, world, m365sim
):
    sim_cloud(m365sim, world.org_a, default=True)  # as create_demo makes the simulator
    open_the_form(admin_page, world.org_a)
    type_by_hand(admin_page, m365sim)
    admin_page.get_by_role("button", name="SAVE").click()

    expect(admin_page.get_by_text("Now TEST CONNECTION.")).to_be_visible()
    admin_page.get_by_role("button", name="TEST CONNECTION").click()
    expect(admin_page.get_by_text("Connection OK").first).to_be_visible()


def test_the_hand_typed_path_on_global_reads_in_words(admin_page, world, m365sim, unresolvable):
    sim_cloud(m365sim, world.org_a, default=True)
    open_the_form(admin_page, world.org_a)
    type_by_hand(admin_page, m365sim)
    admin_page.get_by_label("Cloud").select_option("global")
    admin_page.get_by_role("button", name="SAVE").click()
    admin_page.get_by_role("button", name="TEST CONNECTION").click()

    expect(admin_page.get_by_role("status").filter(has_text=DNS_WHAT)).to_contain_text(
        "Check the server's DNS and network, or choose the right cloud"
    )
    shown = admin_page.locator("main").inner_text()
    assert DNS_WHAT in shown and "Likely cause:" in shown
    for raw in ("HTTPSConnectionPool", "NameResolutionError", "Errno", "Traceback"):
        assert raw not in shown
    details = admin_page.locator("details.problem-detail")
    details.get_by_text("Technical details").click()
    expect(details).to_contain_text("NameResolutionError")


def test_a_failed_save_keeps_what_was_typed_but_not_the_secret(admin_page, world, m365sim):
    sim_cloud(m365sim, world.org_a, default=True)
    open_the_form(admin_page, world.org_a)
    type_by_hand(admin_page, m365sim)
    admin_page.get_by_label("Tenant ID").fill("not-a-guid")
    admin_page.get_by_role("button", name="SAVE").click()

    tenant_field = admin_page.locator(".field").filter(has=admin_page.get_by_label("Tenant ID"))
    expect(tenant_field.locator("p.error")).to_contain_text("Tenant ID must be a GUID")
    expect(admin_page.get_by_label("Name")).to_have_value("Typed by hand")
    expect(admin_page.get_by_label("Client Secret")).to_have_value("")
    secret_field = admin_page.locator(".field").filter(has=admin_page.get_by_label("Client Secret"))
    expect(secret_field).to_contain_text("Enter it again")
