"""My backups: where a user of an organization with self-service lands. Their own OneDrives (the
directory users linked to their account) with the way into browse, deleted items and search, and
the restores they asked for with their progress.

The pages behind it are the administrators' browse, download and restore views, reached through
backups.access.backup_data_required: for a self-service user they answer only for the user's own
directory users and restores, and only what the organization allows (organizations.access.Access).
"""

from django.contrib.auth.decorators import login_required
from django.db.models import OuterRef, Subquery
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_safe

from backups.access import own_directory_users, own_restores
from backups.activity import org_zone
from backups.models import BackupRun
from backups.selection import RESTORE_POINT_STATUSES
from organizations.access import USER, Access, self_service_organizations

RESTORES_SHOWN = 20


@login_required
@require_safe
def my_backups(request):
    org = self_service_organizations(request.user).first()
    if org is None:
        raise Http404("Self-service is not on for your organization.")
    access = request.kodo_access = Access(org, USER)
    latest = BackupRun.objects.filter(
        directory_user=OuterRef("pk"), status__in=RESTORE_POINT_STATUSES
    ).order_by("-pk")
    onedrives = (
        own_directory_users(request.user, org)
        .select_related("configuration")
        .annotate(
            latest_code=Subquery(latest.values("code")[:1]),
            latest_at=Subquery(latest.values("finished_at")[:1]),
        )
        .order_by("configuration__name", "pk")
    )
    restores = (
        own_restores(request.user, org).select_related("source_user").order_by("-pk")
        if access.may_restore
        else []
    )
    return render(
        request,
        "backups/my_backups.html",
        {
            "org": org,
            "zone": org_zone(org),
            "onedrives": onedrives,
            "restores": restores[:RESTORES_SHOWN],
        },
    )
