from django.shortcuts import render

from organizations.access import services_required


@services_required
def services(request, org):
    return render(request, "o365/services.html", {"org": org})
