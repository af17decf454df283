import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.shortcuts import render

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' data:",
        "style-src 'self'",
        "script-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'self'",
        "object-src 'none'",
    ]
)


class ContentSecurityPolicyMiddleware:
    """Everything Kodo serves comes from Kodo: CSS and JS are vendored, inline code is refused."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response


class RequestSizeLimitMiddleware:
    """Refuse oversized requests (uploads included) before anything reads their body."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.KODO_MAX_REQUEST_BYTES:
            limit_mb = settings.KODO_MAX_REQUEST_BYTES // (1024 * 1024)
            return render(request, "413.html", {"limit_mb": limit_mb}, status=413)
        return self.get_response(request)


LAST_SEEN_KEY = "kodo_last_seen"
LAST_SEEN_RESOLUTION = 60  # seconds: the session is written at most once a minute for this


def record_activity_on_login(sender, request, user, **kwargs):
    """Start the idle clock at log in (the login saves the session anyway)."""
    if request is not None and hasattr(request, "session"):
        request.session[LAST_SEEN_KEY] = int(time.time())


def is_administrator(user) -> bool:
    # Through the user's memberships (organizations.Membership, roles Role.ADMIN and
    # Role.OPERATOR, who may reach every user's data): kodo sits below organizations and imports
    # nothing from it.
    return user.is_superuser or user.memberships.filter(role__in=("admin", "operator")).exists()


class AdminIdleTimeoutMiddleware:
    """Log out an administrator (organization admin, restore operator or server administrator)
    who made no request for KODO_ADMIN_IDLE_SECONDS, so a browser left signed in does not stay
    an admin forever."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated:
            now = int(time.time())
            seen = request.session.get(LAST_SEEN_KEY)
            if not isinstance(seen, int) or now - seen >= LAST_SEEN_RESOLUTION:
                idle = now - seen if isinstance(seen, int) else 0
                if idle > settings.KODO_ADMIN_IDLE_SECONDS and is_administrator(request.user):
                    logout(request)
                    messages.info(
                        request,
                        "You were logged out after a time without activity. "
                        "Log in again to continue.",
                    )
                else:
                    request.session[LAST_SEEN_KEY] = now
        return self.get_response(request)
