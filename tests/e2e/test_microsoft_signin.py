"""Sign in with Microsoft in a browser: the login page's button, m365sim's sign-in and consent
pages, and back in Kodo signed in, never asked for a password."""

import pytest
from playwright.sync_api import expect

from o365.models import DirectoryUser
from tests.e2e.conftest import sign_in_with_microsoft
from tests.factories import make_configuration


@pytest.fixture
def signin_sim(tmp_path, microsoft_signin):
    from m365sim import Simulator

    sim = Simulator.generate(seed=25, users=3, files_per_user=1, domain="contoso.example")
    with sim.serve(state_dir=tmp_path / "sim") as running:
        yield microsoft_signin(running)


def test_a_user_signs_in_with_microsoft_from_the_login_page(new_page, signin_sim, world):
    tenant = signin_sim.sim.tenants[0]
    person = tenant.users[1]
    configuration = make_configuration(world.org_a)
    configuration.tenant_id = tenant.id
    configuration.save(update_fields=["tenant_id"])
    DirectoryUser.objects.create(
        configuration=configuration,
        graph_id=person.id,
        user_principal_name=person.upn,
        account=world.user_a,
    )
    page = new_page(ignore_https_errors=True)
    sign_in_with_microsoft(page, person.upn, signin_sim.sim.user_password)

    page.goto("/account/")
    expect(page.get_by_role("main").get_by_text("user@alpha.example")).to_be_visible()
    expect(
        page.get_by_text("You signed in with your organization's Microsoft account.")
    ).to_be_visible()
