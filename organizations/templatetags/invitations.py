"""The Users page's invitation buttons: the ways the server can invite (a password link, and
Sign in with Microsoft when configured)."""

from django import template

from organizations import invitations

register = template.Library()


@register.simple_tag
def invite_methods():
    """[(method, button words for one, for all, what it does)]: a password link, and Sign in with
    Microsoft when the server has it."""
    words = {invitations.PASSWORD: "", invitations.MICROSOFT: " (MICROSOFT)"}
    return [
        (method, f"INVITE{words[method]}", f"INVITE ALL{words[method]}", label)
        for method, label in invitations.methods()
    ]
