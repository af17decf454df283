"""Sign in with Microsoft against a running m365sim: the authorization code flow with PKCE
through msal, the id token checked by Kodo, and who may come in (tenant id + object id)."""

import io
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.contrib.auth import get_user_model
from django.core.management import call_command

from o365.models import DirectoryUser
from organizations.models import AuditEvent, Membership, MicrosoftIdentity
from tests.factories import make_account, make_configuration

CLIENT_ID = "5e1e1e1e-0000-4000-8000-00000000c0de"
SECRET = "kodo-signin-test-secret"
CALLBACK = "http://testserver/accounts/microsoft/callback/"


@pytest.fixture(scope="module")
def signin_sim(tmp_path_factory):
    """Two tenants (Contoso, Fabrikam) and Kodo's sign-in app, consented in both."""
    from m365sim import Simulator

    sim = Simulator.generate(seed=15, users=5, files_per_user=1, domain="contoso.example")
    sim.add_tenant(seed=16, users=3, files_per_user=1, domain="fabrikam.example")
    sim.register_signin_app(
        name="Kodo", client_id=CLIENT_ID, client_secret=SECRET, redirect_uris=[CALLBACK]
    )
    for tenant in sim.tenants:
        sim.grant_consent(CLIENT_ID, tenant=tenant.id)
    running = sim.serve(state_dir=tmp_path_factory.mktemp("m365sim-signin"))
    yield running
    running.stop()


@pytest.fixture
def running(signin_sim, settings):
    settings.KODO_MICROSOFT_SIGNIN_CLIENT_ID = CLIENT_ID
    settings.KODO_MICROSOFT_SIGNIN_CLIENT_SECRET = SECRET
    settings.KODO_MICROSOFT_SIGNIN_AUTHORITY = signin_sim.authority_host
    settings.KODO_MICROSOFT_SIGNIN_CA_FILE = signin_sim.info["ca_file"]
    settings.KODO_BASE_URL = "http://testserver"
    signin_sim.sim.configure(id_token_lifetime=3600, code_lifetime=600)
    yield signin_sim
    signin_sim.sim.configure(id_token_lifetime=3600, code_lifetime=600)


@pytest.fixture
def contoso(running, world):
    """Organization A's configuration of the Contoso tenant, its first users imported: the
    second simulated user is linked to user@alpha.example."""
    tenant = running.sim.tenants[0]
    configuration = make_configuration(world.org_a)
    configuration.tenant_id = tenant.id
    configuration.save(update_fields=["tenant_id"])
    person = tenant.users[1]
    DirectoryUser.objects.create(
        configuration=configuration,
        graph_id=person.id,
        user_principal_name=person.upn,
        account=world.user_a,
    )
    return tenant


def browser():
    session = requests.Session()
    session.trust_env = False
    return session


def microsoft(running, client, user, start="/accounts/microsoft/", method="get", **data):
    """Kodo's start URL, then the m365sim pages as a person fills them in; Microsoft's answer
    (the callback path and query) for the test client."""
    answer = getattr(client, method)(start, data) if data or method == "post" else client.get(start)
    assert answer.status_code == 302, answer.content
    http = browser()
    http.verify = running.info["ca_file"]
    page = http.get(answer["Location"])
    assert page.status_code == 200, page.text
    rid = re.search(r"name='rid' value='([^']+)'", page.text).group(1)
    ref = urlsplit(answer["Location"]).path.split("/")[1]
    done = http.post(
        f"{running.authority_host}/{ref}/login",
        data={"rid": rid, "login": user.upn, "passwd": running.sim.user_password},
        allow_redirects=False,
    )
    assert done.status_code == 302, done.text
    location = done.headers["Location"]
    assert location.startswith(CALLBACK)
    return location[len("http://testserver") :]


def signed_in(client):
    return client.get("/account/").status_code == 200


def put_flow(client, flow):
    """A sign-in flow in the test client's session, as if this browser had started it."""
    session = client.session
    session["kodo_microsoft_flow"] = flow
    session.save()


def assert_refused(response, client, status=400, says=None):
    """The answer signed nobody in, with this status (and these words on the page)."""
    assert response.status_code == status
    if says is not None:
        assert says in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_user_signs_in_with_microsoft_and_lands_home(running, contoso, client, world):
    callback = microsoft(running, client, contoso.users[1])

    response = client.get(callback)

    assert response.status_code == 302 and response["Location"] == "/"
    assert client.session["_auth_user_id"] == str(world.user_a.pk)
    assert client.session["kodo_signed_in_with"] == "microsoft"
    event = AuditEvent.objects.get(action="microsoft_signin")
    assert event.actor == world.user_a and event.organization == world.org_a
    assert contoso.users[1].upn in event.message


def test_the_login_page_shows_the_button_only_when_configured(running, client, settings):
    assert "Sign in with Microsoft" in client.get("/accounts/login/").content.decode()
    settings.KODO_MICROSOFT_SIGNIN_CLIENT_ID = ""
    assert "Sign in with Microsoft" not in client.get("/accounts/login/").content.decode()
    assert client.get("/accounts/microsoft/").status_code == 404
    assert client.get("/accounts/microsoft/callback/?code=x&state=y").status_code == 404


def test_the_next_page_survives_the_trip_to_microsoft(running, contoso, client, world):
    callback = microsoft(
        running, client, contoso.users[1], start="/accounts/microsoft/?next=/account/"
    )
    assert client.get(callback)["Location"] == "/account/"


def test_a_user_of_a_tenant_no_organization_has_gets_a_clear_403(running, contoso, client):
    stranger = running.sim.tenants[1].users[0]

    response = client.get(microsoft(running, client, stranger))

    assert_refused(response, client, 403, "No access to Kodo")
    refused = AuditEvent.objects.get(action="microsoft_signin_refused")
    assert stranger.upn in refused.message


def test_an_object_id_nobody_imported_is_refused_even_with_a_matching_email(
    running, contoso, client, world
):
    person = contoso.users[2]
    make_account(person.upn, world.org_a, role=Membership.Role.USER)  # same email, not imported

    response = client.get(microsoft(running, client, person))

    assert_refused(response, client, 403)


def test_a_replayed_answer_signs_nobody_in(running, contoso, client):
    callback = microsoft(running, client, contoso.users[1])
    assert client.get(callback).status_code == 302
    client.logout()

    audited = AuditEvent.objects.filter(action="microsoft_signin_refused").count()
    again = client.get(callback)

    assert_refused(again, client)
    # No sign-in was started in this browser: anyone's GET, logged but never an audit entry.
    assert AuditEvent.objects.filter(action="microsoft_signin_refused").count() == audited


def test_a_code_redeemed_twice_is_refused_by_microsoft(running, contoso, client):
    callback = microsoft(running, client, contoso.users[1])
    saved = client.session["kodo_microsoft_flow"]
    assert client.get(callback).status_code == 302
    client.logout()
    put_flow(client, saved)  # an attacker holding the flow and the code

    again = client.get(callback)

    assert_refused(again, client, says="Authorization code was already redeemed")


def test_a_wrong_state_is_refused(running, contoso, client):
    callback = microsoft(running, client, contoso.users[1])
    forged = re.sub(r"state=[^&]+", "state=forged", callback)

    response = client.get(forged)

    assert_refused(response, client, says="state does not match")


def test_a_wrong_nonce_is_refused(running, contoso, client):
    callback = microsoft(running, client, contoso.users[1])
    flow = client.session["kodo_microsoft_flow"]
    flow["flow"]["nonce"] = "another-sign-in"
    put_flow(client, flow)

    response = client.get(callback)

    assert_refused(response, client, says="nonce does not match")


def test_an_expired_id_token_is_refused(running, contoso, client):
    running.sim.configure(id_token_lifetime=-600)

    response = client.get(microsoft(running, client, contoso.users[1]))

    assert_refused(response, client, says="expired")


def test_an_error_from_microsoft_is_shown(running, contoso, client):
    start = client.get("/accounts/microsoft/")
    state = parse_qs(urlsplit(start["Location"]).query)["state"][0]

    response = client.get(
        "/accounts/microsoft/callback/",
        {
            "error": "access_denied",
            "error_description": "AADSTS65004: User declined to consent to access the app.",
            "state": state,
        },
    )

    assert response.status_code == 400
    assert "AADSTS65004: User declined to consent" in response.content.decode()


def test_an_admin_who_has_not_linked_is_refused(running, contoso, client, world):
    person = contoso.users[3]
    DirectoryUser.objects.create(
        configuration=world.org_a.configurations.get(),
        graph_id=person.id,
        user_principal_name=person.upn,
        account=world.admin_a,  # an import that matched the admin's email
    )

    response = client.get(microsoft(running, client, person))

    assert_refused(response, client, 403)


def test_an_admin_links_confirms_then_signs_in_with_microsoft(running, contoso, client, world):
    person = contoso.users[4]
    client.force_login(world.admin_a)
    assert "LINK MICROSOFT ACCOUNT" in client.get("/account/").content.decode()

    callback = microsoft(running, client, person, start="/account/microsoft/link/", method="post")
    confirm = client.get(callback)
    assert confirm["Location"] == "/account/microsoft/link/confirm/"
    page = client.get("/account/microsoft/link/confirm/").content.decode()
    assert person.upn in page and contoso.id in page
    assert not MicrosoftIdentity.objects.exists()  # nothing saved before CONFIRM
    client.post("/account/microsoft/link/confirm/", {"confirm": "1"})
    identity = MicrosoftIdentity.objects.get()
    assert identity.user == world.admin_a and str(identity.object_id) == person.id
    assert AuditEvent.objects.filter(action="microsoft_account_linked").exists()
    client.logout()

    response = client.get(microsoft(running, client, person))

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(world.admin_a.pk)
    assert client.session["kodo_signed_in_with"] == "microsoft"
    assert signed_in(client)  # two-factor sign-in does not ask a Microsoft session for a code


def test_an_admin_cannot_link_an_account_of_a_tenant_outside_their_organization(
    running, contoso, client, world
):
    stranger = running.sim.tenants[1].users[1]
    client.force_login(world.admin_a)

    client.get(
        microsoft(running, client, stranger, start="/account/microsoft/link/", method="post")
    )
    client.post("/account/microsoft/link/confirm/", {"confirm": "1"})

    assert not MicrosoftIdentity.objects.exists()


def test_cancel_saves_no_link_and_unlink_removes_it(running, contoso, client, world):
    person = contoso.users[4]
    client.force_login(world.admin_a)
    client.get(microsoft(running, client, person, start="/account/microsoft/link/", method="post"))
    client.post("/account/microsoft/link/confirm/", {"confirm": "0"})
    assert not MicrosoftIdentity.objects.exists()

    client.get(microsoft(running, client, person, start="/account/microsoft/link/", method="post"))
    client.post("/account/microsoft/link/confirm/", {"confirm": "1"})
    identity = MicrosoftIdentity.objects.get()
    other = make_account("other-admin@alpha.example", world.org_a)
    client.force_login(other)
    client.post("/account/microsoft/unlink/", {"identity": identity.pk})
    assert MicrosoftIdentity.objects.exists()  # not theirs
    client.force_login(world.admin_a)
    client.post("/account/microsoft/unlink/", {"identity": identity.pk})
    assert not MicrosoftIdentity.objects.exists()


def test_users_and_server_admins_cannot_link(running, contoso, client, world):
    for account in (world.user_a, world.server_admin):
        client.force_login(account)
        assert client.post("/account/microsoft/link/").status_code == 404


def test_a_link_answer_in_another_accounts_session_is_refused(running, contoso, client, world):
    person = contoso.users[4]
    client.force_login(world.admin_a)
    callback = microsoft(running, client, person, start="/account/microsoft/link/", method="post")
    saved = client.session["kodo_microsoft_flow"]
    client.force_login(make_account("second-admin@alpha.example", world.org_a))
    put_flow(client, saved)

    assert client.get(callback).status_code == 403
    assert not MicrosoftIdentity.objects.exists()


def test_a_linked_admin_made_server_administrator_is_refused(running, contoso, client, world):
    """Server administrators sign in with their password (and its second factor): a Microsoft
    account linked while the account was an organization admin does not sign it in any more."""
    person = contoso.users[4]
    MicrosoftIdentity.objects.create(
        user=world.admin_a, tenant_id=contoso.id, object_id=person.id, username=person.upn
    )
    get_user_model().objects.filter(pk=world.admin_a.pk).update(is_superuser=True, is_staff=True)

    response = client.get(microsoft(running, client, person))

    assert_refused(response, client, 403)


def test_a_deactivated_account_cannot_sign_in(running, contoso, client, world):
    get_user_model().objects.filter(pk=world.user_a.pk).update(is_active=False)
    assert client.get(microsoft(running, client, contoso.users[1])).status_code == 403


def test_the_demo_registers_its_sign_in_app_where_m365sim_finds_it(tmp_path, settings, db):
    from m365sim import Simulator

    env = tmp_path / "kodo.env"
    env.write_text("DEBUG=1\nSECRET_KEY=kept\n")
    settings.ENV_FILE = settings.DEV_ENV_FILE = env
    out = io.StringIO()

    call_command("create_demo", sim_state_dir=str(tmp_path / "sim"), stdout=out)
    call_command("create_demo", sim_state_dir=str(tmp_path / "sim"), stdout=io.StringIO())

    text = env.read_text()
    assert text.startswith("DEBUG=1\nSECRET_KEY=kept\n") and text.count("CLIENT_ID=") == 1
    client_id = re.search(r"KODO_MICROSOFT_SIGNIN_CLIENT_ID=(\S+)", text).group(1)
    assert "KODO_MICROSOFT_SIGNIN_AUTHORITY=https://127.0.0.1:9443" in text
    assert "Sign in with Microsoft" in out.getvalue() and "m365sim-demo" in out.getvalue()
    assert (tmp_path / "sim" / "signin-apps.json").stat().st_mode & 0o077 == 0
    with Simulator.demo().serve(state_dir=tmp_path / "sim") as running:
        app = running.sim.signin_app(client_id)
        assert app is not None and app.sign_in_audience == "AzureADMultipleOrgs"
        assert "http://127.0.0.1/accounts/microsoft/callback/" in app.redirect_uris


def test_the_app_may_authenticate_with_a_certificate(running, contoso, client, settings, world):
    app = running.sim.signin_app(CLIENT_ID)
    settings.KODO_MICROSOFT_SIGNIN_CLIENT_SECRET = ""
    settings.KODO_MICROSOFT_SIGNIN_CERTIFICATE = app.pfx_path
    settings.KODO_MICROSOFT_SIGNIN_CERTIFICATE_PASSWORD = app.pfx_password
    before = running.sim.stats().get("tokens", 0)

    response = client.get(microsoft(running, client, contoso.users[1]))

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(world.user_a.pk)
    assert running.sim.stats()["tokens"] == before + 1


def test_an_unreachable_sign_in_service_is_a_clear_page_not_a_500(running, client, settings, db):
    settings.KODO_MICROSOFT_SIGNIN_AUTHORITY = "https://127.0.0.1:9"  # nothing listens there

    response = client.get("/accounts/microsoft/")

    assert response.status_code == 502
    assert "could not reach Microsoft" in response.content.decode()


def test_garbage_at_the_reply_url_is_refused_not_a_500(running, client, db):
    client.get("/accounts/microsoft/")
    state = client.session["kodo_microsoft_flow"]["flow"]["state"]

    no_code = client.get("/accounts/microsoft/callback/", {"state": state})
    no_flow = client.get("/accounts/microsoft/callback/", {"state": state, "code": "x" * 5000})

    assert no_code.status_code == 400 and no_flow.status_code == 400
