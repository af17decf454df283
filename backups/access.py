"""Access helpers for backup objects: filtered by the (already access-checked) organization,
404 for both "missing" and "not yours"."""

from functools import wraps

from django.http import Http404
from django.shortcuts import get_object_or_404

from backups.models import BackupRun, RestoreJob
from o365.models import DirectoryUser
from organizations.access import org_member_required


def get_directory_user(org, configuration_code, graph_id) -> DirectoryUser:
    return get_object_or_404(
        DirectoryUser.objects.select_related("configuration"),
        configuration__organization=org,
        configuration__code=configuration_code,
        graph_id=str(graph_id),
    )


def get_run(org, code) -> BackupRun:
    return get_object_or_404(
        BackupRun.objects.for_organization(org).select_related("directory_user", "configuration"),
        code=code,
    )


def get_restore(org, code) -> RestoreJob:
    return get_object_or_404(
        RestoreJob.objects.filter(organization=org).select_related(
            "source_user__configuration", "target_user__configuration", "as_of_run", "requested_by"
        ),
        code=code,
    )


def backup_data_required(capability):
    """For the browse, download and restore views: administrators and restore operators reach
    every user of the organization; a self-service user only their own directory users and
    restores, and only when the organization lets users `capability` (organizations.access.
    Access). Fail-closed: for a self-service user a URL must name their own directory user
    (configuration_code + user_graph_id) or a restore they asked for (restore_code); any other
    URL answers 404, as does anything that is not theirs."""

    def decorator(view):
        @org_member_required
        @wraps(view)
        def wrapper(request, org, *args, **kwargs):
            access = request.kodo_access
            if access.is_self_service and not (
                access.may(capability) and _is_own(request.user, org, kwargs)
            ):
                raise Http404("Not one of your own backups.")
            return view(request, org, *args, **kwargs)

        return wrapper

    return decorator


def _is_own(account, org, kwargs) -> bool:
    if "user_graph_id" in kwargs and "configuration_code" in kwargs:
        return (
            own_directory_users(account, org)
            .filter(
                configuration__code=kwargs["configuration_code"],
                graph_id=str(kwargs["user_graph_id"]),
            )
            .exists()
        )
    if "restore_code" in kwargs:
        return own_restores(account, org).filter(code=kwargs["restore_code"]).exists()
    return False


def own_directory_users(account, org):
    """The directory users of `org` linked to `account` (a self-service user's own OneDrives)."""
    return DirectoryUser.objects.filter(configuration__organization=org, account=account)


def own_restores(account, org):
    """The restores a self-service user asked for, of their own backups to their own OneDrive."""
    return RestoreJob.objects.filter(
        organization=org,
        requested_by=account,
        source_user__account=account,
        target_user__account=account,
    )
