"""Two-factor sign-in for password accounts (django-otp): an authenticator app (TOTP) and ten
one-time recovery codes.

A password alone never signs in an account that has a confirmed authenticator app, nor an
administrator when KODO_REQUIRE_TWO_FACTOR_FOR_ADMINS is on: the password step leaves a *pending
sign-in* in the session (the account, not signed in) and only a correct code, or setting up an app,
signs the person in. Wrong codes count with wrong passwords in django-axes (same limit, same
cool-off, keyed on the account and the client address).

Sessions signed in with Microsoft (session["kodo_signed_in_with"] == "microsoft") are never asked
for a code: Entra ID did its own multi-factor authentication.
"""

import base64
import time

import segno
from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, get_user_model
from django.contrib.auth import login as auth_login
from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from kodo.middleware import is_administrator  # server administrators, org admins, operators
from organizations import audit
from organizations.microsoft_signin import SIGNED_IN_WITH_KEY, signed_in_with_microsoft
from organizations.models import Organization

PENDING_KEY = "kodo_two_factor_pending"
# Set at log in when the account needs a second factor that this log in did not ask for.
UNVERIFIED_KEY = "kodo_two_factor_unverified"
NEW_CODES_KEY = "kodo_two_factor_new_codes"
PENDING_SECONDS = 10 * 60
RECOVERY_CODE_COUNT = 10
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
DEVICE_NAME = "Authenticator app"
RECOVERY_DEVICE_NAME = "Recovery codes"


# ----- who needs what -----------------------------------------------------------------------


def is_required(user) -> bool:
    return settings.KODO_REQUIRE_TWO_FACTOR_FOR_ADMINS and is_administrator(user)


def authenticator(user):
    """The account's confirmed authenticator app, or None."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("-id").first()


def has_two_factor(user) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def recovery_codes_left(user) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def home_organization(user):
    return Organization.objects.filter(memberships__user=user).first()


def _record(request, user, action: str, message: str):
    """An event of the account's own sign-in, in the audit log of its organization."""
    audit.record(action, message, request=request, actor=user, organization=home_organization(user))


# ----- the pending sign-in ------------------------------------------------------------------


def begin_sign_in(request, user, *, backend: str, next_url: str = ""):
    """The password was right (or just set): sign the person in, or leave a pending sign-in and
    send them to the code step (account with an app) or to set an app up (required, none yet)."""
    if has_two_factor(user):
        step = "organizations:two-factor-code"
    elif is_required(user):
        step = "organizations:two-factor-login-setup"
    else:
        complete_sign_in(request, user, backend=backend)
        return redirect(safe_next(request, next_url))
    request.session.cycle_key()  # a session key known before the password is not this one
    request.session[PENDING_KEY] = {
        "user": user.pk,
        "backend": backend,
        "hash": user.get_session_auth_hash(),
        "since": int(time.time()),
        "next": next_url,
    }
    return redirect(step)


def pending_user(request):
    """The account of the pending sign-in, or None when there is none, it is older than
    PENDING_SECONDS, or the password changed since."""
    pending = request.session.get(PENDING_KEY)
    if not isinstance(pending, dict):
        return None
    if time.time() - pending.get("since", 0) > PENDING_SECONDS:
        request.session.pop(PENDING_KEY, None)
        return None
    user = get_user_model().objects.filter(pk=pending.get("user"), is_active=True).first()
    if user is None or user.get_session_auth_hash() != pending.get("hash"):
        request.session.pop(PENDING_KEY, None)
        return None
    return user


def complete_sign_in(request, user, *, backend: str, device=None):
    """Sign in (Django's login: new session key, `login` audit entry, axes reset) and, when a
    device was verified, mark the session verified for django-otp."""
    pending = request.session.pop(PENDING_KEY, None) or {}
    request.session.pop(SIGNED_IN_WITH_KEY, None)  # a password sign-in is never a Microsoft one
    request._kodo_two_factor_checked = True  # read by mark_unverified_logins
    auth_login(request, user, backend=pending.get("backend") or backend)
    if device is not None:
        otp_login(request, device)


def pending_next(request) -> str:
    pending = request.session.get(PENDING_KEY) or {}
    return pending.get("next", "") if isinstance(pending, dict) else ""


def safe_next(request, next_url: str) -> str:
    if next_url and url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return next_url
    return reverse(settings.LOGIN_REDIRECT_URL)


# ----- lockout (django-axes) ----------------------------------------------------------------


def _credentials(user):
    return {"username": user.get_username()}


def is_locked_out(request, user) -> bool:
    return not AxesProxyHandler.is_allowed(request, _credentials(user))


def record_refused_code(request, user) -> bool:
    """Count a wrong code as a failed log in; True when the account is now locked out here."""
    AxesProxyHandler.user_login_failed(
        sender=__name__, credentials=_credentials(user), request=request
    )
    _record(request, user, "two_factor_code_refused", "A wrong two-factor code was entered.")
    if getattr(request, "axes_locked_out", False):
        _record(
            request,
            user,
            "two_factor_locked_out",
            "Locked out after too many wrong log-in attempts (password or two-factor code).",
        )
        request.session.pop(PENDING_KEY, None)
        return True
    return False


# ----- codes --------------------------------------------------------------------------------


class Throttled(Exception):
    """django-otp's own per-device delay after wrong codes is still running."""


def normalize_code(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


def verify_code(user, code: str):
    """The device that accepts `code` (the authenticator app for six digits, else a recovery
    code, which is used up), or None. Raises Throttled while django-otp asks to wait."""
    code = normalize_code(code)
    if not code:
        return None
    if code.isdigit() and len(code) == 6:
        devices = list(TOTPDevice.objects.filter(user=user, confirmed=True))
    else:
        devices = list(StaticDevice.objects.filter(user=user, confirmed=True))
    allowed = [device for device in devices if device.verify_is_allowed()[0]]
    if devices and not allowed:
        raise Throttled
    for device in allowed:
        if device.verify_token(code):
            return device
    return None


def after_verified(request, user, device):
    """Audit a recovery code used (the authenticator app is the ordinary case: `login` says it)."""
    if isinstance(device, StaticDevice):
        left = StaticToken.objects.filter(device=device).count()
        _record(
            request, user, "recovery_code_used", f"Signed in with a recovery code ({left} left)."
        )


# ----- setting up ---------------------------------------------------------------------------


def new_authenticator(user) -> TOTPDevice:
    """An unconfirmed app for the set-up page (any earlier unconfirmed one is replaced)."""
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    return TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)


def unconfirmed_authenticator(user, device_id):
    if not isinstance(device_id, int):
        return None
    return TOTPDevice.objects.filter(user=user, pk=device_id, confirmed=False).first()


def secret_text(device: TOTPDevice) -> str:
    """The key as authenticator apps ask for it when typed: base32, in groups of four."""
    key = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(key[i : i + 4] for i in range(0, len(key), 4))


def qr_data_uri(device: TOTPDevice) -> str:
    """The otpauth:// URL as an SVG QR code in a data: URI (CSP allows img-src data:)."""
    return segno.make(device.config_url, error="m").svg_data_uri(scale=5, border=2)


def code_confirms(device: TOTPDevice, code: str) -> bool:
    """Whether `code` is what the unconfirmed app shows now (the set-up step)."""
    code = normalize_code(code)
    # The person sees this app's key on the page: django-otp's delay after a typo protects nothing.
    device.throttle_reset(commit=False)
    return code.isdigit() and len(code) == 6 and device.verify_token(code)


def new_recovery_codes(user) -> list[str]:
    """Ten new recovery codes in place of the account's earlier ones (returned, shown once)."""
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY_DEVICE_NAME, confirmed=True)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes


def record_new_codes(request, user):
    _record(
        request,
        user,
        "recovery_codes_created",
        f"Made {RECOVERY_CODE_COUNT} new recovery codes (the earlier ones no longer work).",
    )


# ----- log ins that did not go through the code step ----------------------------------------


@receiver(user_logged_in)
def mark_unverified_logins(sender, request, user, **kwargs):
    """A log in made elsewhere than complete_sign_in (a test's force_login, a future view) for an
    account that needs a second factor: TwoFactorMiddleware turns it into a pending sign-in on
    the next request, unless the session is a Microsoft one."""
    if request is None or getattr(request, "_kodo_two_factor_checked", False):
        return
    if not hasattr(request, "session"):
        return
    if has_two_factor(user) or is_required(user):
        request.session[UNVERIFIED_KEY] = True


def _needs_second_factor_now(request) -> bool:
    """A password session that never gave a second factor, of an account that needs one now
    (made an administrator or operator since, or the requirement turned on since). Sessions that
    gave a code carry django-otp's device key and are Microsoft's are exempt: no query for them."""
    return (
        settings.KODO_REQUIRE_TWO_FACTOR_FOR_ADMINS
        and request.user.is_authenticated
        and DEVICE_ID_SESSION_KEY not in request.session
        and not signed_in_with_microsoft(request)
        and is_administrator(request.user)
    )


class TwoFactorMiddleware:
    """A session marked by mark_unverified_logins, or caught by _needs_second_factor_now, is
    signed out and sent to the code step (or the set-up step)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.session.get(UNVERIFIED_KEY) or _needs_second_factor_now(request):
            if signed_in_with_microsoft(request) or not request.user.is_authenticated:
                request.session.pop(UNVERIFIED_KEY, None)
            else:
                user = request.user
                backend = request.session.get(BACKEND_SESSION_KEY) or MODEL_BACKEND
                request.session.flush()
                request.user = AnonymousUser()
                next_url = request.get_full_path() if request.method == "GET" else ""
                return begin_sign_in(request, user, backend=backend, next_url=next_url)
        return self.get_response(request)
