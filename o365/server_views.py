"""The server administrator's Clouds pages: the server-level list of Microsoft clouds."""

from django.contrib import messages
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from o365 import actions
from o365.forms import CloudForm
from o365.models import Cloud
from organizations.access import server_admin_required


@server_admin_required
def server_clouds(request):
    Cloud.objects.ensure_builtins()
    clouds = Cloud.objects.annotate(
        configuration_count=Count("configurations", distinct=True),
        organizations=Count("accesses", distinct=True),
    ).order_by("created_at", "id")
    return render(request, "o365/server_clouds.html", {"clouds": clouds})


@server_admin_required
def server_cloud_new(request):
    form = CloudForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        cloud = actions.do_save_cloud(request=request, cloud=None, data=form.cleaned_data)
        messages.success(request, f"Added the cloud {cloud.name}.")
        return redirect("o365:server-clouds")
    return render(request, "o365/server_cloud_form.html", {"form": form, "cloud": None})


@server_admin_required
def server_cloud(request, cloud_code):
    cloud = get_object_or_404(Cloud, code=cloud_code)
    form = CloudForm(request.POST or None, instance=cloud)
    if request.method == "POST" and form.is_valid():
        actions.do_save_cloud(request=request, cloud=cloud, data=form.cleaned_data)
        messages.success(request, f"Saved the cloud {cloud.name}.")
        return redirect("o365:server-clouds")
    return render(request, "o365/server_cloud_form.html", {"form": form, "cloud": cloud})


@server_admin_required
@require_POST
def server_cloud_delete(request, cloud_code):
    cloud = get_object_or_404(Cloud, code=cloud_code)
    if actions.do_delete_cloud(request=request, cloud=cloud):
        messages.success(request, f"Deleted the cloud {cloud.name}.")
    else:
        messages.error(
            request,
            f"The cloud {cloud.name} is built in or used by configurations: it cannot be deleted.",
        )
    return redirect("o365:server-clouds")
