"""Helpers for management commands that take an organization."""

import uuid

from django.core.management.base import CommandError

from organizations.models import Organization


def organization_from_argument(value: str) -> Organization:
    """The organization whose code or name (any case) is `value`, or a CommandError."""
    try:
        return Organization.objects.get(code=uuid.UUID(value))
    except (ValueError, Organization.DoesNotExist):
        pass
    found = Organization.objects.filter(name__iexact=value.strip()).first()
    if found is None:
        raise CommandError(f"No organization named or coded {value!r}.")
    return found
