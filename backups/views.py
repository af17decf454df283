import datetime as dt

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, OuterRef, Subquery, Sum
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from backups import actions, activity
from backups.access import get_directory_user, get_run
from backups.models import BackupRun, DriveState
from backups.selection import RESTORE_POINT_STATUSES
from kodo.live import JOB_MESSAGE, live_render
from o365.access import get_configuration
from o365.models import Configuration, DirectoryUser
from organizations.access import org_admin_required, org_restorer_required
from organizations.forms import DateRangeForm

RECENT_RUNS = 20


def _recent_runs(org):
    return BackupRun.objects.for_organization(org).select_related(
        "directory_user", "configuration"
    )[:RECENT_RUNS]


@org_restorer_required
def backups(request, org):
    page = Paginator(BackupUsers(org), 50).get_page(request.GET.get("page"))
    runs_by_id = BackupRun.objects.in_bulk([u.last_run_id for u in page if u.last_run_id])
    for user in page:
        user.last_run = runs_by_id.get(user.last_run_id)
    _add_protection(org, page)
    runs = list(_recent_runs(org))
    active = (
        any(run.is_active for run in runs)
        or any(user.last_run and user.last_run.is_active for user in page)
        or _waiting_for_fan_out(request, org)
    )
    return live_render(
        request,
        "backups/list.html",
        "backups/list_live.html",
        {
            "org": org,
            "configurations": Configuration.objects.for_organization(org),
            "page": page,
            "runs": runs,
        },
        active=active,
    )


# "Backup now" of a configuration queues a task that creates the runs: until the first of them
# appears the Backups page has nothing active to show, yet must keep polling to show them.
FAN_OUT_KEY = "backups-fan-out-{}"
FAN_OUT_WAIT = dt.timedelta(minutes=5)


def _expect_fan_out(request, org):
    request.session[FAN_OUT_KEY.format(org.code)] = timezone.now().timestamp()


def _waiting_for_fan_out(request, org) -> bool:
    """True from "Backup now" of a configuration until a run created since then appears (at
    most FAN_OUT_WAIT: a fan-out that found every user already running creates none)."""
    key = FAN_OUT_KEY.format(org.code)
    asked = request.session.get(key)
    if not isinstance(asked, float):
        return False
    since = dt.datetime.fromtimestamp(asked, dt.UTC)
    if timezone.now() - since < FAN_OUT_WAIT:
        if not BackupRun.objects.for_organization(org).filter(created_at__gte=since).exists():
            return True
    del request.session[key]
    return False


class BackupUsers:
    """The Backups page's users: the organization's users still in Microsoft 365, by
    configuration name, display name and user principal name, each with `last_run_id` and
    `last_good_at`. A sequence for Paginator: `count()` is one query (index `users_protected`
    alone); a page is read per configuration it spans, along index `users_listed` (the first and
    the last configuration, and those wholly on the page), so that neither database sorts a
    configuration's users nor computes the annotations of the rows a page skips. At most four
    queries, whatever the number of users."""

    def __init__(self, org):
        self.org = org
        self.listed = DirectoryUser.objects.filter(
            configuration__organization=org, removed_at__isnull=True
        )
        self._sizes = None

    def sizes(self) -> list[tuple[int, int]]:
        """[(configuration id, its users listed)] in the page's order."""
        if self._sizes is None:
            self._sizes = list(
                self.listed.order_by()
                .values_list("configuration_id")
                .annotate(users=Count("*"))
                .order_by("configuration__name", "configuration_id")
            )
        return self._sizes

    def count(self) -> int:
        return sum(users for _, users in self.sizes())

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, window: slice) -> list:
        start, stop = window.start or 0, window.stop
        spans = []  # (configuration id, offset in it, how many)
        first = 0
        for configuration_id, users in self.sizes():
            low, high = max(start, first), min(stop, first + users)
            if low < high:
                spans.append((configuration_id, low - first, high - low))
            first += users
        if not spans:
            return []
        rows = self._read(*spans[0])
        if len(spans) > 2:  # wholly on the page: fewer users than the page holds, together
            middle = [configuration_id for configuration_id, _, _ in spans[1:-1]]
            rows += self._annotated(self.listed.filter(configuration_id__in=middle)).order_by(
                "configuration__name", "configuration_id", "display_name", "user_principal_name"
            )
        if len(spans) > 1:
            rows += self._read(*spans[-1])
        return rows

    def _read(self, configuration_id, offset, limit) -> list:
        ids = (
            self.listed.filter(configuration_id=configuration_id)
            .order_by("display_name", "user_principal_name")
            .values("pk")[offset : offset + limit]
        )
        return list(
            self._annotated(self.listed.filter(pk__in=ids)).order_by(
                "display_name", "user_principal_name"
            )
        )

    @staticmethod
    def _annotated(users):
        last_runs = BackupRun.objects.filter(directory_user=OuterRef("pk")).order_by(
            "-created_at", "-id"
        )
        return users.select_related("configuration").annotate(
            last_run_id=Subquery(last_runs.values("id")[:1]),
            last_good_at=Subquery(
                last_runs.filter(status__in=RESTORE_POINT_STATUSES).values("finished_at")[:1]
            ),
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


@org_restorer_required
def run_detail(request, org, run_code):
    run = get_run(org, run_code)
    return live_render(
        request,
        "backups/run.html",
        "backups/run_live.html",
        {"org": org, "run": run, "issues": run.issues.all()[:500]},
        active=run.is_active,
    )


@org_restorer_required
def user_history(request, org, configuration_code, user_graph_id):
    directory_user = get_directory_user(org, configuration_code, user_graph_id)
    runs = Paginator(
        BackupRun.objects.filter(directory_user=directory_user).select_related("configuration"), 50
    ).get_page(request.GET.get("page"))
    restores = list(directory_user.restores_from.all()[:10])
    return live_render(
        request,
        "backups/user_history.html",
        "backups/user_history_live.html",
        {"org": org, "directory_user": directory_user, "page": runs, "restores": restores},
        active=any(job.is_active for job in [*runs, *restores]),
    )


@org_restorer_required
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
        messages.success(
            request, message + " Their backups are being queued.", extra_tags=JOB_MESSAGE
        )
        if users > running:
            _expect_fan_out(request, org)
    else:
        messages.warning(
            request,
            f"{configuration.name} has no users to back up yet. Import users "
            "first (Services → Users → IMPORT USERS).",
        )
    return redirect("backups:backups", org_code=org.code)


@org_restorer_required
@require_POST
def start_user_backup(request, org, configuration_code, user_graph_id):
    directory_user = get_directory_user(org, configuration_code, user_graph_id)
    started, active = actions.do_start_backups(
        configuration=directory_user.configuration, users=[directory_user], request=request
    )
    if started:
        messages.success(request, f"Backing up {directory_user}.", extra_tags=JOB_MESSAGE)
    else:
        messages.warning(
            request, f"A backup of {directory_user} is already running.", extra_tags=JOB_MESSAGE
        )
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


@org_restorer_required
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
    return live_render(
        request,
        "backups/tasks.html",
        "backups/tasks_table.html",
        {"org": org, "form": form, "page": page, "tasks": task_list, "query": query.urlencode()},
        active=any(task.is_active for task in task_list),
    )


@org_restorer_required
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
    stats = activity.dashboard(org)
    return live_render(
        request,
        "dashboard.html",
        "backups/dashboard_live.html",
        {"org": org, "stats": stats},
        active=bool(stats.running_runs or stats.running_jobs),
    )
