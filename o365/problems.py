"""What went wrong, in words: the one mapping from errors to what an admin reads.

Every failure Kodo shows -- TEST CONNECTION, IMPORT USERS and SYNCHRONIZE USERS, backup runs and
their failed files, restores -- goes through problem_for(): a Problem says what happened, the
likely cause and what to do, and keeps the technical detail (Microsoft's code, the request id,
the raw text of the error) apart, for the pages to fold away. An exception's text is never the
message.

Error fields (BackupRun.error, RunIssue.message, DirectoryJob.error, RestoreJob.error,
Configuration.last_test_message) keep str(problem), plain text that reads well in emails and
command output; Problem.from_text() reads it back for templates/includes/problem.html
({% load problems %}{% problem run.error %}). Messages stored before keep working: they are read
as a Problem with only `what`.
"""

import errno
import http.client
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

from o365.clouds import Endpoints
from o365.graph import (
    AuthenticationFailed,
    DestinationRefused,
    DownloadUrlExpired,
    GraphError,
    GraphUnavailable,
    NotFound,
    PermissionDenied,
    ResyncRequired,
    Throttled,
)
from o365.graph.tokens import TransientTokenError

CAUSE_LABEL = "Likely cause: "
ACTION_LABEL = "What to do: "
DETAIL_LABEL = "Details: "
_LABELS = (("cause", CAUSE_LABEL), ("action", ACTION_LABEL), ("detail", DETAIL_LABEL))

APP_REGISTRATION = "Azure portal → Microsoft Entra ID → App registrations → the Kodo app"
CONSENT_STEPS = (
    f"In the {APP_REGISTRATION} → API permissions, add the missing Microsoft Graph application "
    'permissions, then click "Grant admin consent".'
)
NEW_SECRET_STEPS = (
    f"In the {APP_REGISTRATION} → Certificates & secrets, create a new client secret and copy "
    "its Value; then Edit the configuration and enter it as the Client Secret (or run "
    "Register-KodoApp.ps1 again and choose the new KodoADSettings.json)."
)
CHECK_IDS_STEPS = (
    "Edit the configuration and check the Tenant ID (the Directory ID on Microsoft Entra ID's "
    "Overview), the Client ID (the Application ID on the app registration's Overview) and the "
    "Cloud."
)
TRY_LATER = "Nothing to fix in Kodo: try again later."


@dataclass(frozen=True)
class Problem:
    """A failure in words. `what` happened, its likely `cause`, the `action` that fixes it; the
    `detail` (codes, request id, raw text) is for support, shown folded away."""

    what: str
    cause: str = ""
    action: str = ""
    detail: str = ""

    def __str__(self) -> str:
        lines = [self.what]
        for name, label in _LABELS:
            value = getattr(self, name)
            if value:
                lines.append(label + value)
        return "\n".join(lines)

    @property
    def summary(self) -> str:
        """What, cause and action in one paragraph, without the detail (emails, flash messages)."""
        return " ".join(part for part in (self.what, self.cause, self.action) if part)

    @classmethod
    def from_text(cls, text: str) -> "Problem":
        """The Problem str() wrote; any other text (older messages) is the `what`."""
        parts: dict[str, list[str]] = {"what": []}
        current = "what"
        for line in (text or "").strip().splitlines():
            for name, label in _LABELS:
                if line.startswith(label) and name not in parts:
                    current, line = name, line[len(label) :]
                    parts[current] = []
                    break
            parts[current].append(line)
        return cls(**{name: "\n".join(lines).strip() for name, lines in parts.items()})


def describe(error: BaseException, **context) -> str:
    """The text an error field keeps for `error` (see problem_for for `context`)."""
    return str(problem_for(error, **context))


def problem_for(
    error: BaseException,
    *,
    endpoints: Endpoints | None = None,
    needs: str = "",
    seconds: float | None = None,
) -> Problem:
    """The Problem an admin reads for `error`. `endpoints`: the configuration's cloud, to name
    the service that failed; `needs`: the Graph permission the failed request needed, if the
    caller knows it (e.g. "Files.ReadWrite.All" for a restore); `seconds`: the time the caller
    allowed in all (TEST CONNECTION's budget), named when nothing answered within it."""
    if isinstance(error, AuthenticationFailed):
        return _sign_in_problem(error, endpoints)
    if isinstance(error, DestinationRefused):
        return _refused_problem(error)
    if isinstance(error, Throttled):
        return _throttled_problem(error)
    if isinstance(error, PermissionDenied):
        return _permission_problem(error, needs)
    if isinstance(error, DownloadUrlExpired):
        return Problem(
            "The download link of a file expired before Kodo could read it.",
            "Microsoft's download links last about an hour; the file was queued or slow.",
            "Nothing to fix: Kodo asks for a fresh link, and the next run backs the file up.",
            _detail(error),
        )
    if isinstance(error, NotFound):
        return Problem(
            "Microsoft 365 did not find what Kodo asked for.",
            "The user, OneDrive or file was deleted or moved in Microsoft 365 since Kodo last "
            "read it, or the user has no OneDrive.",
            "Run SYNCHRONIZE USERS, then try again; a user without a OneDrive needs nothing.",
            _detail(error),
        )
    if isinstance(error, ResyncRequired):
        return Problem(
            "Microsoft asked Kodo to read everything again (its change bookmark expired).",
            "The bookmark of the last completed run is too old for Microsoft to keep.",
            "Nothing to fix: the next run reads the whole OneDrive or directory again.",
            _detail(error),
        )
    network = _network_problem(error, endpoints)
    if network is not None:
        return network
    if isinstance(error, GraphUnavailable):
        return _unavailable_problem(error, endpoints, seconds)
    if isinstance(error, GraphError):
        status = f" (HTTP {error.status})" if error.status else ""
        return Problem(
            f"Microsoft 365 refused a request{status}.",
            "Microsoft's own message is in the details: usually a passing problem on "
            "Microsoft's side, or an item Microsoft cannot serve.",
            "Try again later. If it keeps failing, Microsoft support asks for the request ID "
            "in the details.",
            _detail(error),
        )
    storage = _storage_problem(error)
    if storage is not None:
        return storage
    return Problem(
        "Kodo stopped on an unexpected error.",
        "A fault inside Kodo, its database or its storage -- not a setting in Microsoft 365.",
        "Try again. If it happens again, give the details and the worker's log to whoever runs "
        "this Kodo server.",
        _raw(error),
    )


# ----- signing in ----------------------------------------------------------------------------

# AADSTS number, or OAuth error code -> (what, cause, action). {tenant} and {cloud} are filled.
_SIGN_IN = {
    "7000215": (
        "the client secret is wrong.",
        "The Client Secret is not a current secret of this app: often the secret's ID was "
        "copied instead of its Value, or the secret was deleted.",
        NEW_SECRET_STEPS,
    ),
    "7000222": (
        "the client secret has expired.",
        "Client secrets have an end date (at most two years); this one has passed it.",
        NEW_SECRET_STEPS,
    ),
    "700027": (
        "Microsoft does not accept the certificate.",
        "The certificate is not one of the app's (it was replaced or removed in the app "
        "registration, or the PFX belongs to another app).",
        f"Upload the certificate (.cer) in the {APP_REGISTRATION} → Certificates & secrets → "
        "Certificates, or Edit the configuration and give the app's own PFX.",
    ),
    "700024": (
        "Microsoft refused the certificate sign-in as outside its valid time.",
        "This server's clock is wrong by more than a few minutes.",
        "Set the server's clock right (NTP), then try again.",
    ),
    "700025": (
        "Microsoft refused a certificate sign-in as a replay.",
        "A sign-in request reached Microsoft twice (a proxy repeated it), or the server's "
        "clock jumped.",
        "Try again; if it repeats, check the server's clock and any proxy before Microsoft.",
    ),
    "65001": (
        "the app has no admin consent in this tenant.",
        "No administrator of the tenant granted consent to the Kodo app, or it was revoked.",
        CONSENT_STEPS,
    ),
    "7000112": (
        "the app is disabled in this tenant.",
        "The Kodo app's enterprise application is disabled for sign-in.",
        "In the Azure portal → Microsoft Entra ID → Enterprise applications → the Kodo app → "
        'Properties, set "Enabled for users to sign-in?" to Yes.',
    ),
    "90002": (
        "Microsoft does not know the tenant {tenant}.",
        "The Tenant ID is wrong, or the tenant is in another cloud than {cloud}.",
        CHECK_IDS_STEPS,
    ),
    "900023": (
        "the tenant ID {tenant} is not valid.",
        "The Tenant ID was mistyped.",
        CHECK_IDS_STEPS,
    ),
    "700016": (
        "the app (Client ID) was not found in this tenant.",
        "The Client ID is wrong, the app registration was deleted, or it belongs to another "
        "tenant than the Tenant ID given.",
        CHECK_IDS_STEPS,
    ),
    "500011": (
        "Microsoft Graph is not available to the app in this tenant.",
        "The app has no consented Microsoft Graph permission in this tenant, or the tenant is "
        "in another cloud than {cloud}.",
        CONSENT_STEPS + " Check the Cloud of the configuration too.",
    ),
    "53003": (
        "a Conditional Access policy of the tenant blocked the sign-in.",
        "A policy applies to the Kodo app (for example by location: this server's address).",
        "Ask the tenant's administrator to exclude the Kodo app from the policy, or to allow "
        "this server's address.",
    ),
    "invalid_certificate": (
        "the certificate cannot be used.",
        "The Certificate Password does not open the PFX, or the PFX lacks its private key.",
        "Edit the configuration and give the PFX with its password again (both are in "
        "KodoADSettings.json).",
    ),
    "invalid_authority": (
        "Kodo could not read the sign-in settings of tenant {tenant}.",
        "The Tenant ID is wrong, or the cloud's sign-in host is not a Microsoft sign-in service.",
        CHECK_IDS_STEPS,
    ),
    "invalid_tenant": (
        "Microsoft does not know the tenant {tenant}.",
        "The Tenant ID is wrong, or the tenant is in another cloud than {cloud}.",
        CHECK_IDS_STEPS,
    ),
    "unauthorized_client": (
        "the app is not allowed to sign in to this tenant.",
        "The Client ID is wrong, or no administrator of the tenant consented to the app.",
        CHECK_IDS_STEPS + " " + CONSENT_STEPS,
    ),
    "invalid_client": (
        "Microsoft refused the app's credentials.",
        "The client secret or the certificate is not the app's.",
        "Edit the configuration and enter the client secret (or the certificate) again.",
    ),
}
_CERTIFICATE_REQUEST_CODES = {"5002738", "50027", "700021", "700023", "700212"}


def _sign_in_problem(error: AuthenticationFailed, endpoints) -> Problem:
    number = (error.aadsts or "").removeprefix("AADSTS")
    if number in _CERTIFICATE_REQUEST_CODES:
        number = "700027"
    entry = _SIGN_IN.get(number) or _SIGN_IN.get(error.code or "")
    if entry is None and error.status == 401 and not number:
        # Graph refused the token it got (not the sign-in service)
        return Problem(
            "Microsoft Graph refused Kodo's access token.",
            "The app's admin consent was revoked, or the app is not allowed in this tenant "
            "any more.",
            CONSENT_STEPS + " Then TEST CONNECTION.",
            _detail(error),
        )
    if entry is None:
        code = f" ({error.aadsts})" if error.aadsts else ""
        entry = (
            f"Microsoft refused the sign-in{code}.",
            "Microsoft's reason is in the details.",
            f"{CHECK_IDS_STEPS} Microsoft explains each AADSTS code at "
            "https://login.microsoftonline.com/error.",
        )
    what, cause, action = (
        text.format(tenant=_tenant_of(error), cloud=_cloud_name(endpoints)) for text in entry
    )
    if not what.startswith("Kodo"):
        what = "Kodo could not sign in to the tenant: " + what
    return Problem(what, cause, action, _detail(error))


def _tenant_of(error) -> str:
    """The tenant id Microsoft's message quotes ("Tenant '<id>' not found"), if any."""
    text = error.message or ""
    if "'" in text:
        quoted = text.split("'")
        if len(quoted) > 2 and 0 < len(quoted[1]) <= 100:
            return quoted[1]
    return "given"


def _cloud_name(endpoints) -> str:
    name = getattr(endpoints, "name", "") or ""
    return f"the one chosen ({name})" if name else "the one chosen"


# ----- Kodo's guard, throttling, permissions ----------------------------------------------


def _refused_problem(error: DestinationRefused) -> Problem:
    if error.code == "cloudNotEnabled":
        return Problem(
            str(error),
            "The server administrator no longer enables this cloud for the organization.",
            "Edit the configuration and choose another cloud, or ask the server administrator "
            "to enable it again (Clouds).",
            _detail(error),
        )
    return Problem(
        str(error),
        "Kodo connects only to the sign-in, Graph and download hosts of the configuration's "
        "cloud, on public addresses unless the cloud allows a private network: this place is "
        "none of them.",
        "Ask the server administrator to check the cloud's hosts (Clouds): the download hosts "
        "must include where Microsoft's download links point.",
        _detail(error),
    )


def _throttled_problem(error: Throttled) -> Problem:
    wait = ""
    if error.retry_after:
        wait = f" It asked Kodo to wait {_duration(error.retry_after)}."
    return Problem(
        "Microsoft is throttling Kodo: too many requests at once." + wait,
        "Many backups, restores or imports of this tenant run together, or another tool uses "
        "the same app registration.",
        "Nothing to fix: Kodo tries again, and the next run continues where this one stopped. "
        "If it keeps happening, spread the schedules over the day.",
        _detail(error),
    )


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 120:
        return f"{seconds} seconds"
    return f"{round(seconds / 60)} minutes"


def _permission_problem(error: PermissionDenied, needs: str) -> Problem:
    wanted = needs or "User.Read.All and Files.Read.All (Files.ReadWrite.All to restore)"
    return Problem(
        "Microsoft Graph denied Kodo access (a permission is missing).",
        f"The app registration lacks an application permission Kodo needs ({wanted}), or "
        "admin consent was not granted for it. For one file only: Microsoft blocks it "
        "(e.g. flagged as malware).",
        CONSENT_STEPS + " Then TEST CONNECTION.",
        _detail(error),
    )


def _unavailable_problem(error: GraphUnavailable, endpoints, seconds) -> Problem:
    if error.code == "deadlineExceeded":
        return no_answer_problem(seconds=seconds, detail=_detail(error))
    if error.status:
        return Problem(
            f"Microsoft 365 kept failing (HTTP {error.status}).",
            "A problem on Microsoft's side.",
            TRY_LATER + " If it lasts, look at the service health in the Microsoft 365 admin "
            "center.",
            _detail(error),
        )
    return Problem(
        f"Kodo could not reach {_service(error, endpoints, None)}.",
        "Microsoft did not answer, or the network between this server and Microsoft failed.",
        "Check the server's network, then try again later.",
        _detail(error),
    )


def no_answer_problem(service: str = "Microsoft 365", seconds: float | None = None, detail=""):
    """A host that accepts connections and never answers (TEST CONNECTION's budget ran out)."""
    within = f" within {seconds:g} seconds" if seconds else " in the time allowed"
    return Problem(
        f"Kodo could not reach {service}: no answer{within}.",
        "The connection was made but no answer came: Microsoft was slow, a proxy or firewall "
        "holds the connection, or the cloud's hosts are not Microsoft's.",
        "Check the configuration's cloud and tenant ID and the server's network, then try again "
        "later.",
        detail,
    )


# ----- the network -------------------------------------------------------------------------

# (what after "Kodo could not reach <service>", cause, action); {host} is filled
_NETWORK = {
    "dns": (
        "the name does not resolve from this server.",
        "This server cannot look up {host}: it has no working DNS or internet access, or the "
        "configuration's cloud is not the tenant's ({cloud}; a demo or test tenant has a "
        "cloud of its own).",
        "Check the server's DNS and network, or choose the right cloud (Edit the "
        "configuration → Cloud).",
    ),
    "refused": (
        "the connection was refused.",
        "Nothing answers at that address and port: the cloud's host or port is wrong, or the "
        "service is down.",
        "Check the cloud's hosts (the server administrator's Clouds page) and that the service "
        "runs, then try again.",
    ),
    "unreachable": (
        "the network is unreachable.",
        "This server has no route to {host}: no internet access, or a firewall blocks it.",
        "Check the server's network and firewall: Kodo needs outgoing HTTPS (port 443).",
    ),
    "timeout": (
        "the connection timed out.",
        "A firewall drops the connection, or this server has no internet access.",
        "Check that this server may open HTTPS connections (port 443) to {host}, then try again.",
    ),
    "slow": (
        "no answer came in time.",
        "The connection was made but the answer did not come: Microsoft was slow, or a proxy "
        "or firewall holds the connection.",
        "Try again later; if it keeps happening, check proxies and firewalls before Microsoft.",
    ),
    "tls-untrusted": (
        "its TLS certificate is not trusted.",
        "The certificate is signed by a CA this server does not trust: a custom cloud with a "
        "private CA, or a network device that inspects HTTPS.",
        "For a custom cloud, the server administrator adds the CA certificate that signed it "
        "(Clouds); otherwise let HTTPS to Microsoft pass uninspected.",
    ),
    "tls": (
        "the secure connection (TLS) failed.",
        "The TLS handshake broke off: a proxy or firewall interferes, or the host does not "
        "speak HTTPS on that port.",
        "Check the cloud's hosts and the network between this server and Microsoft.",
    ),
    "dropped": (
        "the connection broke off.",
        "The network, a proxy or Microsoft closed the connection before the answer was complete.",
        "Try again later; check the network if it repeats.",
    ),
}


def _network_problem(error, endpoints) -> Problem | None:
    """A failure to connect (whatever raised it: the Graph client, MSAL, requests), by what the
    chain of exceptions says happened; None if it says nothing about the network."""
    chain = _chain(error)
    code = getattr(error, "code", None)
    kind = _network_kind(chain, code)
    if kind is None or (code == "deadlineExceeded" and kind in ("slow", "timeout", "dropped")):
        return None  # the caller's time ran out: "no answer within ..." says it best
    host = _host_in(chain) or ""
    service = _service(error, endpoints, host, chain)
    what, cause, action = (
        text.format(host=host or "the host", cloud=_cloud_label(endpoints))
        for text in _NETWORK[kind]
    )
    return Problem(f"Kodo could not reach {service}: {what}", cause, action, _raw(error))


def _cloud_label(endpoints) -> str:
    name = getattr(endpoints, "name", "") or ""
    return f"the cloud is {name}" if name else "check which cloud it is"


def _chain(error) -> list[BaseException]:
    """`error` and what it wraps: causes, contexts, exceptions in args, urllib3's reasons."""
    seen: dict[int, BaseException] = {}
    stack = [error]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen[id(current)] = current
        stack.extend([current.__cause__, current.__context__])
        stack.extend(a for a in getattr(current, "args", ()) if isinstance(a, BaseException))
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            stack.append(reason)
    return list(seen.values())


def _network_kind(chain, code) -> str | None:
    def has(*types):
        return any(isinstance(e, types) for e in chain)

    if code == "tlsCertificateNotTrusted" or has(ssl.SSLCertVerificationError):
        return "tls-untrusted"
    if has(urllib3.exceptions.NameResolutionError, socket.gaierror):
        return "dns"
    if has(ConnectionRefusedError):
        return "refused"
    if code == "tlsError" or has(ssl.SSLError, urllib3.exceptions.SSLError):
        return "tls"
    if any(
        isinstance(e, OSError) and e.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH) for e in chain
    ):
        return "unreachable"
    if has(urllib3.exceptions.ReadTimeoutError, requests.ReadTimeout):
        return "slow"
    if has(urllib3.exceptions.ConnectTimeoutError, requests.ConnectTimeout, TimeoutError):
        return "timeout"
    if has(
        ConnectionResetError,
        ConnectionAbortedError,
        http.client.RemoteDisconnected,
        urllib3.exceptions.ProtocolError,
        requests.exceptions.ChunkedEncodingError,
    ):
        return "dropped"
    return None


def _host_in(chain) -> str | None:
    for e in chain:
        for holder in (getattr(e, "pool", None), getattr(e, "conn", None)):
            host = getattr(holder, "host", None) if holder is not None else None
            if isinstance(host, str) and host:
                return host
    return None


def _service(error, endpoints, host, chain=None) -> str:
    """Which of Microsoft's services failed, named for an admin, with its host."""
    chain = chain if chain is not None else _chain(error)
    sign_in_host = _hostname(endpoints.authority_host) if endpoints else None
    graph_host = _hostname(endpoints.graph_base) if endpoints else None
    text = str(error)
    signing_in = any(isinstance(e, TransientTokenError) for e in chain) or text.startswith(
        "Microsoft's sign-in service"
    )
    if signing_in or (host and host == sign_in_host):
        name, host = "Microsoft's sign-in service", host or sign_in_host
    elif (host and host == graph_host) or text.startswith("Microsoft Graph"):
        name = "Microsoft Graph"
    elif not isinstance(error, GraphError) and host:
        return host  # not a Microsoft request (e.g. an S3 store)
    else:
        name = "Microsoft 365"
    return f"{name} ({host})" if host else name


def _hostname(url: str) -> str | None:
    return urlsplit(url).hostname


# ----- storage and the rest ----------------------------------------------------------------


def _storage_problem(error) -> Problem | None:
    if not isinstance(error, OSError):
        return None
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return Problem(
            "Kodo could not write to its storage: it is full.",
            "The disk, volume or quota of the backup store has no space left.",
            "Free space or grow the volume (manage.py prune removes what the retention no "
            "longer keeps), then run it again.",
            _raw(error),
        )
    if error.errno == errno.EIO:
        return Problem(
            "Kodo's storage failed: the disk reported an input/output error.",
            "The disk or volume of the backup store is failing, or its network storage dropped.",
            "Check the disk and the server's system log; the next run stores again what this "
            "one could not.",
            _raw(error),
        )
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return Problem(
            "Kodo may not write to its storage.",
            "The backup store's folder is read-only, or its permissions do not let Kodo's "
            "workers write.",
            "Give Kodo's user write access to KODO_STORE_URL's folder, then run it again.",
            _raw(error),
        )
    return None


def _detail(error: GraphError) -> str:
    lines = []
    code = error.code or ""
    aadsts = getattr(error, "aadsts", None)
    if aadsts:
        code = f"{aadsts} ({code})" if code else aadsts
    if code:
        lines.append(f"Code: {code}")
    if error.status:
        lines.append(f"HTTP status: {error.status}")
    if error.request_id:
        lines.append(f"Request ID: {error.request_id}")
    if error.message:
        lines.append(f"Microsoft said: {error.message}")
    lines.append(_raw(error))
    return "\n".join(lines)


def _raw(error: BaseException) -> str:
    text = " ".join(str(error).split())
    if len(text) > 1500:
        text = text[:1500] + "…"
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
