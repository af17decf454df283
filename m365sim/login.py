"""The Entra ID side of the login + Graph server: OpenID discovery, signing keys and the
client-credentials token endpoint."""

import time
import uuid
from urllib.parse import parse_qs, unquote, urlsplit

from .faults import BODY_KINDS, STATUS_KINDS
from .http_base import Reply, iso
from .identity import ASSERTION_TYPE, GRAPH_APP_ID, GRAPH_RESOURCE, TokenError
from .oidc import MULTI_TENANT_REFS, OidcMixin


class LoginMixin(OidcMixin):
    """GraphApp's login endpoints (any path outside /v1.0). Mixed into GraphApp; uses BaseApp's
    self.sim, self.running and helpers."""

    def _oauth_error(self, status, error, code, description):
        now = time.time()
        return Reply(
            status,
            {
                "error": error,
                "error_description": description
                + (
                    f"\r\nTrace ID: {uuid.uuid4()}\r\nCorrelation ID: {uuid.uuid4()}\r\nTimestamp: "
                    f"{iso(now)}"
                ),
                "error_codes": [code],
                "timestamp": iso(now).replace("T", " ").rstrip("Z"),
                "trace_id": str(uuid.uuid4()),
                "correlation_id": str(uuid.uuid4()),
                "error_uri": f"{self.running.authority_host}/error?code={code}",
            },
        )

    def _tenant_or_error(self, ref):
        tenant = self.sim.tenant_by_ref(ref) if ref not in ("common", "organizations") else None
        if tenant is None:
            raise self._oauth_error(
                400,
                "invalid_tenant",
                90002,
                f"AADSTS90002: Tenant '{ref}' not found. Check to make sure you have "
                f"the correct tenant ID and are signing into the correct cloud. Check "
                f"with your subscription administrator, this may happen if there are no "
                f"active subscriptions for the tenant.",
            )
        return tenant

    def login(self, h, method, path, query):
        parts = [unquote(p) for p in path.split("/")[1:]]
        if not parts or not parts[0]:
            raise Reply(404, {"error": "not_found"})
        ref, rest = parts[0], "/".join(parts[1:])
        if method == "GET" and rest in (
            "v2.0/.well-known/openid-configuration",
            ".well-known/openid-configuration",
        ):
            tenant = None if ref in MULTI_TENANT_REFS else self._tenant_or_error(ref)
            self.stats.count("requests.discovery")
            raise Reply(200, self.discovery(tenant, ref))
        if method == "GET" and rest in ("discovery/v2.0/keys", "discovery/keys"):
            if ref not in MULTI_TENANT_REFS:
                self._tenant_or_error(ref)
            raise Reply(200, self.running.identity.jwks())
        if method == "POST" and rest in ("oauth2/v2.0/token", "oauth2/token"):
            self.token(h, ref)
            return
        if self.sign_in_route(h, method, ref, rest, query):
            return
        raise Reply(404, {"error": "not_found", "error_description": f"No such endpoint: {path}"})

    def discovery(self, tenant, ref=None):
        """Entra's OpenID configuration; /common and /organizations name the issuer with a
        {tenantid} placeholder (the id token's tid fills it)."""
        base = f"{self.running.authority_host}/{tenant.id if tenant else ref}"
        issuer = f"{self.running.authority_host}/{tenant.id if tenant else '{tenantid}'}/v2.0"
        return {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": issuer,
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{self.running.graph_base}/oidc/userinfo",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "acr",
                "nonce",
                "preferred_username",
                "name",
                "tid",
                "ver",
                "at_hash",
                "c_hash",
                "email",
            ],
            "kerberos_endpoint": f"{base}/kerberos",
            "tenant_region_scope": "EU",
            "cloud_instance_name": "m365sim.local",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": urlsplit(self.running.graph_base).netloc,
            "rbac_url": "https://pas.windows.net",
        }

    def token(self, h, ref):
        self.stats.count("requests.token")
        raw = self.read_body(h, limit=1 << 20)
        form = {
            k: v[-1]
            for k, v in parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True).items()
        }
        client_id = form.get("client_id", "")
        fault = self.sim.faults.decide("token", client_id, set(STATUS_KINDS) | set(BODY_KINDS))
        if fault is not None and fault.kind in STATUS_KINDS:
            status = STATUS_KINDS[fault.kind]
            headers = {}
            retry_after = fault.params.get("retry_after", 1 if status == 429 else None)
            if retry_after is not None:
                headers["Retry-After"] = str(retry_after)
            error = self._oauth_error(
                status,
                "temporarily_unavailable",
                90033,
                "AADSTS90033: A transient error has occurred. Please try again.",
            )
            self.stats.count("token_errors")
            self.send_reply(h, Reply(status, error.body, headers), fault=None)
            return
        try:
            if ref in MULTI_TENANT_REFS and form.get("grant_type") == "authorization_code":
                tenant = None  # the code says which tenant the user signed in to
            else:
                tenant = self._tenant_or_error(ref)
            body = self._issue(tenant, ref, form)
        except Reply as reply:
            self.stats.count("token_errors")
            self.send_reply(h, reply, fault=fault)
            return
        self.stats.count("tokens")
        self.send(
            h,
            200,
            body,
            headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"},
            fault=fault,
        )

    def _issue(self, tenant, ref, form):
        if form.get("grant_type") == "authorization_code":
            return self.redeem_code(
                tenant, ref, form, lambda app: self._authenticate_client(app, tenant, ref, form)
            )
        if form.get("grant_type") != "client_credentials":
            raise self._oauth_error(
                400,
                "unsupported_grant_type",
                70003,
                f"AADSTS70003: The app requested an unsupported grant type "
                f"'{form.get('grant_type')}'. m365sim supports client_credentials and "
                f"authorization_code.",
            )
        client_id = form.get("client_id", "")
        app = next((a for a in tenant.apps if a.client_id == client_id), None)
        if app is None:
            raise self._oauth_error(
                400,
                "unauthorized_client",
                700016,
                f"AADSTS700016: Application with identifier '{client_id}' was not found "
                f"in the directory '{tenant.domain}'. This can happen if the application "
                f"has not been installed by the administrator of the tenant or consented "
                f"to by any user in the tenant. You may have sent your authentication "
                f"request to the wrong tenant.",
            )
        scopes = form.get("scope", "").split()
        if not scopes:
            raise self._oauth_error(
                400,
                "invalid_request",
                900144,
                "AADSTS900144: The request body must contain the following parameter: 'scope'.",
            )
        graph_host = urlsplit(self.running.graph_base).netloc
        resources = {
            GRAPH_RESOURCE,
            GRAPH_RESOURCE + "/",
            f"https://{graph_host}",
            f"https://{graph_host}/",
            GRAPH_APP_ID,
        }
        for scope in scopes:
            if not scope.endswith("/.default"):
                raise self._oauth_error(
                    400,
                    "invalid_scope",
                    1002012,
                    f"AADSTS1002012: The provided value for scope {scope} is not valid. "
                    f"Client credential flows must have a scope value with /.default "
                    f"suffixed to the resource identifier (application ID URI).",
                )
            if (
                scope[: -len("/.default")] not in resources
                and scope[: -len(".default")] not in resources
            ):
                raise self._oauth_error(
                    400,
                    "invalid_resource",
                    500011,
                    f"AADSTS500011: The resource principal named "
                    f"{scope[: -len('/.default')]} was not found in the tenant named "
                    f"{tenant.domain}. This can happen if the application has not been "
                    f"installed by the administrator of the tenant or consented to by "
                    f"any user in the tenant.",
                )
        with_certificate = self._authenticate_client(app, tenant, ref, form)
        lifetime = self.sim.token_lifetime
        token, _ = self.running.identity.issue(
            app, lifetime, self.running.authority_host, with_certificate
        )
        return {
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": token,
        }

    def _authenticate_client(self, app, tenant, ref, form):
        """Checks the client's secret or certificate assertion; True for a certificate."""
        grant = form.get("grant_type")
        with_certificate = False
        try:
            if form.get("client_assertion"):
                if form.get("client_assertion_type") != ASSERTION_TYPE:
                    raise TokenError(
                        400, "invalid_request", 50027, "AADSTS50027: Invalid client_assertion_type."
                    )
                host = self.running.authority_host
                audiences = {f"{host}/{ref}/oauth2/v2.0/token"}
                if tenant is not None:
                    audiences |= {
                        f"{host}/{tenant.id}/oauth2/v2.0/token",
                        f"{host}/{tenant.domain}/oauth2/v2.0/token",
                        f"{host}/{tenant.id}/oauth2/token",
                    }
                self.running.identity.check_assertion(
                    app, form["client_assertion"], audiences, self.sim.refuse_replayed_jti
                )
                with_certificate = True
            elif "client_secret" in form:
                self.running.identity.check_secret(app, form["client_secret"])
            elif grant == "authorization_code":
                raise TokenError(
                    401,
                    "invalid_client",
                    7000218,
                    "AADSTS7000218: The request body must contain the following parameter: "
                    "'client_assertion' or 'client_secret'.",
                )
            else:
                raise TokenError(
                    401,
                    "invalid_client",
                    7000216,
                    "AADSTS7000216: 'client_assertion', 'client_secret' or 'request' is "
                    "required for the 'client_credentials' grant type.",
                )
        except TokenError as e:
            raise self._oauth_error(e.status, e.error, e.code, e.description) from e
        return with_certificate
