"""From a stored configuration to a working Graph connection, and TEST CONNECTION."""

import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field, replace

from django.conf import settings
from django.views.decorators.debug import sensitive_variables

from kodo import crypto
from o365.graph import Credentials, GraphClient, GraphError
from o365.permissions import RESTORE_PERMISSIONS, missing_permissions
from o365.problems import CONSENT_STEPS, Problem, no_answer_problem, problem_for
from o365.throttle import SharedThrottle

log = logging.getLogger(__name__)


@sensitive_variables()
def credentials_for(configuration) -> Credentials:
    def text(token):
        return crypto.decrypt_text(token) if token else None

    return Credentials(
        tenant_id=str(configuration.tenant_id),
        client_id=str(configuration.client_id),
        client_secret=text(configuration.client_secret_encrypted),
        pfx=crypto.decrypt(configuration.certificate_pfx_encrypted)
        if configuration.certificate_pfx_encrypted
        else None,
        pfx_password=text(configuration.certificate_password_encrypted),
    )


def _cache_key(configuration) -> str:
    """Changes whenever the credentials or endpoints change, so no stale token is reused."""
    material = b"|".join(
        [
            str(configuration.pk).encode(),
            str(configuration.tenant_id).encode(),
            str(configuration.client_id).encode(),
            bytes(configuration.client_secret_encrypted),
            bytes(configuration.certificate_pfx_encrypted),
            bytes(configuration.certificate_password_encrypted),
            str(configuration.cloud_id).encode(),
        ]
    )
    return f"configuration-{configuration.pk}-{hashlib.sha256(material).hexdigest()[:16]}"


def graph_client_for(configuration, **options) -> GraphClient:
    options.setdefault("max_retries", settings.KODO_GRAPH_MAX_RETRIES)
    options.setdefault("backoff_base", settings.KODO_GRAPH_BACKOFF_SECONDS)
    options.setdefault(
        "timeout", (settings.KODO_HTTP_CONNECT_TIMEOUT, settings.KODO_HTTP_READ_TIMEOUT)
    )
    # the cloud's endpoints, as the server administrator defined them (connections anywhere
    # else are refused), or none at all once the cloud is no longer enabled for the organization
    endpoints = configuration.cloud.endpoints_for(configuration.organization)
    options.setdefault(
        "shared_throttle",
        SharedThrottle(str(configuration.tenant_id), str(configuration.client_id)),
    )
    return GraphClient(
        credentials_for(configuration), endpoints, cache_key=_cache_key(configuration), **options
    )


@dataclass
class ConnectionResult:
    """TEST CONNECTION's answer: `summary` is the sentence the page flashes (on failure what
    happened and what to do); `problem` says why it failed, with the detail to fold away."""

    ok: bool
    summary: str
    missing: list = field(default_factory=list)
    roles: list = field(default_factory=list)
    problem: Problem | None = None

    @property
    def message(self) -> str:
        """What the configuration keeps as its last test (o365.problems' text form)."""
        return str(self.problem) if self.problem else self.summary


def _failed(problem: Problem, **fields) -> ConnectionResult:
    return ConnectionResult(False, f"{problem.what} {problem.action}", problem=problem, **fields)


def check_connection(configuration, *, budget: float | None = None) -> ConnectionResult:
    """Sign in and read one user, within `budget` seconds (KODO_TEST_CONNECTION_SECONDS) in all:
    TEST CONNECTION runs in a web worker, which a host that accepts and never answers must not
    hold. Every request and retry wait is cut to the budget, and the requests run in a thread
    that is given up at the deadline whatever it is doing (e.g. a server trickling bytes)."""
    budget = budget or settings.KODO_TEST_CONNECTION_SECONDS
    deadline = time.monotonic() + budget
    try:
        client = graph_client_for(configuration, max_retries=2, deadline=deadline)
    except ValueError as error:  # Credentials: no tenant, app, secret or certificate stored
        return _failed(
            Problem(
                "Kodo cannot sign in: the configuration lacks its credentials.",
                str(error),
                "Edit the configuration and enter the Client Secret (or the certificate).",
            )
        )
    outcome = []

    def probe():
        try:
            outcome.append(_probe(client, budget))
        except BaseException as error:  # handed to the waiting thread
            outcome.append(error)
        finally:
            client.close()

    worker = threading.Thread(target=probe, name="test-connection", daemon=True)
    worker.start()
    worker.join(max(0.0, deadline - time.monotonic()))
    if not outcome:
        log.info(
            "TEST CONNECTION of configuration %s: no answer within %g s", configuration.pk, budget
        )
        return _failed(_no_answer(budget))
    if isinstance(outcome[0], Exception):
        # not an answer of Microsoft's (_probe reads those): still words, the trace in the log
        log.error("TEST CONNECTION of configuration %s failed", configuration.pk, exc_info=True)
        return _failed(problem_for(outcome[0], endpoints=client.endpoints))
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


def _no_answer(budget):
    return no_answer_problem(seconds=budget)


def _probe(client, budget) -> ConnectionResult:
    try:
        roles = client.roles()
    except GraphError as error:
        return _failed(problem_for(error, endpoints=client.endpoints, seconds=budget))
    missing = missing_permissions(roles)
    try:
        client.get("/users", params={"$top": "1", "$select": "id"})
    except GraphError as error:
        if error.code == "deadlineExceeded":
            return _failed(_no_answer(budget), roles=roles)
        if not missing:
            problem = problem_for(
                error, endpoints=client.endpoints, needs="User.Read.All", seconds=budget
            )
            what = f"Signed in, but reading users failed. {problem.what}"
            return _failed(replace(problem, what=what), roles=roles)
    if missing:
        return _failed(
            Problem(
                f"Signed in, but the app lacks these permissions: {', '.join(missing)}.",
                "Admin consent was not granted for them (or they were never added to the app).",
                CONSENT_STEPS + " Then TEST CONNECTION again.",
            ),
            missing=missing,
            roles=roles,
        )
    return ConnectionResult(
        True,
        "Connection OK: signed in, read users, and every required permission is granted. "
        + restore_line(roles),
        roles=roles,
    )


def restore_line(roles) -> str:
    """Whether the app may restore to OneDrive (a write permission, which backups do not need)."""
    writes = {name for name, _ in RESTORE_PERMISSIONS}
    lacking = [name for name in missing_permissions(roles, restore=True) if name in writes]
    if lacking:
        return f"Restore is not possible: the app lacks {', '.join(lacking)}."
    return "Restore: possible."
