"""Sign in with Microsoft: OpenID Connect, the authorization code flow with PKCE, through msal.

The server has one multi-tenant app (KODO_MICROSOFT_SIGNIN_*). A sign-in starts at
/organizations/oauth2/v2.0/authorize (any work or school account); msal keeps PKCE's verifier,
the state and the nonce in the *flow*, which Kodo keeps in the session until Microsoft sends the
person back to /accounts/microsoft/callback/. There msal checks the state, redeems the code with
the verifier and checks the nonce; Kodo then checks the id token itself: its RS256 signature
against the authority's published keys, the audience (our client id), the issuer (the
authority's /{tid}/v2.0 for the token's own tenant), expiry and the nonce.

Who the person is: the tenant id and object id of the token (never the email). A confirmed
MicrosoftIdentity (an administrator or operator linked it while signed in) names the account;
otherwise a directory user with that object id, imported from a configuration of that tenant
and linked to an account whose only roles are *user*, does. Nothing else signs anyone in.
"""

import hashlib
import time
import uuid
import warnings
from dataclasses import dataclass

import certifi
import jwt
import msal
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.urls import reverse

from organizations import audit
from organizations.models import Membership, MicrosoftIdentity, Organization

FLOW_KEY = "kodo_microsoft_flow"
PENDING_LINK_KEY = "kodo_microsoft_pending_link"
SIGNED_IN_WITH_KEY = "kodo_signed_in_with"  # "microsoft": two-factor sign-in never asks for a code
FLOW_SECONDS = 10 * 60  # a sign-in left at Microsoft longer than this starts again
PENDING_LINK_SECONDS = 10 * 60
LEEWAY_SECONDS = 120  # clock skew allowed on exp/nbf/iat, as Microsoft's libraries allow
TIMEOUT = (10, 30)
LINKING_ROLES = (Membership.Role.ADMIN, Membership.Role.OPERATOR)


class SignInRefused(Exception):
    """Why this return from Microsoft signs nobody in (a sentence for the person)."""

    def __init__(self, message, status=400, detail=""):
        super().__init__(message)
        self.message, self.status, self.detail = message, status, detail


def _unreachable(err, advice="Try again in a moment.") -> SignInRefused:
    """The refusal when Microsoft's sign-in service does not answer (502: not the user's doing)."""
    return SignInRefused(
        f"Kodo could not reach Microsoft's sign-in service. {advice}", status=502, detail=str(err)
    )


@dataclass(frozen=True)
class MicrosoftAccount:
    """Who Microsoft says signed in: tenant id and object id, and words to show."""

    tenant_id: uuid.UUID
    object_id: uuid.UUID
    username: str
    name: str


def signed_in_with_microsoft(request) -> bool:
    """This session was signed in with Microsoft (two-factor sign-in never asks it for a code)."""
    return request.session.get(SIGNED_IN_WITH_KEY) == "microsoft"


def is_enabled() -> bool:
    return bool(settings.KODO_MICROSOFT_SIGNIN_CLIENT_ID)


def redirect_uri() -> str:
    """The reply URL registered on the app (Register-KodoApp.ps1 -PortalUrl)."""
    return settings.KODO_BASE_URL.rstrip("/") + reverse("organizations:microsoft-callback")


class _Session(requests.Session):
    """The HTTP client msal and the key fetch use: no proxies or CA bundle from the environment,
    the configured CA (the demo's m365sim) or the public ones, and a timeout on every call."""

    def __init__(self):
        super().__init__()
        self.trust_env = False
        self.verify = settings.KODO_MICROSOFT_SIGNIN_CA_FILE or certifi.where()

    def request(self, *args, **kwargs):
        kwargs.setdefault("timeout", TIMEOUT)
        return super().request(*args, **kwargs)


def _credential():
    if settings.KODO_MICROSOFT_SIGNIN_CERTIFICATE:
        return {
            "private_key_pfx_path": settings.KODO_MICROSOFT_SIGNIN_CERTIFICATE,
            "passphrase": settings.KODO_MICROSOFT_SIGNIN_CERTIFICATE_PASSWORD or None,
        }
    return settings.KODO_MICROSOFT_SIGNIN_CLIENT_SECRET


def _application(http):
    return msal.ConfidentialClientApplication(
        settings.KODO_MICROSOFT_SIGNIN_CLIENT_ID,
        client_credential=_credential(),
        authority=f"{settings.KODO_MICROSOFT_SIGNIN_AUTHORITY}/organizations",
        http_client=http,
        instance_discovery=False,
        token_cache=msal.TokenCache(),  # nothing kept: Kodo needs the identity, not tokens
    )


def start(request, mode: str, next_url: str = "") -> str:
    """Begin a sign-in ("signin") or an account link ("link"); the URL to send the browser to."""
    try:
        with warnings.catch_warnings():
            # msal recommends response_mode=form_post; Kodo's session cookie is SameSite=Lax,
            # so a cross-site POST back would arrive without the session that holds the flow.
            # The code in the query is single-use, bound to PKCE's verifier and the state.
            warnings.filterwarnings("ignore", message="response_mode='form_post'")
            flow = _application(_Session()).initiate_auth_code_flow(
                scopes=[],
                redirect_uri=redirect_uri(),
                prompt="select_account",
                response_mode="query",
            )
    except (requests.RequestException, ValueError) as err:
        raise _unreachable(
            err, "Try again in a moment; if it keeps failing, tell your server administrator."
        ) from err
    request.session[FLOW_KEY] = {
        "flow": flow,
        "mode": mode,
        "next": next_url,
        "user": request.user.pk if mode == "link" else None,
        "started": time.time(),
    }
    return flow["auth_uri"]


def finish(request) -> tuple[dict, MicrosoftAccount]:
    """The saved flow (mode, next, user) and who signed in, from Microsoft's answer in
    request.GET; raises SignInRefused. The saved flow is used up either way."""
    saved = request.session.pop(FLOW_KEY, None)
    if not saved or time.time() - saved.get("started", 0) > FLOW_SECONDS:
        raise SignInRefused(
            "This sign-in was already used, has expired, or was started in another browser. "
            "Start again with Sign in with Microsoft."
        )
    answer = request.GET.dict()
    if answer.get("state") != saved["flow"].get("state"):
        raise SignInRefused(
            "Microsoft's answer does not belong to the sign-in this browser started (the state "
            "does not match). Start again with Sign in with Microsoft.",
            detail="state mismatch",
        )
    if "error" in answer:
        raise SignInRefused(
            "Microsoft did not sign you in: "
            + (_first_line(answer.get("error_description")) or answer["error"]),
            detail=answer["error"],
        )
    http = _Session()
    try:
        result = _application(http).acquire_token_by_auth_code_flow(saved["flow"], answer)
    except ValueError as err:  # msal: state or code missing
        raise SignInRefused(
            "Microsoft's answer is incomplete. Start again with Sign in with Microsoft.",
            detail=str(err),
        ) from err
    except RuntimeError as err:  # msal: the id token's nonce is not this sign-in's
        raise SignInRefused(
            "Microsoft's answer was made for another sign-in (the nonce does not match). "
            "Start again with Sign in with Microsoft.",
            detail=str(err),
        ) from err
    except requests.RequestException as err:
        raise _unreachable(err) from err
    if "error" in result:
        raise SignInRefused(
            "Microsoft did not sign you in: " + _first_line(result.get("error_description")),
            detail=result.get("error", ""),
        )
    if not result.get("id_token"):
        raise SignInRefused("Microsoft sent no id token.", detail="no id_token")
    claims = verify_id_token(http, result["id_token"], saved["flow"].get("nonce", ""))
    return saved, claims


def _first_line(text) -> str:
    return (text or "").splitlines()[0] if text else ""


def verify_id_token(http, token: str, nonce: str) -> MicrosoftAccount:
    """Checks the id token as the OpenID Connect spec says an app must; raises SignInRefused."""
    authority = settings.KODO_MICROSOFT_SIGNIN_AUTHORITY
    try:
        header = jwt.get_unverified_header(token)
        keys = http.get(f"{authority}/organizations/discovery/v2.0/keys")
        keys.raise_for_status()
        key = next(
            (
                jwt.PyJWK(k)
                for k in keys.json().get("keys", [])
                if k.get("kid") == header.get("kid")
            ),
            None,
        )
        if key is None:
            raise jwt.InvalidTokenError("no published key has the token's kid")
        claims = jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            audience=settings.KODO_MICROSOFT_SIGNIN_CLIENT_ID,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "nbf", "iss", "aud", "tid", "oid"]},
        )
        tenant_id, object_id = uuid.UUID(claims["tid"]), uuid.UUID(claims["oid"])
    except jwt.ExpiredSignatureError as err:
        raise SignInRefused(
            "Microsoft's answer has expired. Start again with Sign in with Microsoft.",
            detail=str(err),
        ) from err
    except (jwt.InvalidTokenError, ValueError, KeyError, TypeError) as err:
        raise SignInRefused(
            "Microsoft's answer could not be verified, so nobody was signed in.",
            detail=f"id token: {err}",
        ) from err
    except requests.RequestException as err:
        raise _unreachable(err) from err
    if claims["iss"] != f"{authority}/{claims['tid']}/v2.0":
        raise SignInRefused(
            "Microsoft's answer could not be verified, so nobody was signed in.",
            detail=f"id token issuer {claims['iss']!r}",
        )
    expected = hashlib.sha256(nonce.encode()).hexdigest()  # msal sends the nonce's hash
    if not nonce or claims.get("nonce") != expected:
        raise SignInRefused(
            "Microsoft's answer was made for another sign-in (the nonce does not match). "
            "Start again with Sign in with Microsoft.",
            detail="nonce mismatch",
        )
    return MicrosoftAccount(
        tenant_id,
        object_id,
        str(claims.get("preferred_username") or "")[:320],
        str(claims.get("name") or "")[:200],
    )


# ----- who may sign in ------------------------------------------------------------------------


def organizations_of_tenant(tenant_id):
    return Organization.objects.filter(configurations__tenant_id=tenant_id).distinct()


def find_account(who: MicrosoftAccount):
    """(account, organization) for this identity, or (None, reason)."""
    identity = (
        MicrosoftIdentity.objects.select_related("user")
        .filter(tenant_id=who.tenant_id, object_id=who.object_id)
        .first()
    )
    if identity is not None:
        user = identity.user
        if user.is_superuser or user.is_staff:  # made one since the link: the password rules
            return None, "server administrators sign in with their password"
        organization = (
            organizations_of_tenant(who.tenant_id)
            .filter(memberships__user=user, memberships__role__in=LINKING_ROLES)
            .first()
        )
        if user.is_active and organization is not None:
            return user, organization
        # A link whose account is no longer admin or operator there: the directory decides.
    users = (
        get_user_model()
        .objects.filter(
            is_active=True,
            directory_users__configuration__tenant_id=who.tenant_id,
            directory_users__graph_id__iexact=str(who.object_id),
            directory_users__removed_at__isnull=True,
        )
        .distinct()
    )
    candidates = list(users[:2])
    if len(candidates) != 1:
        return None, "no account imported for this identity" if not candidates else "ambiguous"
    user = candidates[0]
    memberships = list(user.memberships.select_related("organization"))
    if user.is_superuser or user.is_staff:
        return None, "server administrators sign in with their password"
    if any(m.role != Membership.Role.USER for m in memberships):
        return None, "an administrator or operator must link their Microsoft account first"
    organization = next(
        (
            m.organization
            for m in memberships
            if m.organization.configurations.filter(
                tenant_id=who.tenant_id,
                directory_users__account=user,
                directory_users__graph_id__iexact=str(who.object_id),
            ).exists()
        ),
        None,
    )
    if organization is None:
        return None, "the imported account is not a user of that organization"
    return user, organization


def may_link(user) -> bool:
    """Organization admins and restore operators may link a Microsoft account; users are
    matched through their import, and server administrators keep their password."""
    return (
        is_enabled()
        and not user.is_superuser
        and user.memberships.filter(role__in=LINKING_ROLES).exists()
    )


def tenant_allowed_for(user, tenant_id) -> Organization | None:
    """The organization (where `user` is admin or operator) whose configuration has this
    tenant, or None."""
    return (
        organizations_of_tenant(tenant_id)
        .filter(memberships__user=user, memberships__role__in=LINKING_ROLES)
        .first()
    )


def record_refusal(request, who: MicrosoftAccount | None, reason: str):
    organization = organizations_of_tenant(who.tenant_id).first() if who else None
    described = f"{who.username or who.object_id} (tenant {who.tenant_id})" if who else "someone"
    audit.record(
        "microsoft_signin_refused",
        f"Sign in with Microsoft refused for {described}: {reason}.",
        request=request,
        actor_email=(who.username if who else "")[:254],
        organization=organization,
    )


def record_sign_in(request, user, organization, who: MicrosoftAccount):
    audit.record(
        "microsoft_signin",
        f"Signed in with Microsoft as {who.username or who.object_id} (tenant {who.tenant_id}).",
        request=request,
        actor=user,
        organization=organization,
    )
