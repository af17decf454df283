"""Backup rows without a simulator, for page tests."""

import uuid

from django.utils import timezone

from backups.models import BackupRun
from o365.models import DirectoryUser
from tests.o365.factories import make_service


def make_users(organization, count, service=None):
    service = service or make_service(organization, name=f"Tenant {uuid.uuid4().hex[:6]}")
    return [DirectoryUser.objects.create(
        service=service, graph_id=str(uuid.uuid4()), user_principal_name=f"u{i}@alpha.example",
        display_name=f"User {i}") for i in range(count)]


def make_finished_run(user, **fields):
    fields.setdefault("status", BackupRun.Status.SUCCEEDED)
    return BackupRun.objects.create(
        organization_id=user.service.organization_id, service=user.service, directory_user=user,
        started_at=timezone.now(), finished_at=timezone.now(), **fields)
