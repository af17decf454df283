"""Access helpers: the one way views reach an organization, and the one place that says who may
do what in it.

Each helper filters by what the user may see and raises Http404 for both "missing" and "not
yours", so an outsider learns nothing about other organizations.

Who may do what (`Access`):

- an *administrator* of the organization (or the server administrator): everything;
- a *restore operator* (Membership.Role.OPERATOR): the Backups page and its runs, Backup now,
  Tasks, and browse, download (only while the organization's administrators may download) and
  restore for every user of the organization. Nothing else: configurations, schedules, Services,
  user imports, the organization's settings, the Dashboard and the audit log answer 404;
- a *user* (Membership.Role.USER) of an organization with self-service on: only their own
  backups (the directory users linked to their account), and only what the organization's
  `users_may_browse` / `users_may_download` / `users_may_restore` allow. The scoping to their
  own directory users is backups.access.backup_data_required's (organizations sits below o365).
"""

from dataclasses import dataclass
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.db.models import OuterRef, Subquery
from django.http import Http404
from django.shortcuts import get_object_or_404

from organizations.models import Membership, Organization

ADMIN = Membership.Role.ADMIN
OPERATOR = Membership.Role.OPERATOR
USER = Membership.Role.USER

BROWSE, DOWNLOAD, RESTORE = "browse", "download", "restore"


@dataclass(frozen=True)
class Access:
    """What one signed-in person may do in one organization (`role` is their membership's; the
    server administrator counts as an administrator)."""

    organization: Organization
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN

    @property
    def is_operator(self) -> bool:
        return self.role == OPERATOR

    @property
    def is_self_service(self) -> bool:
        """A user reaching their own backups (never someone else's)."""
        return self.role == USER

    @property
    def may_browse(self) -> bool:
        if self.is_self_service:
            return self.organization.users_may_browse
        return True

    @property
    def may_download(self) -> bool:
        if self.is_self_service:
            return self.organization.users_may_download
        return self.organization.admins_may_download

    @property
    def may_restore(self) -> bool:
        if self.is_self_service:
            return self.organization.users_may_restore
        return True

    def may(self, capability: str) -> bool:
        return {BROWSE: self.may_browse, DOWNLOAD: self.may_download, RESTORE: self.may_restore}[
            capability
        ]


def effective_role(user, org, membership_role: str | None) -> str | None:
    """The user's role in `org` as far as Kodo lets them act on it; None: no access at all (a
    user whose organization has not turned self-service on has none)."""
    if user.is_superuser:
        return ADMIN
    if membership_role == USER and not org.self_service_enabled:
        return None
    return membership_role


def get_organization_for_user(request, code) -> Organization:
    return get_object_or_404(Organization.objects.visible_to(request.user), code=code)


def get_access(request, code, roles) -> Access:
    """The organization of the URL and the person's Access to it, if their role is one of
    `roles`; else 404."""
    user = request.user
    # One query: the organization with the person's membership role.
    roles_here = Membership.objects.filter(organization=OuterRef("pk"), user=user.pk)
    org = get_object_or_404(
        Organization.objects.annotate(member_role=Subquery(roles_here.values("role")[:1])),
        code=code,
    )
    role = effective_role(user, org, org.member_role)
    if role is None or role not in roles:
        raise Http404("No such organization.")
    return Access(org, role)


def _resolving(roles):
    def decorator(view):
        @login_required
        @wraps(view)
        def wrapper(request, org_code, *args, **kwargs):
            access = get_access(request, org_code, roles)
            request.organization = access.organization
            request.kodo_access = access
            return view(request, access.organization, *args, **kwargs)

        return wrapper

    return decorator


def org_admin_required(view):
    """Resolve the `org_code` URL argument into `org` (or 404) for an organization admin."""
    return _resolving({ADMIN})(view)


def org_restorer_required(view):
    """Like org_admin_required, also for restore operators (the Backups pages, Tasks)."""
    return _resolving({ADMIN, OPERATOR})(view)


def org_member_required(view):
    """Administrators, restore operators and self-service users. Only for views whose data is
    scoped further (backups.access.backup_data_required): never use it alone."""
    return _resolving({ADMIN, OPERATOR, USER})(view)


def services_required(view):
    """Like org_admin_required, for the Services pages: absent unless enabled for the org."""

    @org_admin_required
    @wraps(view)
    def wrapper(request, org, *args, **kwargs):
        if not org.services_enabled:
            raise Http404("Services are not enabled for this organization.")
        return view(request, org, *args, **kwargs)

    return wrapper


def server_admin_required(view):
    """Pages of the server administrator (a Django superuser); everyone else gets 404."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_superuser:
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


def self_service_organizations(user):
    """The organizations where `user` is a user with self-service on (their My backups)."""
    if not user.is_authenticated:
        return Organization.objects.none()
    return Organization.objects.filter(
        self_service_enabled=True, memberships__user=user, memberships__role=USER
    )
