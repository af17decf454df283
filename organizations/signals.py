from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from organizations import audit
from organizations.models import Organization


def _home_organization(user):
    return Organization.objects.filter(memberships__user=user).first()


@receiver(user_logged_in)
def on_logged_in(sender, request, user, **kwargs):
    audit.record(
        "login", "Logged in.", request=request, actor=user, organization=_home_organization(user)
    )


@receiver(user_logged_out)
def on_logged_out(sender, request, user, **kwargs):
    if user is not None:
        audit.record(
            "logout",
            "Logged out.",
            request=request,
            actor=user,
            organization=_home_organization(user),
        )


@receiver(user_login_failed)
def on_login_failed(sender, credentials, request=None, **kwargs):
    email = (credentials.get("username") or "").strip().lower()[:254]
    user = get_user_model().objects.filter(username=email).first() if email else None
    audit.record(
        "login_failed",
        f"Failed log in as {email or '(no email)'}.",
        request=request,
        actor=user,
        actor_email=email,
        organization=user and _home_organization(user),
    )
