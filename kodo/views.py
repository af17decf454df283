from django.contrib.auth.decorators import login_required
from django.http import HttpResponseServerError
from django.shortcuts import redirect, render
from django.template.loader import get_template

from organizations.access import self_service_organizations
from organizations.models import Membership


@login_required
def home(request):
    """Send each person where their work is: an administrator to their organization's Dashboard,
    a restore operator to its Backups page, a user to My backups (or a page saying their
    organization has not turned self-service on)."""
    if request.user.is_superuser:
        return redirect("organizations:server-organizations")
    first_by_role = {}
    for membership in (
        Membership.objects.filter(user=request.user)
        .select_related("organization")
        .order_by("organization__name")
    ):
        first_by_role.setdefault(membership.role, membership.organization)
    if Membership.Role.ADMIN in first_by_role:
        return redirect("backups:dashboard", org_code=first_by_role[Membership.Role.ADMIN].code)
    if Membership.Role.OPERATOR in first_by_role:
        return redirect("backups:backups", org_code=first_by_role[Membership.Role.OPERATOR].code)
    if Membership.Role.USER in first_by_role:
        if self_service_organizations(request.user).exists():
            return redirect("backups:my-backups")
        organization = first_by_role[Membership.Role.USER]
        return render(request, "self_service_off.html", {"organization": organization})
    return render(request, "no_organization.html")


def server_error(request):
    # No context processors: the page must render even when the database is the problem.
    return HttpResponseServerError(get_template("500.html").render())
