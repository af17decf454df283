from django.shortcuts import get_object_or_404

from o365.models import Configuration


def get_configuration(org, code) -> Configuration:
    """A configuration of `org` (already access-checked), or 404 for missing and not-yours."""
    return get_object_or_404(Configuration.objects.for_organization(org), code=code)
