"""Sign-in with OpenID Connect, as Entra ID does it for a web app (authorization code flow with
PKCE): /authorize with a plain sign-in page for the simulated users (every one has the
simulator's demo password), consent (a user's own, or an administrator's for the whole tenant),
/adminconsent, and the code exchange at the token endpoint, which issues RS256 id tokens.

Held to Entra's rules (learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow):
the client id and reply URL are checked before anything is sent back to the app (errors about
them are pages, never redirects); later errors go back to the reply URL as `error` and
`error_description` (an AADSTS code first) with the state; codes are single-use and short-lived,
bound to the client, the reply URL, the tenant and the PKCE challenge. A loopback reply URL
(http://127.0.0.1 or http://localhost) matches whatever its port, as Entra's does.
"""

import base64
import hashlib
import html
import json
import re
import secrets
import time
import uuid
from urllib.parse import parse_qs, urlencode, urlsplit

from .http_base import Aborted, iso
from .identity import GRAPH_APP_ID, b64url

MULTI_TENANT_REFS = ("common", "organizations")
SIGN_IN_SECONDS = 600  # a sign-in page left open longer must start again from the app
CHALLENGE = re.compile(r"[A-Za-z0-9._~-]{43,128}")
PAGE_STYLE = (
    "body{font-family:Segoe UI,Arial,sans-serif;background:#f2f2f2;margin:0}"
    "main{background:#fff;max-width:440px;margin:48px auto;padding:44px;"
    "box-shadow:0 2px 6px rgba(0,0,0,.2)}label{display:block;margin-top:12px}"
    "input{width:100%;padding:6px 0;font-size:15px;border:0;border-bottom:1px solid #666}"
    "button{margin-top:20px;padding:6px 24px;font-size:15px}"
    ".primary{background:#0067b8;color:#fff;border:0}.error{color:#e81123}"
    ".muted{color:#666;font-size:13px}"
)


class Redirect(Exception):
    """An answer sent back to the app's reply URL (a code, or an error)."""

    def __init__(self, params):
        super().__init__(params.get("error", "code"))
        self.params = params


def pkce_matches(verifier, challenge, method):
    if method == "plain":
        return secrets.compare_digest(verifier, challenge)
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return secrets.compare_digest(b64url(digest), challenge)


def reply_url_matches(registered, given):
    """Exact match, except that a loopback http URL ignores the port (RFC 8252, as Entra)."""
    if given in registered:
        return True
    try:
        parts = urlsplit(given)
        port = parts.port
    except ValueError:
        return False
    if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        return False
    without_port = parts._replace(netloc=parts.netloc.rsplit(":", 1)[0] if port else parts.netloc)
    for uri in registered:
        try:
            reg = urlsplit(uri)
            reg_port = reg.port
        except ValueError:
            continue
        reg = reg._replace(netloc=reg.netloc.rsplit(":", 1)[0] if reg_port else reg.netloc)
        if reg.geturl() == without_port.geturl():
            return True
    return False


class OidcMixin:
    """GraphApp's sign-in endpoints (mixed in with LoginMixin; uses its _oauth_error)."""

    # ----- pages --------------------------------------------------------------------

    def _page(self, h, title, body, status=200):
        text = (
            f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>"
            f"{html.escape(title)}</title><style>{PAGE_STYLE}</style></head><body><main>"
            f"<p class='muted'>m365sim &middot; Microsoft</p>{body}</main></body></html>"
        )
        self.send(
            h,
            status,
            text.encode(),
            content_type="text/html; charset=utf-8",
            headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"},
        )

    def _error_page(self, h, description, status=400):
        """An error Entra shows itself instead of sending it to the app."""
        self.stats.count("signin_errors")
        now = time.time()
        self._page(
            h,
            "Sign in to your account",
            "<h1>Sorry, but we're having trouble signing you in.</h1>"
            f"<p class='error' id='error'>{html.escape(description)}</p>"
            f"<p class='muted'>Request Id: {uuid.uuid4()}<br>Correlation Id: {uuid.uuid4()}"
            f"<br>Timestamp: {iso(now)}</p>",
            status,
        )

    def _redirect(self, h, request, params):
        """Send the browser back to the app with `params` (and the request's state)."""
        params = dict(params)
        if request.get("state") is not None:
            params["state"] = request["state"]
        uri = request["redirect_uri"]
        mode = request.get("response_mode") or "query"
        if mode == "form_post":
            fields = "".join(
                f"<input type='hidden' name='{html.escape(k)}' value='{html.escape(str(v))}'>"
                for k, v in params.items()
            )
            self._page(
                h,
                "Working...",
                f"<form method='post' action='{html.escape(uri)}'>{fields}"
                "<button class='primary' type='submit'>Continue</button></form>",
            )
            return
        joiner = "#" if mode == "fragment" else ("&" if "?" in uri else "?")
        self.send(h, 302, b"", headers={"Location": uri + joiner + urlencode(params)})

    def _error_params(self, error, code, description):
        return {
            "error": error,
            "error_description": f"AADSTS{code}: {description}\r\nTrace ID: {uuid.uuid4()}"
            f"\r\nCorrelation ID: {uuid.uuid4()}\r\nTimestamp: {iso(time.time())}",
            "error_uri": f"{self.running.authority_host}/error?code={code}",
        }

    def _sign_in_page(self, h, rid, request, error=None, login=""):
        app = self.sim.signin_app(request["client_id"])
        ref = request["ref"]
        with self.sim.lock:
            tenants = (
                [self.sim.tenant_by_ref(request["tenant_id"])]
                if request["tenant_id"]
                else list(self.sim.tenants)
            )
            names = [u.upn for t in tenants for u in t.users[:20] if not u.deleted]
        options = "".join(f"<option value='{html.escape(n)}'>" for n in names)
        heading = (
            "Sign in to give consent for your organization"
            if request["kind"] == "admin_consent"
            else "Sign in"
        )
        error_html = f"<p class='error' id='error'>{html.escape(error)}</p>" if error else ""
        self._page(
            h,
            "Sign in to your account",
            f"<h1>{heading}</h1><p>to continue to {html.escape(app.name if app else '')}</p>"
            f"{error_html}<form method='post' action='/{html.escape(ref)}/login'>"
            f"<input type='hidden' name='rid' value='{rid}'>"
            "<label for='login'>Email, phone, or Skype</label>"
            f"<input id='login' name='login' type='email' list='sim-users' autocomplete='off' "
            f"value='{html.escape(login)}' required><datalist id='sim-users'>{options}</datalist>"
            "<label for='passwd'>Password</label>"
            "<input id='passwd' name='passwd' type='password' required>"
            "<button class='primary' type='submit'>Sign in</button></form>"
            f"<p class='muted'>Simulated users ({len(names)} shown as you type): "
            f"{html.escape(', '.join(names[:5]))}{', ...' if len(names) > 5 else ''}. "
            f"Every simulated user's password is the demo password "
            f"<code>{html.escape(self.sim.user_password)}</code>.</p>",
            200 if not error else 400,
        )

    def _consent_page(self, h, rid, request, user):
        app = self.sim.signin_app(request["client_id"])
        for_org = request["kind"] == "admin_consent"
        asks = [
            "Sign you in and read your profile",
            "Maintain access to data you have given it access to",
        ]
        items = "".join(f"<li>{html.escape(a)}</li>" for a in asks)
        org = (
            "<p>Consent on behalf of your organization: everyone in "
            f"{html.escape(user.tenant.domain)} will be able to sign in.</p>"
            if for_org
            else ""
        )
        self._page(
            h,
            "Permissions requested",
            f"<p>{html.escape(user.upn)}</p><h1>Permissions requested</h1>"
            f"<p><strong>{html.escape(app.name)}</strong><br><span class='muted'>"
            f"{html.escape(app.tenant.domain)}</span></p>"
            f"<p>This app would like to:</p><ul>{items}</ul>{org}"
            f"<form method='post' action='/{html.escape(request['ref'])}/consent'>"
            f"<input type='hidden' name='rid' value='{rid}'>"
            "<button type='submit' name='decision' value='cancel'>Cancel</button> "
            "<button class='primary' type='submit' name='decision' value='accept'>Accept"
            "</button></form>",
        )

    # ----- /authorize and /adminconsent ---------------------------------------------

    def _check_client(self, h, ref, query, kind):
        """The request of `kind` (sign_in, admin_consent) once its tenant, client and reply URL
        check out, or None after an error page."""
        tenant = None
        if ref not in MULTI_TENANT_REFS:
            tenant = self.sim.tenant_by_ref(ref)
            if tenant is None:
                self._error_page(
                    h,
                    f"AADSTS90002: Tenant '{ref}' not found. Check to make sure you have the "
                    "correct tenant ID and are signing into the correct cloud.",
                )
                return None
        client_id = query.get("client_id", "")
        if not client_id:
            self._error_page(
                h,
                "AADSTS900144: The request body must contain the following parameter: 'client_id'.",
            )
            return None
        app = self.sim.signin_app(client_id)
        if app is None:
            directory = tenant.domain if tenant else ref
            self._error_page(
                h,
                f"AADSTS700016: Application with identifier '{client_id}' was not found in "
                f"the directory '{directory}'. This can happen if the application has not "
                "been installed by the administrator of the tenant or consented to by any "
                "user in the tenant. You may have sent your authentication request to the "
                "wrong tenant.",
            )
            return None
        redirect_uri = query.get("redirect_uri")
        if redirect_uri is None:
            if not app.redirect_uris:
                self._error_page(
                    h, "AADSTS500113: No reply address is registered for the application."
                )
                return None
            redirect_uri = app.redirect_uris[0]
        if not reply_url_matches(app.redirect_uris, redirect_uri):
            self._error_page(
                h,
                f"AADSTS50011: The redirect URI '{redirect_uri}' specified in the request "
                f"does not match the redirect URIs configured for the application "
                f"'{app.client_id}'. Make sure the redirect URI sent in the request matches "
                "one added to your application in the Azure portal. Navigate to "
                "https://aka.ms/redirectUriMismatchError to learn more about how to fix this.",
            )
            return None
        if tenant is None and app.sign_in_audience == "AzureADMyOrg":
            self._error_page(
                h,
                f"AADSTS50194: Application '{app.client_id}'({app.name}) is not configured as "
                "a multi-tenant application. Usage of the /common endpoint is not supported "
                "for such applications created after '10/15/2018'. Use a tenant-specific "
                "endpoint or configure the application to be multi-tenant.",
            )
            return None
        if (
            tenant is not None
            and app.sign_in_audience == "AzureADMyOrg"
            and tenant.id != app.tenant.id
        ):
            self._error_page(
                h,
                f"AADSTS700016: Application with identifier '{client_id}' was not found in "
                f"the directory '{tenant.domain}'.",
            )
            return None
        return {
            "kind": kind,
            "ref": ref,
            "tenant_id": tenant.id if tenant else None,
            "client_id": app.client_id,
            "redirect_uri": redirect_uri,
            "state": query.get("state"),
        }

    def _new_request(self, **request):
        rid = secrets.token_urlsafe(24)
        now = time.monotonic()
        with self.sim.lock:
            requests = self.running.auth_requests
            for old in [k for k, v in requests.items() if v["deadline"] < now]:
                del requests[old]
            request["deadline"] = now + SIGN_IN_SECONDS
            requests[rid] = request
        return rid

    def authorize(self, h, ref, query):
        self.stats.count("requests.authorize")
        request = self._check_client(h, ref, query, "sign_in")
        if request is None:
            return
        request.update(
            response_mode=query.get("response_mode", "query"),
            nonce=query.get("nonce"),
            scopes=query.get("scope", "").split(),
            prompt=query.get("prompt"),
            challenge=query.get("code_challenge"),
            method=query.get("code_challenge_method") or "plain",
        )
        try:
            if request["response_mode"] not in ("query", "fragment", "form_post"):
                request["response_mode"] = "query"
                raise Redirect(
                    self._error_params(
                        "invalid_request",
                        900144,
                        f"The provided value for the input parameter 'response_mode' is not "
                        f"valid: '{query.get('response_mode')}'.",
                    )
                )
            response_type = query.get("response_type", "")
            if not response_type:
                raise Redirect(
                    self._error_params(
                        "invalid_request",
                        900144,
                        "The request body must contain the following parameter: 'response_type'.",
                    )
                )
            if set(response_type.split()) != {"code"}:
                if {"token", "id_token"} & set(response_type.split()):
                    raise Redirect(
                        self._error_params(
                            "unauthorized_client",
                            700054,
                            f"response_type '{response_type}' is not enabled for the application.",
                        )
                    )
                raise Redirect(
                    self._error_params(
                        "unsupported_response_type",
                        70005,
                        f"response_type '{response_type}' is not supported.",
                    )
                )
            if not request["scopes"]:
                raise Redirect(
                    self._error_params(
                        "invalid_request",
                        900144,
                        "The request body must contain the following parameter: 'scope'.",
                    )
                )
            if request["challenge"] is not None:
                if request["method"] not in ("S256", "plain"):
                    raise Redirect(
                        self._error_params(
                            "invalid_request",
                            501491,
                            f"Invalid code_challenge_method '{request['method']}'. Use S256.",
                        )
                    )
                if not CHALLENGE.fullmatch(request["challenge"]):
                    raise Redirect(
                        self._error_params(
                            "invalid_request", 501491, "Invalid size of Code_Challenge parameter."
                        )
                    )
            if request["prompt"] == "none":
                raise Redirect(
                    self._error_params(
                        "login_required",
                        50058,
                        "A silent sign-in request was sent but no user is signed in.",
                    )
                )
        except Redirect as answer:
            self.stats.count("signin_errors")
            self._redirect(h, request, answer.params)
            return
        rid = self._new_request(**request)
        self._sign_in_page(h, rid, request, login=query.get("login_hint", ""))

    def admin_consent(self, h, ref, query):
        """/{tenant}/adminconsent (v1) and /{tenant}/v2.0/adminconsent: an administrator
        signs in and consents to the app for every user of their tenant."""
        self.stats.count("requests.adminconsent")
        request = self._check_client(h, ref, query, "admin_consent")
        if request is None:
            return
        request["response_mode"] = "query"
        rid = self._new_request(**request)
        self._sign_in_page(h, rid, request)

    # ----- the sign-in and consent forms ----------------------------------------------

    def _form(self, h):
        raw = self.read_body(h, limit=1 << 16)
        return {
            k: v[-1]
            for k, v in parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True).items()
        }

    def _pending(self, h, form):
        with self.sim.lock:
            request = self.running.auth_requests.get(form.get("rid", ""))
        if request is None or request["deadline"] < time.monotonic():
            self._error_page(
                h,
                "AADSTS50196: This sign-in has expired or was already finished. Go back to "
                "the application and sign in again.",
            )
            return None
        return request

    def sign_in(self, h, ref):
        form = self._form(h)
        request = self._pending(h, form)
        if request is None:
            return
        rid = form["rid"]
        login = form.get("login", "").strip()
        with self.sim.lock:
            user = None
            for tenant in self.sim.tenants:
                found = tenant.by_upn.get(login.lower())
                if found is not None and not found.deleted:
                    user = found
                    break
            password_ok = secrets.compare_digest(
                form.get("passwd", "").encode(), self.sim.user_password.encode()
            )
        if user is None:
            self.stats.count("signin_errors")
            self._sign_in_page(
                h,
                rid,
                request,
                error="AADSTS50034: We couldn't find an account with that username. "
                f"The user account {login} does not exist in the directory.",
                login=login,
            )
            return
        if not password_ok:
            self.stats.count("signin_errors")
            self._sign_in_page(
                h,
                rid,
                request,
                error="AADSTS50126: Error validating credentials due to invalid username or "
                "password. Your account or password is incorrect.",
                login=login,
            )
            return
        if request["tenant_id"] and user.tenant.id != request["tenant_id"]:
            tenant = self.sim.tenant_by_ref(request["tenant_id"])
            self._error_page(
                h,
                f"AADSTS50020: User account '{user.upn}' from identity provider "
                f"'https://sts.windows.net/{user.tenant.id}/' does not exist in tenant "
                f"'{tenant.domain}' and cannot access the application "
                f"'{request['client_id']}' in that tenant. The account needs to be added as "
                "an external user in the tenant first.",
            )
            return
        if not user.enabled:
            self._error_page(
                h,
                "AADSTS50057: The user account is disabled. The account has been disabled by "
                "an administrator.",
            )
            return
        app = self.sim.signin_app(request["client_id"])
        if app.sign_in_audience == "AzureADMyOrg" and user.tenant.id != app.tenant.id:
            self._error_page(
                h,
                f"AADSTS50020: User account '{user.upn}' from identity provider "
                f"'https://sts.windows.net/{user.tenant.id}/' does not exist in tenant "
                f"'{app.tenant.domain}' and cannot access the application "
                f"'{app.client_id}'({app.name}) in that tenant.",
            )
            return
        with self.sim.lock:
            request["user"] = (user.tenant.id, user.id)
        if request["kind"] == "admin_consent":
            if user is not user.tenant.administrator:
                self._error_page(
                    h,
                    "AADSTS90094: The grant requires admin permission. Need admin approval: "
                    f"{app.name} needs permission to access resources in your organization "
                    "that only an admin can grant. Sign in with an administrator account.",
                    status=403,
                )
                return
            self._consent_page(h, rid, request, user)
            return
        with self.sim.lock:
            consented = app.client_id in user.tenant.consented_apps or (
                (app.client_id, user.id) in user.tenant.user_consents
            )
        if not consented or request["prompt"] == "consent":
            self._consent_page(h, rid, request, user)
            return
        self._finish(h, rid, request, user)

    def consent(self, h, ref):
        form = self._form(h)
        request = self._pending(h, form)
        if request is None:
            return
        if "user" not in request:
            self._error_page(h, "AADSTS50058: Sign in first.")
            return
        tenant_id, user_id = request["user"]
        user = self.sim.tenant_by_ref(tenant_id).by_id[user_id]
        with self.sim.lock:
            self.running.auth_requests.pop(form["rid"], None)
        if form.get("decision") != "accept":
            self.stats.count("signin_errors")
            params = self._error_params(
                "access_denied", 65004, "User declined to consent to access the app."
            )
            if request["kind"] == "admin_consent":
                params["admin_consent"] = "False"
            self._redirect(h, request, params)
            return
        with self.sim.lock:
            if request["kind"] == "admin_consent":
                user.tenant.consented_apps.add(request["client_id"])
            else:
                user.tenant.user_consents.add((request["client_id"], user.id))
        if request["kind"] == "admin_consent":
            self._redirect(h, request, {"admin_consent": "True", "tenant": user.tenant.id})
            return
        self._finish(h, form["rid"], request, user)

    def _finish(self, h, rid, request, user):
        code = secrets.token_urlsafe(48)
        with self.sim.lock:
            self.running.auth_requests.pop(rid, None)
            codes = self.running.codes
            now = time.time()
            for old in [k for k, v in codes.items() if v["expires"] < now - 3600]:
                del codes[old]
            codes[code] = {
                "client_id": request["client_id"],
                "redirect_uri": request["redirect_uri"],
                "tenant_id": user.tenant.id,
                "user_id": user.id,
                "scopes": request["scopes"],
                "nonce": request["nonce"],
                "challenge": request["challenge"],
                "method": request["method"],
                "expires": now + self.sim.code_lifetime,
                "auth_time": int(now),
                "redeemed": False,
            }
        self.stats.count("signins")
        self._redirect(h, request, {"code": code, "session_state": str(uuid.uuid4())})

    # ----- the code exchange ----------------------------------------------------------

    def redeem_code(self, tenant, ref, form, authenticate):
        """The token endpoint's authorization_code grant: a dict to send, or an _oauth_error
        Reply raised. `authenticate(app)` checks the client's secret or assertion."""
        client_id = form.get("client_id", "")
        app = self.sim.signin_app(client_id)
        if app is None:
            raise self._oauth_error(
                400,
                "unauthorized_client",
                700016,
                f"AADSTS700016: Application with identifier '{client_id}' was not found in "
                f"the directory '{tenant.domain if tenant else ref}'.",
            )
        authenticate(app)
        code = form.get("code", "")
        if not code:
            raise self._oauth_error(
                400,
                "invalid_request",
                900144,
                "AADSTS900144: The request body must contain the following parameter: 'code'.",
            )
        with self.sim.lock:
            record = self.running.codes.get(code)
            first_use = record is not None and not record["redeemed"]
            if record is not None:
                record["redeemed"] = True  # single use, whatever happens next
        if record is None:
            raise self._oauth_error(
                400,
                "invalid_grant",
                9002313,
                "AADSTS9002313: Invalid request. Request is malformed or invalid.",
            )
        if not first_use:
            raise self._oauth_error(
                400,
                "invalid_grant",
                54005,
                "AADSTS54005: OAuth2 Authorization code was already redeemed, please retry "
                "with a new valid code or use an existing refresh token.",
            )
        if record["expires"] < time.time():
            raise self._oauth_error(
                400,
                "invalid_grant",
                70008,
                "AADSTS70008: The provided authorization code or refresh token has expired due "
                "to inactivity. Send a new interactive authorization request for this user and "
                "resource.",
            )
        if record["client_id"] != app.client_id:
            raise self._oauth_error(
                400, "invalid_grant", 70000, "AADSTS70000: Provided grant is invalid or malformed."
            )
        if tenant is not None and tenant.id != record["tenant_id"]:
            raise self._oauth_error(
                400,
                "invalid_grant",
                700005,
                "AADSTS700005: Provided Authorization Code is intended to use against other "
                "tenant, thus rejected.",
            )
        if form.get("redirect_uri", "") != record["redirect_uri"]:
            raise self._oauth_error(
                400,
                "invalid_grant",
                500112,
                f"AADSTS500112: The reply address '{form.get('redirect_uri', '')}' does not "
                f"match the reply address '{record['redirect_uri']}' provided when requesting "
                "Authorization code.",
            )
        verifier = form.get("code_verifier")
        if (record["challenge"] is None) != (verifier is None) or (
            verifier is not None
            and not pkce_matches(verifier, record["challenge"], record["method"])
        ):
            raise self._oauth_error(
                400,
                "invalid_grant",
                50148,
                "AADSTS50148: The code_verifier does not match the code_challenge supplied in "
                "the authorization request for PKCE.",
            )
        user_tenant = self.sim.tenant_by_ref(record["tenant_id"])
        user = user_tenant.by_id.get(record["user_id"])
        if user is None or user.deleted or not user.enabled:
            raise self._oauth_error(
                400,
                "invalid_grant",
                50057,
                "AADSTS50057: The user account is disabled or no longer exists.",
            )
        return self._user_tokens(app, user, record, form)

    def _user_tokens(self, app, user, record, form):
        now = int(time.time())
        tid = user.tenant.id
        scopes = set(record["scopes"])
        granted = ["openid", "profile", "email", "User.Read"]
        id_claims = {
            "aud": app.client_id,
            "iss": f"{self.running.authority_host}/{tid}/v2.0",
            "iat": now,
            "nbf": now,
            "exp": now + self.sim.id_token_lifetime,
            "name": user.display_name,
            "oid": user.id,
            "preferred_username": user.upn,
            "rh": b64url(secrets.token_bytes(16)),
            "sub": b64url(hashlib.sha256(f"{app.client_id}:{user.id}".encode()).digest()),
            "tid": tid,
            "uti": b64url(uuid.uuid4().bytes),
            "ver": "2.0",
        }
        if record["nonce"] is not None:
            id_claims["nonce"] = record["nonce"]
        if "email" in scopes and user.mail:
            id_claims["email"] = user.mail
        access_claims = {
            "aud": GRAPH_APP_ID,
            "iss": f"https://sts.windows.net/{tid}/",
            "iat": now,
            "nbf": now,
            "exp": now + self.sim.token_lifetime,
            "appid": app.client_id,
            "app_displayname": app.name,
            "idtyp": "user",
            "name": user.display_name,
            "oid": user.id,
            "scp": "openid profile email User.Read",
            "tid": tid,
            "upn": user.upn,
            "ver": "1.0",
        }
        body = {
            "token_type": "Bearer",
            "scope": " ".join(granted),
            "expires_in": self.sim.token_lifetime,
            "ext_expires_in": self.sim.token_lifetime,
            "access_token": self.running.identity.sign(access_claims),
        }
        if "openid" in scopes:
            body["id_token"] = self.running.identity.sign(id_claims)
        if "offline_access" in scopes:
            body["refresh_token"] = "0.sim." + secrets.token_urlsafe(64)
        if form.get("client_info") == "1":
            info = json.dumps({"uid": user.id, "utid": tid}, separators=(",", ":"))
            body["client_info"] = base64.urlsafe_b64encode(info.encode()).decode().rstrip("=")
        return body

    def sign_in_route(self, h, method, ref, rest, query):
        """True when `rest` was a sign-in endpoint (and was answered)."""
        try:
            if method == "GET" and rest == "oauth2/v2.0/authorize":
                self.authorize(h, ref, query)
            elif method == "GET" and rest in ("adminconsent", "v2.0/adminconsent"):
                self.admin_consent(h, ref, query)
            elif method == "POST" and rest == "login":
                self.sign_in(h, ref)
            elif method == "POST" and rest == "consent":
                self.consent(h, ref)
            else:
                return False
        except (BrokenPipeError, ConnectionResetError) as err:
            raise Aborted() from err
        return True
