from django.shortcuts import render

from organizations.access import org_admin_required


@org_admin_required
def schedules(request, org):
    return render(request, "schedules/list.html", {"org": org})
