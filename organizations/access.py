"""Access helpers: the one way views reach an organization.

Each helper filters by what the user may see and raises Http404 for both "missing" and "not
yours", so an outsider learns nothing about other organizations.
"""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404

from organizations.models import Organization


def get_organization_for_user(request, code) -> Organization:
    return get_object_or_404(Organization.objects.visible_to(request.user), code=code)


def org_admin_required(view):
    """Resolve the `org_code` URL argument into `org` (or 404) for an organization admin."""

    @login_required
    @wraps(view)
    def wrapper(request, org_code, *args, **kwargs):
        org = get_organization_for_user(request, org_code)
        request.organization = org
        return view(request, org, *args, **kwargs)

    return wrapper


def services_required(view):
    """Like org_admin_required, for the Services pages: absent unless enabled for the org."""

    @org_admin_required
    @wraps(view)
    def wrapper(request, org, *args, **kwargs):
        if not org.services_enabled:
            raise Http404("Services are not enabled for this organization.")
        return view(request, org, *args, **kwargs)

    return wrapper


def server_admin_required(view):
    """Pages of the server administrator (a Django superuser); everyone else gets 404."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_superuser:
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper
