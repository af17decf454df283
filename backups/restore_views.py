"""The restore pages: the form between the browse pages' RESTORE button and the job (what will
be restored, and where to), the job's page with its live progress and per-file results, their
CSV, and Cancel. Starting and cancelling are backups.actions' do_start_restore and
do_cancel_restore; what a selection means is backups.selection's."""

import csv
from dataclasses import dataclass

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Q, Sum
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from backups import actions
from backups.access import backup_data_required, get_directory_user, get_restore
from backups.models import FileVersion, RestoreItem, RestoreJob
from backups.restore import RestoreRefused
from backups.restore_forms import RestoreItemFilterForm, RestoreOptionsForm, SelectionForm
from backups.selection import deleted_items, select
from backups.views import after_cancel
from kodo.live import JOB_MESSAGE, live_render
from o365.models import DirectoryUser
from organizations.access import RESTORE

ITEMS_PER_PAGE = 100
TARGET_CHOICES_SHOWN = 500  # the email suggestions of "Whose OneDrive"; any email may be typed
PATHS_SHOWN = 20
CSV_BATCH = 2000


@dataclass(frozen=True)
class Totals:
    files: int
    folders: int
    bytes: int


def _totals(directory_user, selection) -> Totals:
    """How much the selection holds. The whole OneDrive and the deleted items are counted in the
    database (they may be a million versions); picked paths and versions are walked with
    backups.selection.select, exactly as the restore will walk them."""
    if selection.what == RestoreJob.What.SELECTION:
        files = folders = size = 0
        for picked in select(
            directory_user,
            selection.run,
            paths=selection.paths,
            version_ids=selection.version_ids,
        ):
            if not picked.relative_path:
                continue  # the drive's root: what it holds is what is restored
            if picked.version.is_folder:
                folders += 1
            else:
                files += 1
                size += picked.version.size
        return Totals(files, folders, size)
    versions = (
        FileVersion.objects.files_as_of(selection.run)
        if selection.what == RestoreJob.What.DRIVE
        else deleted_items(directory_user)
    )
    counted = (
        versions.exclude(path__in=("", "/"))
        .order_by()
        .aggregate(
            files=Count("pk", filter=Q(is_folder=False)),
            folders=Count("pk", filter=Q(is_folder=True)),
            size=Sum("size", filter=Q(is_folder=False)),
        )
    )
    return Totals(counted["files"], counted["folders"], counted["size"] or 0)


def _target_choices(org):
    """Emails suggested in "Whose OneDrive" (a datalist): the organization's present users."""
    return (
        DirectoryUser.objects.filter(configuration__organization=org, removed_at__isnull=True)
        .exclude(onedrive=DirectoryUser.OneDrive.MISSING)
        .order_by("mail", "user_principal_name")
        .only("mail", "user_principal_name", "display_name")[:TARGET_CHOICES_SHOWN]
    )


@backup_data_required(RESTORE)
@require_POST
def restore_new(request, org, configuration_code, user_graph_id):
    directory_user = get_directory_user(org, configuration_code, user_graph_id)
    selection_form = SelectionForm(request.POST, directory_user=directory_user)
    confirmed = request.POST.get("confirm") == "1"
    options = RestoreOptionsForm(
        request.POST if confirmed else None, organization=org, directory_user=directory_user
    )
    own_only = request.kodo_access.is_self_service
    if own_only:
        _to_own_onedrive_only(options)
    context = {
        "org": org,
        "directory_user": directory_user,
        "selection_form": selection_form,
        "options": options,
        "own_only": own_only,
    }
    if not selection_form.is_valid():
        return render(request, "backups/restore_new.html", context)
    selection = selection_form.cleaned_data["selection"]
    totals = _totals(directory_user, selection)
    if not totals.files and not totals.folders:
        selection_form.add_error(None, _nothing_message(directory_user, selection))
        return render(request, "backups/restore_new.html", context)
    if confirmed and options.is_valid():
        choice = {"target": directory_user, **options.cleaned_data}
        try:
            job = actions.do_start_restore(
                source_user=directory_user,
                run=selection.run,
                what=selection.what,
                paths=selection.paths,
                version_ids=selection.version_ids,
                target_user=choice["target"],
                where=choice["where"],
                folder=choice["folder"],
                conflict=choice["conflict"],
                request=request,
            )
        except RestoreRefused as refused:
            options.add_error(None, str(refused))
        else:
            messages.success(
                request,
                f"Restoring {_amount(totals)} of {directory_user} to the OneDrive of "
                f"{choice['target']}.",
                extra_tags=JOB_MESSAGE,
            )
            return redirect("backups:restore", org_code=org.code, restore_code=job.code)
    context.update(
        {
            "selection": selection,
            "totals": totals,
            "version_paths": _version_paths(selection),
            "target_choices": [] if own_only else _target_choices(org),
        }
    )
    return render(request, "backups/restore_new.html", context)


def _to_own_onedrive_only(options):
    """A self-service user restores to their own OneDrive only: a new folder or the original
    location, no other user's OneDrive (and no list of the organization's emails)."""
    del options.fields["target"]
    where = options.fields["where"]
    where.choices = [c for c in where.choices if c[0] != RestoreJob.Where.FOLDER]


def _amount(totals: Totals) -> str:
    files = f"{totals.files} file{'s' if totals.files != 1 else ''}"
    return f"{files} ({filesizeformat(totals.bytes)})"


def _nothing_message(directory_user, selection) -> str:
    if selection.what == RestoreJob.What.DELETED:
        return f"Kodo keeps no deleted items of {directory_user}: there is nothing to restore."
    return "The selection holds nothing to restore at this restore point."


def _version_paths(selection) -> list:
    """The picked versions, as shown on the form (path and backup date)."""
    if not selection.version_ids:
        return []
    return list(
        FileVersion.objects.filter(pk__in=selection.version_ids[:PATHS_SHOWN])
        .select_related("first_run")
        .order_by("path")
    )


@backup_data_required(RESTORE)
@require_safe
def restore_detail(request, org, restore_code):
    job = get_restore(org, restore_code)
    filter_form = RestoreItemFilterForm(request.GET or None)
    items = job.items.order_by("pk")
    status = filter_form.cleaned_data.get("status") if filter_form.is_valid() else ""
    if status:
        items = items.filter(status=status)
    page = Paginator(items, ITEMS_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return live_render(
        request,
        "backups/restore.html",
        "backups/restore_progress.html",
        {
            "org": org,
            "job": job,
            "page": page,
            "filter_form": filter_form,
            "query": query.urlencode(),
            "bytes_done": job.bytes_finished + job.bytes_in_flight,
            "paths_shown": job.paths[:PATHS_SHOWN],
            "paths_more": max(0, len(job.paths) - PATHS_SHOWN),
        },
        active=job.is_active,
    )


@backup_data_required(RESTORE)
@require_POST
def cancel_restore(request, org, restore_code):
    job = get_restore(org, restore_code)
    canceled = actions.do_cancel_restore(job, request=request)
    page = reverse("backups:restore", args=[org.code, job.code])
    return after_cancel(request, job, canceled, f"restore of {job.source_user}", page)


# ----- the results as CSV ----------------------------------------------------------------------

CSV_HEADER = ["path", "target path", "size", "status", "message", "restored at"]
# A cell a spreadsheet would run as a formula (CSV injection): shown as text with a quote first.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class _Echo:
    """csv.writer's file: hands each formatted row back instead of storing it."""

    def write(self, value):
        return value


def _cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _result_rows(job):
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    last_pk = 0
    while True:
        batch = list(
            RestoreItem.objects.filter(restore=job, pk__gt=last_pk)
            .order_by("pk")
            .values_list(
                "pk", "source_path", "target_path", "size", "status", "message", "finished_at"
            )[:CSV_BATCH]
        )
        if not batch:
            return
        last_pk = batch[-1][0]
        for _, source, target, size, status, message, finished_at in batch:
            restored_at = (
                finished_at.isoformat()
                if finished_at and status == RestoreItem.Status.RESTORED
                else ""
            )
            yield writer.writerow(
                [_cell(source), _cell(target), size, status, _cell(message), restored_at]
            )


@backup_data_required(RESTORE)
@require_safe
def restore_results(request, org, restore_code):
    job = get_restore(org, restore_code)
    response = StreamingHttpResponse(_result_rows(job), content_type="text/csv; charset=utf-8")
    name = f"kodo-restore-{job.created_at:%Y-%m-%d-%H%M}-{str(job.code)[:8]}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "private"
    return response
