"""The browse pages: a user's OneDrive as of a restore point, one item's versions, deleted
items, and search (one user's backups or the whole organization). Queries are in
backups/browse.py; the DOWNLOAD and RESTORE buttons post to the download and restore views."""

from django.contrib import messages
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from backups import browse as queries
from backups.access import backup_data_required, get_directory_user
from backups.activity import org_zone
from backups.browse_forms import RestorePointDayForm, SearchForm
from backups.selection import NoRestorePoint, restore_points
from organizations.access import BROWSE, org_restorer_required


@backup_data_required(BROWSE)
def browse(request, org, configuration_code, user_graph_id):
    directory_user = get_directory_user(org, configuration_code, user_graph_id)
    zone = org_zone(org)
    context = {"org": org, "directory_user": directory_user, "zone": zone}
    run = _chosen_restore_point(request, directory_user, zone)
    path = queries.clean_path(request.GET.get("path"))
    if run is None:
        return render(request, "backups/browse.html", context)
    context.update(
        run=run,
        timeline=queries.timeline(directory_user, run),
        day_form=RestorePointDayForm(
            initial={"day": run.finished_at and timezone.localtime(run.finished_at, zone).date()}
        ),
    )
    if path is None:
        path = queries.ROOT
        messages.warning(request, "That folder path is not valid; showing the top of the OneDrive.")
    try:
        folder = queries.folder_page(run, path, request.GET.get("page"))
    except queries.FolderNotFound:
        context.update(path=path, crumbs=queries.breadcrumb(path), missing=True)
        return render(request, "backups/browse.html", context)
    links = VersionLinks(org, directory_user)
    for item in folder.page:
        links.add_to(item)
        if item.is_folder:
            item.open_url = "?" + urlencode({"at": run.code, "path": item.path})
    context.update(
        path=folder.path,
        crumbs=folder.crumbs,
        page=folder.page,
        query=urlencode({"at": run.code, "path": folder.path}),
    )
    return render(request, "backups/browse.html", context)


class VersionLinks:
    """The links of a version row (its versions, its download), reversed once per page: a
    reverse() per row and link was most of the time of a 200-row page."""

    def __init__(self, org, directory_user):
        args = [org.code, directory_user.configuration.code, directory_user.graph_id, 0]
        # The version id is the URL's last argument: "/0/" is its place (UUIDs hold no "/0/").
        self.versions = reverse("backups:file-versions", args=args).rsplit("/0/", 1)
        self.download = reverse("backups:download-version", args=args).rsplit("/0/", 1)

    def add_to(self, version):
        version.versions_url = f"{self.versions[0]}/{version.pk}/{self.versions[1]}"
        version.download_url = f"{self.download[0]}/{version.pk}/{self.download[1]}"


def _with_links(page, org, directory_user):
    links = VersionLinks(org, directory_user)
    for version in page:
        links.add_to(version)
    return page


def _chosen_restore_point(request, directory_user, zone):
    """The restore point the query asks for (`day`, else `at`), else the latest; None when the
    user has none. A bad request says why and shows the latest."""
    if "day" in request.GET:
        form = RestorePointDayForm(request.GET)
        if form.is_valid():
            return queries.restore_point_on_or_before(
                directory_user, form.cleaned_data["day"], zone
            )
        messages.warning(request, "Choose a day to see the backup of that day.")
    else:
        try:
            return queries.restore_point_for(directory_user, request.GET.get("at"))
        except NoRestorePoint as error:
            if request.GET.get("at"):
                messages.warning(request, f"{error} Showing the latest backup.")
    return restore_points(directory_user).first()


@backup_data_required(BROWSE)
def file_versions(request, org, configuration_code, user_graph_id, version_id):
    directory_user = get_directory_user(org, configuration_code, user_graph_id)
    version = queries.version_of_user(org, directory_user, version_id)
    return render(
        request,
        "backups/versions.html",
        {
            "org": org,
            "directory_user": directory_user,
            "zone": org_zone(org),
            "item": version,
            "folder": queries.parent_path(version.path),
            "page": _with_links(
                queries.versions_page(version, request.GET.get("page")), org, directory_user
            ),
            "latest": restore_points(directory_user).first(),
        },
    )


@backup_data_required(BROWSE)
def deleted_items(request, org, configuration_code, user_graph_id):
    directory_user = get_directory_user(org, configuration_code, user_graph_id)
    return render(
        request,
        "backups/deleted.html",
        {
            "org": org,
            "directory_user": directory_user,
            "zone": org_zone(org),
            "page": _with_links(
                queries.deleted_page(directory_user, request.GET.get("page")), org, directory_user
            ),
            "latest": restore_points(directory_user).first(),
        },
    )


@backup_data_required(BROWSE)
def user_search(request, org, configuration_code, user_graph_id):
    directory_user = get_directory_user(org, configuration_code, user_graph_id)
    return _search(request, org, directory_user)


@org_restorer_required
def search(request, org):
    return _search(request, org, None)


def _search(request, org, directory_user):
    zone = org_zone(org)
    form = SearchForm(request.GET or None)
    page = None
    if form.is_bound and form.is_valid():
        filters = form.filters(zone)
        if filters.asks_something():
            page = queries.search_page(
                org, filters, directory_user=directory_user, page_number=request.GET.get("page")
            )
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "backups/search.html",
        {
            "org": org,
            "directory_user": directory_user,
            "zone": zone,
            "form": form,
            "page": page,
            "query": query.urlencode(),
        },
    )
