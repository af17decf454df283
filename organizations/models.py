import uuid
import zoneinfo

from django.conf import settings
from django.db import models
from django.db.models import Q


def time_zone_choices():
    return [(name, name) for name in sorted(zoneinfo.available_timezones())]


class OrganizationQuerySet(models.QuerySet):
    def visible_to(self, user):
        """The organizations a user may see: all for a server administrator, else where admin."""
        if not user.is_authenticated:
            return self.none()
        if user.is_superuser:
            return self
        return self.filter(
            memberships__user=user, memberships__role=Membership.Role.ADMIN
        ).distinct()


class Organization(models.Model):
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200, unique=True)
    time_zone = models.CharField(max_length=64, default="UTC")
    services_enabled = models.BooleanField(
        default=False, help_text="Show Services (Microsoft 365 backup) to this organization."
    )
    admins_may_download = models.BooleanField(
        default=True,
        db_default=True,
        help_text="Administrators may download users' data. When off, they can only restore "
        "it to Microsoft 365.",
    )
    # Self-service (My backups): the server administrator turns it on for an organization; the
    # organization's admins then choose what its users may do with their own backups.
    self_service_enabled = models.BooleanField(
        default=False,
        db_default=False,
        help_text="Let this organization's users reach their own backups (My backups).",
    )
    users_may_browse = models.BooleanField(
        default=True,
        db_default=True,
        help_text="Users may browse their own OneDrive as of any backup.",
    )
    users_may_download = models.BooleanField(
        default=False,
        db_default=False,
        help_text="Users may download their own files.",
    )
    users_may_restore = models.BooleanField(
        default=False,
        db_default=False,
        help_text="Users may restore their own files to their own OneDrive.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def admins(self):
        return self.memberships.filter(role=Membership.Role.ADMIN).select_related("user")


class Membership(models.Model):
    class Role(models.TextChoices):
        ADMIN = "admin", "Administrator"
        OPERATOR = "operator", "Restore operator"
        USER = "user", "User"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.USER)
    created_at = models.DateTimeField(auto_now_add=True)
    # When the last invitation email to this account was sent (organizations/invitations.py).
    invited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="one_membership_per_org"),
        ]

    def __str__(self):
        return f"{self.user} in {self.organization} ({self.role})"


class MicrosoftIdentity(models.Model):
    """A Kodo account's Microsoft 365 identity for "Sign in with Microsoft": matched by tenant id
    and object id, never by email. Administrators get one only by confirming it while signed in;
    users are matched through the directory (o365.DirectoryUser) their import linked."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="microsoft_identities"
    )
    tenant_id = models.UUIDField()
    object_id = models.UUIDField()
    username = models.CharField(max_length=320, blank=True)
    confirmed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant_id", "object_id"], name="one_account_per_microsoft_identity"
            ),
        ]

    def __str__(self):
        return f"{self.username or self.object_id} ({self.tenant_id}) -> {self.user}"


class AuditEventQuerySet(models.QuerySet):
    def visible_to(self, user):
        if user.is_superuser:
            return self
        return self.filter(organization__in=Organization.objects.visible_to(user))

    def search(self, keyword="", since=None, until=None):
        events = self
        if keyword:
            from organizations.audit import actions_labelled  # local: audit imports this module

            events = events.filter(
                Q(action__icontains=keyword)
                | Q(action__in=actions_labelled(keyword))
                | Q(message__icontains=keyword)
                | Q(actor_email__icontains=keyword)
                | Q(ip_address__icontains=keyword)
                | Q(organization__name__icontains=keyword)
            )
        if since:
            events = events.filter(created_at__gte=since)
        if until:
            events = events.filter(created_at__lt=until)
        return events


class AuditEvent(models.Model):
    """Who did what, when, in which organization, from where. Rows are never edited."""

    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept as text too, so the entry still says who it was after the account is gone.
    actor_email = models.CharField(max_length=254, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    message = models.CharField(max_length=500)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "-created_at"])]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action} {self.actor_email}"
