from django.shortcuts import render

from organizations.access import org_admin_required


@org_admin_required
def backups(request, org):
    return render(request, "backups/list.html", {"org": org})
