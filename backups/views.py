from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import OuterRef, Subquery, Sum
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from backups import actions, activity
from backups.access import get_directory_user, get_run
from backups.models import BackupRun, DriveState
from backups.selection import RESTORE_POINT_STATUSES
from o365.access import get_configuration
from o365.models import Configuration, DirectoryUser
from organizations.access import org_admin_required
from organizations.forms import DateRangeForm

RECENT_RUNS = 20


def _recent_runs(org):
    return BackupRun.objects.for_organization(org).select_related(
        "directory_user", "configuration"
    )[:RECENT_RUNS]


@org_admin_required
def backups(request, org):
    last_runs = BackupRun.objects.filter(directory_user=OuterRef("pk")).order_by(
        "-created_at", "-id"
    )
    users = (
        DirectoryUser.objects.filter(configuration__organization=org, removed_at__isnull=True)
        .select_related("configuration")
        .annotate(
            last_run_id=Subquery(last_runs.values("id")[:1]),
            last_good_at=Subquery(
                last_runs.filter(status__in=RESTORE_POINT_STATUSES).values("finished_at")[:1]
            ),
        )
        .order_by("configuration__name", "display_name", "user_principal_name")
    )
    page = Paginator(users, 50).get_page(request.GET.get("page"))
    runs_by_id = BackupRun.objects.in_bulk([u.last_run_id for u in page if u.last_run_id])
    for user in page:
        user.last_run = runs_by_id.get(user.last_run_id)
    _add_protection(org, page)
    runs = list(_recent_runs(org))
    return render(
        request,
        "backups/list.html",
        {
            "org": org,
            "configurations": Configuration.objects.for_organization(org),
            "page": page,
            "runs": runs,
            "any_active": any(run.is_active for run in runs),
        },
    )


def _add_protection(org, users):
    """Each user's protection ("288 files, 154 MB protected"): the files and bytes of their
    current versions, for the whole page in one aggregate query. It sums the totals each drive
    keeps (DriveState.current_files / current_bytes, kept by triggers): one row per drive, not
    one per file."""
    totals = {
        row["directory_user_id"]: row
        for row in DriveState.objects.filter(
            organization=org, directory_user__in=[user.pk for user in users]
        )
        .values("directory_user_id")
        .annotate(files=Sum("current_files"), size=Sum("current_bytes"))
    }
    for user in users:
        found = totals.get(user.pk, {})
        user.protected_files = found.get("files") or 0
        user.protected_bytes = found.get("size") or 0


@org_admin_required
def runs_fragment(request, org):
    runs = list(_recent_runs(org))
    return render(
        request,
        "backups/runs_table.html",
        {
            "org": org,
            "runs": runs,
            "any_active": any(run.is_active for run in runs),
        },
    )


@org_admin_required
def run_detail(request, org, run_code):
    run = get_run(org, run_code)
    return render(
        request,
        "backups/run.html",
        {
            "org": org,
            "run": run,
            "issues": run.issues.all()[:500],
        },
    )


@org_admin_required
def user_history(request, org, configuration_code, user_graph_id):
    directory_user = get_directory_user(org, configuration_code, user_graph_id)
    runs = Paginator(
        BackupRun.objects.filter(directory_user=directory_user).select_related("configuration"), 50
    ).get_page(request.GET.get("page"))
    template = (
        "backups/user_runs_table.html"
        if request.headers.get("X-Requested-With") == "fetch"
        else "backups/user_history.html"
    )
    return render(
        request,
        template,
        {
            "org": org,
            "directory_user": directory_user,
            "page": runs,
            "any_active": any(run.is_active for run in runs),
        },
    )


@org_admin_required
@require_POST
def start_configuration_backup(request, org, configuration_code):
    configuration = get_configuration(org, configuration_code)
    users, running = actions.do_request_configuration_backup(
        configuration=configuration, request=request
    )
    if users:
        # The runs are created by a task (in batches): the page shows them as they are queued.
        message = f"Backing up {users - running} users of {configuration.name}"
        message += f" ({running} already running)." if running else "."
        messages.success(request, message + " Their backups are being queued.")
    else:
        messages.warning(
            request,
            f"{configuration.name} has no users to back up yet. Import users "
            "first (Services → Users → IMPORT USERS).",
        )
    return redirect("backups:backups", org_code=org.code)


@org_admin_required
@require_POST
def start_user_backup(request, org, configuration_code, user_graph_id):
    directory_user = get_directory_user(org, configuration_code, user_graph_id)
    started, active = actions.do_start_backups(
        configuration=directory_user.configuration, users=[directory_user], request=request
    )
    if started:
        messages.success(request, f"Backing up {directory_user}.")
    else:
        messages.warning(request, f"A backup of {directory_user} is already running.")
    if request.POST.get("next") == "history":
        return redirect(
            "backups:backup-user-history",
            org_code=org.code,
            configuration_code=directory_user.configuration.code,
            user_graph_id=directory_user.graph_id,
        )
    return redirect("backups:backups", org_code=org.code)


# ----- Tasks ---------------------------------------------------------------------------------

TASKS_PER_PAGE = 50


class TaskFilterForm(DateRangeForm):
    field_order = ["type", "status", "since", "until", "user"]

    type = forms.ChoiceField(
        label="Type",
        required=False,
        choices=lambda: [("", "All types"), *activity.TASK_TYPES.choices],
    )
    status = forms.ChoiceField(
        label="Status", required=False, choices=[("", "All statuses"), *activity.TaskStatus.CHOICES]
    )
    # Backups match their user's email; imports and synchronizations, who started them.
    user = forms.CharField(
        label="User",
        required=False,
        max_length=254,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Email"}),
    )

    def filters(self, zone) -> dict:
        data = self.cleaned_data
        since, until = self.bounds(zone)
        return {
            "types": [data["type"]] if data.get("type") else [],
            "statuses": [data["status"]] if data.get("status") else [],
            "since": since,
            "until": until,
            "user": (data.get("user") or "").strip(),
        }


@org_admin_required
def tasks(request, org):
    form = TaskFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        page, task_list = None, []
    else:
        filters = form.filters(activity.org_zone(org)) if form.is_bound else {}
        page = Paginator(activity.task_rows(org, **filters), TASKS_PER_PAGE).get_page(
            request.GET.get("page")
        )
        task_list = activity.load_tasks(page.object_list)
    query = request.GET.copy()
    query.pop("page", None)
    fragment = request.headers.get("X-Requested-With") == "fetch"
    return render(
        request,
        "backups/tasks_table.html" if fragment else "backups/tasks.html",
        {
            "org": org,
            "form": form,
            "page": page,
            "tasks": task_list,
            "query": query.urlencode(),
            "any_active": any(task.is_active for task in task_list),
        },
    )


@org_admin_required
@require_POST
def cancel_run(request, org, run_code):
    run = get_run(org, run_code)
    canceled = actions.do_cancel_run(run, request=request)
    tasks = reverse("backups:tasks", args=[org.code])
    return after_cancel(request, run, canceled, f"backup of {run.directory_user}", tasks)


def after_cancel(request, job, canceled: bool, what: str, default_url: str):
    """The one answer to a Cancel button (backup runs, restores): say what happened, then go
    back where the button was (`next`, a URL of this site), else to `default_url`."""
    if canceled:
        messages.success(request, f"The {what} was canceled.")
    else:
        messages.warning(
            request, f"The {what} had already finished ({job.get_status_display().lower()})."
        )
    next_url = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(next_url)
    return redirect(default_url)


@org_admin_required
def dashboard(request, org):
    """The organization's landing page: what is protected, what ran, what is stored."""
    return render(request, "dashboard.html", {"org": org, "stats": activity.dashboard(org)})
