"""o365.problems: every failure reads as what happened, its likely cause and what to do, with the
technical detail (code, request id, raw text) kept apart -- never an exception's text.

The errors are the real ones wherever they can be had: m365sim's identity endpoint (wrong secret,
unknown certificate, unknown tenant, unknown app), its fault injection (throttling, server
errors), a closed port, an untrusted CA, and a host name that does not resolve (getaddrinfo is
the seam). Codes m365sim does not answer (an expired secret, missing consent...) are built as
the typed errors o365.graph raises for them."""

import errno
import html
import re
import socket
import uuid

import pytest
import requests
import urllib3
from django.template import Context, Template

from backups.models import BackupRun, RunIssue
from o365 import clouds
from o365.actions import do_run_directory_job, do_start_directory_job
from o365.graph import (
    AuthenticationFailed,
    Credentials,
    DestinationRefused,
    GraphError,
    GraphUnavailable,
    NotFound,
    PermissionDenied,
    Throttled,
)
from o365.models import Cloud, DirectoryJob
from o365.problems import Problem, problem_for
from tests.backups.conftest import store_dir, tenant  # noqa: F401 (fixtures)
from tests.factories import PFX_PASSWORD, make_configuration, make_pfx, mirror_one
from tests.o365.conftest import sim_credentials, sim_endpoints

# what an exception's text looks like; none of it may reach what/cause/action
RAW_TEXT = re.compile(
    r"HTTPSConnectionPool|NameResolutionError|Max retries|Errno|Traceback|object at 0x|"
    r"Caused by|GuardedHTTPS|\bException\b|Error\("
)
DNS_WHAT = (
    "Kodo could not reach Microsoft's sign-in service (login.microsoftonline.com): the name "
    "does not resolve from this server."
)


def failure(call):
    try:
        call()
    except Exception as error:
        return error
    raise AssertionError("expected a failure")


def assert_in_words(problem: Problem):
    assert problem.what and problem.cause and problem.action, problem
    words = " ".join([problem.what, problem.cause, problem.action])
    assert not RAW_TEXT.search(words), words


@pytest.fixture
def unresolvable(monkeypatch):
    """Host names that do not resolve from this server (whatever the machine's DNS says)."""
    names = {"login.microsoftonline.com", "graph.microsoft.com"}
    resolve = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host in names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names


# ----- signing in: m365sim's identity endpoint ---------------------------------------------


def test_a_wrong_secret(m365sim, graph_client):
    client = graph_client(sim_credentials(m365sim, client_secret="wrong-secret-4711"))
    problem = problem_for(failure(client.token))

    assert_in_words(problem)
    assert problem.what == "Kodo could not sign in to the tenant: the client secret is wrong."
    assert "Value" in problem.cause and "Certificates & secrets" in problem.action
    assert "AADSTS7000215" in problem.detail and "Request ID: " in problem.detail
    assert "wrong-secret-4711" not in str(problem)


def test_a_certificate_the_app_does_not_know(m365sim, graph_client):
    credentials = sim_credentials(
        m365sim, certificate=True, pfx=make_pfx(), pfx_password=PFX_PASSWORD
    )
    problem = problem_for(failure(graph_client(credentials).token))

    assert_in_words(problem)
    assert "does not accept the certificate" in problem.what
    assert "Upload the certificate (.cer)" in problem.action
    assert "AADSTS700027" in problem.detail


def test_a_wrong_certificate_password(m365sim, graph_client):
    credentials = sim_credentials(m365sim, certificate=True, pfx_password="not-the-password")
    problem = problem_for(failure(graph_client(credentials).token))

    assert_in_words(problem)
    assert problem.what == "Kodo could not sign in to the tenant: the certificate cannot be used."
    assert "Certificate Password" in problem.cause
    assert "not-the-password" not in str(problem)


def test_an_unknown_tenant(m365sim, graph_client):
    tenant_id = str(uuid.uuid4())
    problem = problem_for(
        failure(graph_client(sim_credentials(m365sim, tenant_id=tenant_id)).token)
    )

    assert_in_words(problem)
    assert (
        problem.what
        == f"Kodo could not sign in to the tenant: Microsoft does not know the tenant {tenant_id}."
    )
    assert "Tenant ID" in problem.cause and "Tenant ID" in problem.action
    assert "AADSTS90002" in problem.detail


def test_an_app_not_in_the_tenant(m365sim, graph_client):
    credentials = sim_credentials(m365sim, client_id=str(uuid.uuid4()))
    problem = problem_for(failure(graph_client(credentials).token))

    assert_in_words(problem)
    assert "app (Client ID) was not found in this tenant" in problem.what
    assert "Client ID" in problem.action and "AADSTS700016" in problem.detail


@pytest.mark.parametrize(
    "aadsts, description, what, action",
    [
        (
            "AADSTS7000222",
            "AADSTS7000222: The provided client secret keys for app '1' are expired.",
            "the client secret has expired.",
            "create a new client secret",
        ),
        (
            "AADSTS65001",
            "AADSTS65001: The user or administrator has not consented to use the application.",
            "the app has no admin consent in this tenant.",
            "Grant admin consent",
        ),
        (
            "AADSTS7000112",
            "AADSTS7000112: Application 'x'(Kodo Backup) is disabled.",
            "the app is disabled in this tenant.",
            "Enabled for users to sign-in?",
        ),
        (
            "AADSTS700024",
            "AADSTS700024: Client assertion is not within its valid time range.",
            "outside its valid time",
            "clock",
        ),
        (
            "AADSTS53003",
            "AADSTS53003: Access has been blocked by Conditional Access policies.",
            "Conditional Access",
            "exclude the Kodo app",
        ),
        (
            "AADSTS9999999",
            "AADSTS9999999: Something new.",
            "Microsoft refused the sign-in (AADSTS9999999).",
            "login.microsoftonline.com/error",
        ),
    ],
)
def test_sign_in_codes_m365sim_does_not_answer(aadsts, description, what, action):
    error = AuthenticationFailed(
        f"Microsoft refused to sign Kodo in. (Microsoft said: {description})",
        code="invalid_request",
        message=description,
        status=401,
        request_id="trace-1",
        aadsts=aadsts,
    )
    problem = problem_for(error)

    assert_in_words(problem)
    assert what in problem.what and action.lower() in problem.action.lower()
    assert aadsts in problem.detail and "Request ID: trace-1" in problem.detail


def test_graph_refusing_the_token():
    error = AuthenticationFailed(
        "Microsoft Graph refused Kodo's access token (InvalidAuthenticationToken: expired).",
        code="InvalidAuthenticationToken",
        status=401,
    )
    problem = problem_for(error)

    assert_in_words(problem)
    assert problem.what == "Microsoft Graph refused Kodo's access token."


# ----- Graph answers ------------------------------------------------------------------------


def test_throttled(sim, graph_client):
    sim.set_fault("users", "429", retry_after=0.01)
    client = graph_client(max_retries=1)
    problem = problem_for(failure(lambda: client.get("/users")))

    assert_in_words(problem)
    assert problem.what.startswith("Microsoft is throttling Kodo")
    assert "HTTP status: 429" in problem.detail


def test_a_long_retry_after_is_named():
    problem = problem_for(Throttled("still throttled", status=429, retry_after=600))
    assert "It asked Kodo to wait 10 minutes." in problem.what


def test_a_missing_permission(m365sim, graph_client):
    client = graph_client(sim_credentials(m365sim, "Kodo Backup (no files)"))
    user = m365sim.sim.list_users()[0]["id"]
    error = failure(lambda: client.get(f"/users/{user}/drive"))
    assert isinstance(error, PermissionDenied)
    problem = problem_for(error, needs="Files.Read.All")

    assert_in_words(problem)
    assert "permission is missing" in problem.what
    assert "Files.Read.All" in problem.cause and "Grant admin consent" in problem.action


def test_microsoft_failing(sim, graph_client):
    sim.set_fault("users", "500")
    problem = problem_for(failure(lambda: graph_client(max_retries=1).get("/users")))

    assert_in_words(problem)
    assert problem.what == "Microsoft 365 kept failing (HTTP 500)."


def test_not_found_and_other_answers():
    missing = problem_for(NotFound("Not found", code="itemNotFound", status=404))
    other = problem_for(GraphError("HTTP 400", code="invalidRequest", status=400))

    for problem in (missing, other):
        assert_in_words(problem)
    assert "did not find" in missing.what and "SYNCHRONIZE USERS" in missing.action
    assert other.what == "Microsoft 365 refused a request (HTTP 400)."
    assert "invalidRequest" in other.detail


# ----- the network --------------------------------------------------------------------------


def test_a_host_name_that_does_not_resolve(unresolvable, graph_client):
    endpoints = clouds.CLOUDS[clouds.GLOBAL]
    typed = Credentials(str(uuid.uuid4()), str(uuid.uuid4()), client_secret="typed-by-hand")
    client = graph_client(typed, endpoints, max_retries=0)
    problem = problem_for(failure(client.token), endpoints=endpoints)

    assert_in_words(problem)
    assert problem.what == DNS_WHAT
    assert "the cloud is Global" in problem.cause
    assert problem.action.startswith(
        "Check the server's DNS and network, or choose the right cloud"
    )
    assert "NameResolutionError" in problem.detail  # the raw text, for the folded details


def test_a_closed_port(graph_client):
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    server.close()
    host = f"https://127.0.0.1:{port}"
    endpoints = clouds.custom_endpoints(host, f"{host}/v1.0", None, private_network=True)
    problem = problem_for(
        failure(graph_client(endpoints=endpoints, max_retries=0).token), endpoints=endpoints
    )

    assert_in_words(problem)
    assert problem.what == (
        "Kodo could not reach Microsoft's sign-in service (127.0.0.1): the connection was refused."
    )


def test_an_untrusted_certificate(m365sim, graph_client):
    endpoints = sim_endpoints(m365sim, trust_ca=False)
    problem = problem_for(failure(graph_client(endpoints=endpoints).token), endpoints=endpoints)

    assert_in_words(problem)
    assert problem.what.endswith("its TLS certificate is not trusted.")
    assert "CA certificate" in problem.action


def test_a_connect_timeout():
    error = GraphUnavailable("Microsoft Graph could not be reached", code="connectionFailed")
    error.__cause__ = requests.ConnectTimeout(urllib3.exceptions.ConnectTimeoutError(None, "x"))
    problem = problem_for(error)

    assert_in_words(problem)
    assert problem.what == "Kodo could not reach Microsoft Graph: the connection timed out."
    assert "port 443" in problem.action


def test_kodos_guard(m365sim, graph_client):
    endpoints = sim_endpoints(m365sim, private_network=False)
    error = failure(graph_client(endpoints=endpoints).token)
    assert isinstance(error, DestinationRefused)
    problem = problem_for(error)

    assert_in_words(problem)
    assert "Clouds" in problem.action


# ----- everything else ----------------------------------------------------------------------


def test_an_unexpected_error_says_so_and_keeps_its_text_apart():
    problem = problem_for(RuntimeError("boom at /srv/kodo"))

    assert_in_words(problem)
    assert problem.what == "Kodo stopped on an unexpected error."
    assert problem.detail == "RuntimeError: boom at /srv/kodo"


def test_a_full_store():
    problem = problem_for(OSError(errno.ENOSPC, "No space left on device"))

    assert_in_words(problem)
    assert problem.what == "Kodo could not write to its storage: it is full."


# ----- the text form and the template -------------------------------------------------------


def test_the_text_form_reads_back_and_older_messages_are_the_what():
    problem = Problem("What.", "Cause.", "Action.", "Code: x\nMicrosoft said: y")

    assert Problem.from_text(str(problem)) == problem
    assert Problem.from_text("Canceled by admin@alpha.example.") == Problem(
        "Canceled by admin@alpha.example."
    )
    assert problem.summary == "What. Cause. Action."


def test_the_template_folds_the_detail_away():
    text = str(Problem("What <b>.", "Cause.", "Action.", "Code: AADSTS1"))
    shown = Template("{% load problems %}{% problem text %}").render(Context({"text": text}))

    assert "What &lt;b&gt;." in shown and "Likely cause:" in shown and "What to do:" in shown
    assert re.search(r"<details[^>]*><summary>Technical details</summary><pre>Code: AADSTS1", shown)
    assert Template("{% load problems %}{% problem '' %}").render(Context()).strip() == ""


# ----- where problems are shown ---------------------------------------------------------------


def visible(page: str) -> str:
    """The page's text without its folded details."""
    return html.unescape(re.sub(r"<details.*?</details>", "", page, flags=re.S))


def test_test_connection_on_global_with_typed_values_shows_words(
    admin_a_client, world, unresolvable
):
    configuration = make_configuration(world.org_a, cloud=Cloud.objects.builtin(clouds.GLOBAL))
    url = f"/o/{world.org_a.code}/services/office365/configuration/{configuration.code}/test/"
    page = admin_a_client.post(url, follow=True).content.decode()

    assert DNS_WHAT in visible(page)
    assert "Check the server's DNS and network, or choose the right cloud" in visible(page)
    assert not RAW_TEXT.search(visible(page))
    assert "NameResolutionError" in page  # folded away in the details
    configuration.refresh_from_db()
    assert Problem.from_text(configuration.last_test_message).what == DNS_WHAT


def test_a_failed_import_says_what_to_do(admin_a_client, world, m365sim):
    from tests.factories import sim_configuration

    configuration = sim_configuration(world.org_a, m365sim)
    configuration.set_client_secret("wrong-secret-4711")
    configuration.save()
    job, _ = do_start_directory_job(
        configuration=configuration, kind=DirectoryJob.Kind.IMPORT, enqueue=False
    )
    do_run_directory_job(job.pk)
    job.refresh_from_db()

    assert job.status == DirectoryJob.Status.FAILED
    problem = Problem.from_text(job.error)
    assert problem.what == "Kodo could not sign in to the tenant: the client secret is wrong."
    assert "AADSTS7000215" in problem.detail
    page = admin_a_client.get(
        f"/o/{world.org_a.code}/services/office365/users/{configuration.code}/jobs/{job.code}/"
    ).content.decode()
    assert problem.what in visible(page) and "AADSTS7000215" not in visible(page)


def test_a_failed_backup_and_a_failed_file_say_what_to_do(tenant):  # noqa: F811
    solo = mirror_one(tenant, "solo")
    tenant.sim.add_file(solo.graph_id, "/report.docx", size=1000)
    tenant.sim.set_fault("download", "500")
    run = tenant.backup(solo, threads=1)

    assert run.status == BackupRun.Status.PARTIAL
    issue = RunIssue.objects.get(run=run, kind=RunIssue.Kind.FAILED)
    problem = Problem.from_text(issue.message)
    assert_in_words(problem)
    assert problem.what == "Microsoft 365 kept failing (HTTP 500)."
    assert problem.detail.endswith("(after 3 attempts)")

    tenant.sim.clear_faults()
    tenant.configuration.set_client_secret("wrong-secret-4711")
    tenant.configuration.save()
    failed = tenant.backup(solo)
    assert failed.status == BackupRun.Status.FAILED
    assert Problem.from_text(failed.error).what == (
        "Kodo could not sign in to the tenant: the client secret is wrong."
    )
