"""Access helpers for backup objects: filtered by the (already access-checked) organization,
404 for both "missing" and "not yours"."""

from django.shortcuts import get_object_or_404

from backups.models import BackupRun
from o365.models import DirectoryUser


def get_directory_user(org, service_code, graph_id) -> DirectoryUser:
    return get_object_or_404(
        DirectoryUser.objects.select_related("service"),
        service__organization=org,
        service__code=service_code,
        graph_id=str(graph_id),
    )


def get_run(org, code) -> BackupRun:
    return get_object_or_404(
        BackupRun.objects.for_organization(org).select_related("directory_user", "service"),
        code=code,
    )
