from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import OuterRef, Subquery
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from backups import actions
from backups.access import get_directory_user, get_run
from backups.models import BackupRun
from o365.access import get_service
from o365.models import DirectoryUser, Service
from organizations.access import org_admin_required

RECENT_RUNS = 20


def _recent_runs(org):
    return (BackupRun.objects.for_organization(org)
            .select_related("directory_user", "service")[:RECENT_RUNS])


@org_admin_required
def backups(request, org):
    last_runs = BackupRun.objects.filter(directory_user=OuterRef("pk")).order_by("-created_at",
                                                                                 "-id")
    users = (DirectoryUser.objects.filter(service__organization=org, removed_at__isnull=True)
             .select_related("service")
             .annotate(last_run_id=Subquery(last_runs.values("id")[:1]))
             .order_by("service__name", "display_name", "user_principal_name"))
    page = Paginator(users, 50).get_page(request.GET.get("page"))
    runs_by_id = BackupRun.objects.in_bulk([u.last_run_id for u in page if u.last_run_id])
    for user in page:
        user.last_run = runs_by_id.get(user.last_run_id)
    runs = list(_recent_runs(org))
    return render(request, "backups/list.html", {
        "org": org,
        "configurations": Service.objects.for_organization(org),
        "page": page,
        "runs": runs,
        "any_active": any(run.is_active for run in runs),
    })


@org_admin_required
def runs_fragment(request, org):
    runs = list(_recent_runs(org))
    return render(request, "backups/runs_table.html", {
        "org": org, "runs": runs, "any_active": any(run.is_active for run in runs),
    })


@org_admin_required
def run_detail(request, org, run_code):
    run = get_run(org, run_code)
    return render(request, "backups/run.html", {
        "org": org, "run": run, "issues": run.issues.all()[:500],
    })


@org_admin_required
def user_history(request, org, service_code, user_graph_id):
    directory_user = get_directory_user(org, service_code, user_graph_id)
    runs = Paginator(BackupRun.objects.filter(directory_user=directory_user)
                     .select_related("service"), 50).get_page(request.GET.get("page"))
    template = ("backups/user_runs_table.html" if request.headers.get("X-Requested-With") == "fetch"
                else "backups/user_history.html")
    return render(request, template, {
        "org": org, "directory_user": directory_user, "page": runs,
        "any_active": any(run.is_active for run in runs),
    })


@org_admin_required
@require_POST
def backup_configuration(request, org, service_code):
    service = get_service(org, service_code)
    started, active = actions.do_start_backups(service=service, request=request)
    if started or active:
        messages.success(request, f"Backing up {len(started)} users of {service.name}"
                         + (f" ({len(active)} were already running)." if active else "."))
    else:
        messages.warning(request, f"{service.name} has no users to back up yet. Import users "
                                  "first (Services → Users → IMPORT USERS).")
    return redirect("backups", org_code=org.code)


@org_admin_required
@require_POST
def backup_user(request, org, service_code, user_graph_id):
    directory_user = get_directory_user(org, service_code, user_graph_id)
    started, active = actions.do_start_backups(service=directory_user.service,
                                               users=[directory_user], request=request)
    if started:
        messages.success(request, f"Backing up {directory_user}.")
    else:
        messages.warning(request, f"A backup of {directory_user} is already running.")
    if request.POST.get("next") == "history":
        return redirect("backup-user-history", org_code=org.code,
                        service_code=directory_user.service.code,
                        user_graph_id=directory_user.graph_id)
    return redirect("backups", org_code=org.code)
