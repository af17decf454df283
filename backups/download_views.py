"""Downloads from the backups: one file version (GET, resumable with Range) and a selection as a
streamed zip (POST from the browse pages).

Organization admins and restore operators (another organization's admin gets 404), and only
while the organization's policy "Administrators may download users' data" (Organization.
admins_may_download, set by the server administrator) is on: when it is off every such download
answers 403, a server administrator's included, and the data can only be restored to Microsoft
365. A self-service user downloads only their own files, and only while the organization lets
users download (Organization.users_may_download; else 404): organizations.access.Access says
which. Every download is an audit entry.
"""

from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.http import http_date, parse_http_date_safe
from django.views.decorators.http import require_POST, require_safe

from backups.access import backup_data_required, get_directory_user
from backups.downloads import (
    Unsatisfiable,
    attachment_header,
    build_zip,
    content_type,
    describe_selection,
    parse_range,
    plan_zip,
    read_version,
    record_download,
    unavailable_reason,
    zip_filename,
)
from backups.models import FileVersion
from backups.selection import NoRestorePoint, resolve_restore_point, select
from backups.storage import store_for
from organizations.access import DOWNLOAD


@backup_data_required(DOWNLOAD)
@require_safe
def download_version(request, org, configuration_code, user_graph_id, version_id):
    directory_user = get_directory_user(org, configuration_code, user_graph_id)
    if not request.kodo_access.may_download:
        return _policy_refusal(request, org, directory_user)
    version = get_object_or_404(
        FileVersion.objects.select_related("first_run"),
        pk=version_id,
        organization=org,
        drive__directory_user=directory_user,
        is_folder=False,
    )
    reason = unavailable_reason(version)
    if reason:
        return _problem(
            request,
            org,
            directory_user,
            status=409,
            title="This version cannot be downloaded",
            message=f"{version.path}: {reason}.",
        )
    size = version.size
    etag = f'"{version.quickxorhash or f"kodo-{version.pk}"}"'
    modified = version.modified_datetime or version.first_run.finished_at
    range_header = request.headers.get("Range")
    if not _if_range_holds(request.headers.get("If-Range"), etag, modified):
        range_header = None
    try:
        wanted = parse_range(range_header, size)
    except Unsatisfiable:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response

    start, stop = (0, size) if wanted is None else (wanted.start, wanted.stop)
    headers = {
        "Content-Length": str(stop - start),
        "Content-Disposition": attachment_header(version.name),
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "Cache-Control": "private",
    }
    if modified is not None:
        headers["Last-Modified"] = http_date(modified.timestamp())
    if wanted is not None:
        headers["Content-Range"] = wanted.content_range(size)
    status = 200 if wanted is None else 206
    if request.method == "HEAD":
        return HttpResponse(status=status, headers=headers, content_type=content_type(version))
    body = read_version(version, store_for(org), start=start, stop=stop)
    response = StreamingHttpResponse(
        body, status=status, headers=headers, content_type=content_type(version)
    )
    part = "" if wanted is None else f" (bytes {start}-{stop - 1} of {size})"
    record_download(
        organization=org,
        directory_user=directory_user,
        what=version.path + part,
        as_of=version.first_run.finished_at,
        size=stop - start,
        request=request,
        action="download_file",
    )
    return response


def _if_range_holds(if_range: str | None, etag: str, modified) -> bool:
    """Whether a Range may be honoured (RFC 9110 13.1.5): no If-Range, or one naming this very
    content (the same strong ETag, or exactly its Last-Modified date). Otherwise the file
    changed since the client's first part, and it gets the whole file."""
    if not if_range:
        return True
    if_range = if_range.strip()
    if if_range.startswith(('"', "W/")):
        return if_range == etag
    moment = parse_http_date_safe(if_range)
    return moment is not None and modified is not None and moment == int(modified.timestamp())


@backup_data_required(DOWNLOAD)
@require_POST
def download_zip(request, org, configuration_code, user_graph_id):
    directory_user = get_directory_user(org, configuration_code, user_graph_id)
    if not request.kodo_access.may_download:
        return _policy_refusal(request, org, directory_user)
    paths = [path for path in request.POST.getlist("path") if path.strip()]
    try:
        version_ids = [int(value) for value in request.POST.getlist("version")]
    except ValueError:
        return _problem(
            request,
            org,
            directory_user,
            status=400,
            title="Bad selection",
            message="The selection names a version that is not a number. Select again.",
        )
    whole_drive = request.POST.get("whole_drive") == "1"
    deleted_only = request.POST.get("deleted_only") == "1"
    if not (paths or version_ids or whole_drive or deleted_only):
        return _problem(
            request,
            org,
            directory_user,
            status=400,
            title="Nothing selected",
            message="Tick the files and folders to download, then press DOWNLOAD.",
        )
    try:
        run = resolve_restore_point(directory_user, request.POST.get("at"))
    except NoRestorePoint as error:
        return _problem(
            request, org, directory_user, status=400, title="No such backup", message=str(error)
        )
    plan = plan_zip(
        select(
            directory_user,
            run,
            paths=paths,
            version_ids=version_ids,
            whole_drive=whole_drive,
            deleted_only=deleted_only,
        )
    )
    if not plan.members and not plan.left_out:
        return _problem(
            request,
            org,
            directory_user,
            status=404,
            title="Nothing to download",
            message="The backup holds none of the selected files and folders.",
        )
    stream = build_zip(plan, store_for(org), time_zone=org.time_zone)
    response = StreamingHttpResponse(stream, content_type="application/zip")
    response["Content-Length"] = str(len(stream))
    response["Content-Disposition"] = attachment_header(
        zip_filename(directory_user, run.finished_at, org.time_zone)
    )
    response["Cache-Control"] = "private"
    what = describe_selection(
        paths=paths, version_ids=version_ids, whole_drive=whole_drive, deleted_only=deleted_only
    )
    record_download(
        organization=org,
        directory_user=directory_user,
        what=f"{what} (as a zip)",
        as_of=run.finished_at,
        size=plan.bytes,
        files=plan.files,
        request=request,
        action="download_zip",
    )
    return response


def _policy_refusal(request, org, directory_user):
    return _problem(
        request,
        org,
        directory_user,
        status=403,
        title="Downloads are not allowed",
        message=(
            f"Your server administrator does not allow administrators of {org.name} to "
            "download users' data; you can restore it to Microsoft 365."
        ),
    )


def _problem(request, org, directory_user, *, status, title, message):
    back = reverse(
        "backups:browse",
        args=[org.code, directory_user.configuration.code, directory_user.graph_id],
    )
    return render(
        request,
        "backups/download_problem.html",
        {
            "org": org,
            "directory_user": directory_user,
            "title": title,
            "message": message,
            "back_url": back,
        },
        status=status,
    )
