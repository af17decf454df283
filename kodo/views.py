from django.contrib.auth.decorators import login_required
from django.http import HttpResponseServerError
from django.shortcuts import redirect, render
from django.template.loader import get_template

from organizations.models import Organization


@login_required
def home(request):
    """Send each person where their work is."""
    if request.user.is_superuser:
        return redirect("organizations:server-organizations")
    org = Organization.objects.visible_to(request.user).first()
    if org is not None:
        return redirect("backups:dashboard", org_code=org.code)
    return render(request, "no_organization.html")


def server_error(request):
    # No context processors: the page must render even when the database is the problem.
    return HttpResponseServerError(get_template("500.html").render())
