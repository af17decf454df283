"""Access helpers for backup objects: filtered by the (already access-checked) organization,
404 for both "missing" and "not yours"."""

from django.shortcuts import get_object_or_404

from backups.models import BackupRun, RestoreJob
from o365.models import DirectoryUser


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
