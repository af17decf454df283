"""Sign in with Microsoft in templates (organizations/microsoft_signin.py): whether the login page
shows the button, and what the account page's Microsoft section shows."""

from django import template

from organizations import microsoft_signin

register = template.Library()


@register.simple_tag
def microsoft_signin_enabled():
    return microsoft_signin.is_enabled()


@register.simple_tag(takes_context=True)
def microsoft_account(context):
    """{% microsoft_account as microsoft %}: enabled, may_link, identities and
    signed_in_with_microsoft."""
    request = context["request"]
    user = request.user
    return {
        "enabled": microsoft_signin.is_enabled(),
        "may_link": microsoft_signin.may_link(user),
        "identities": list(user.microsoft_identities.order_by("confirmed_at")),
        "signed_in_with_microsoft": microsoft_signin.signed_in_with_microsoft(request),
    }
