import datetime as dt
import uuid
from dataclasses import replace
from typing import ClassVar

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.functional import cached_property

from kodo import crypto, jobs
from kodo.jobs import Job, JobQuerySet
from o365 import clouds
from o365.connection import graph_client_for
from o365.validators import certificate_status
from organizations.models import Organization


class CloudQuerySet(models.QuerySet["Cloud"]):
    def enabled_for(self, organization):
        """The clouds an organization's admins may choose: those for every organization, and
        those the server administrator enabled for this one."""
        Cloud.objects.ensure_builtins()
        return self.filter(
            models.Q(all_organizations=True) | models.Q(accesses__organization=organization)
        ).distinct()


CloudManagerBase = models.Manager.from_queryset(CloudQuerySet)


class CloudManager(CloudManagerBase["Cloud"]):
    def builtin(self, key: str) -> "Cloud":
        """The row of a built-in cloud, created when missing (the endpoints are in code)."""
        cloud, _ = self.get_or_create(
            key=key, defaults={"name": clouds.BUILTIN_NAMES[key], "all_organizations": True}
        )
        return cloud

    def ensure_builtins(self):
        if self.filter(key__in=clouds.BUILTIN_NAMES).count() < len(clouds.BUILTIN_NAMES):
            for key in clouds.BUILTIN_NAMES:
                self.builtin(key)

    def named(self, name: str):
        """The cloud KodoADSettings.json's `Cloud` names (Global, USGovernment, China, or a custom
        cloud's name), or None."""
        wanted = " ".join((name or "").split()).lower()
        key = clouds.JSON_NAMES.get(wanted.replace(" ", ""))
        if key:
            return self.builtin(key)
        return self.filter(name__iexact=wanted).first() if wanted else None


def default_cloud_id():
    return Cloud.objects.builtin(clouds.GLOBAL).pk


class Cloud(models.Model):
    """A Microsoft cloud configurations sign in to. Global, US Government and China are built in
    (their endpoints live in o365.clouds); the server administrator defines custom ones (m365sim,
    a sovereign cloud) and chooses which organizations may use each."""

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    key = models.SlugField(
        max_length=60, unique=True, help_text="global, usgov, china for the built-in clouds."
    )
    name = models.CharField(max_length=100, unique=True)
    authority_host = models.CharField("Sign-in (authority) host", max_length=200, blank=True)
    graph_base_url = models.CharField("Graph base URL", max_length=200, blank=True)
    download_hosts = models.TextField("Download hosts allowed", blank=True)
    ca_certificate_pem = models.TextField("CA certificate", blank=True)
    private_network_allowed = models.BooleanField(default=False)
    all_organizations = models.BooleanField("Enabled for every organization", default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CloudManager()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return self.name

    @property
    def builtin(self) -> bool:
        return self.key in clouds.CLOUDS

    def endpoints(self) -> clouds.Endpoints:
        if self.builtin:
            return clouds.CLOUDS[self.key]
        try:
            return clouds.custom_endpoints(
                self.authority_host,
                self.graph_base_url,
                self.ca_certificate_pem or None,
                download_hosts=self.download_hosts,
                private_network=self.private_network_allowed,
                name=self.name,
            )
        except ValueError as error:  # a row from before the checks (the 0002 migration)
            return clouds.Endpoints(
                authority_host=self.authority_host,
                graph_base=self.graph_base_url,
                name=self.name,
                refusal=f"The cloud {self.name} is not set up correctly ({error}) "
                "Ask the server administrator to correct it.",
            )

    def is_enabled_for(self, organization) -> bool:
        return self.all_organizations or self.accesses.filter(organization=organization).exists()

    def endpoints_for(self, organization) -> clouds.Endpoints:
        """The endpoints a configuration of `organization` may use: none at all (every
        connection refused, with this reason) once the cloud is no longer enabled for it."""
        endpoints = self.endpoints()
        if not self.is_enabled_for(organization):
            return replace(
                endpoints,
                refusal=(
                    f"The cloud {self.name} is no longer enabled for this organization. Edit the "
                    "configuration and choose another cloud, or ask the server administrator."
                ),
            )
        return endpoints


class CloudAccess(models.Model):
    """A cloud enabled for one organization; at most one is that organization's default (the
    configuration form preselects it)."""

    cloud = models.ForeignKey(Cloud, on_delete=models.CASCADE, related_name="accesses")
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="cloud_accesses"
    )
    is_default = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["cloud", "organization"], name="one_access_per_cloud"),
            models.UniqueConstraint(
                fields=["organization"],
                condition=models.Q(is_default=True),
                name="one_default_cloud_per_organization",
            ),
        ]

    def __str__(self):
        return f"{self.cloud} for {self.organization}" + (" (default)" if self.is_default else "")


def default_cloud_for(organization) -> Cloud:
    """The cloud the configuration form preselects: the organization's default if still
    enabled, else Global if enabled, else the first enabled one (None if none)."""
    access = (
        CloudAccess.objects.filter(organization=organization, is_default=True)
        .select_related("cloud")
        .first()
    )
    enabled = Cloud.objects.enabled_for(organization)
    if access is not None and enabled.filter(pk=access.cloud_id).exists():
        return access.cloud
    return enabled.filter(key=clouds.GLOBAL).first() or enabled.order_by("created_at").first()


class ConfigurationQuerySet(models.QuerySet):
    def for_organization(self, organization):
        return self.filter(organization=organization)


class Configuration(models.Model):
    """An Office 365 configuration: one Microsoft 365 tenant's app registration.

    Secrets are stored only encrypted (kodo.crypto) and leave this model only as graph
    Credentials, built at the moment of use."""

    class Cloud:
        """Keys of the built-in clouds (Cloud.key)."""

        GLOBAL = clouds.GLOBAL
        US_GOVERNMENT = clouds.US_GOVERNMENT
        CHINA = clouds.CHINA

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="configurations"
    )
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200)
    tenant_id = models.UUIDField("Tenant ID")
    client_id = models.UUIDField("Client ID")
    cloud = models.ForeignKey(
        "o365.Cloud",
        on_delete=models.PROTECT,
        related_name="configurations",
        default=default_cloud_id,
    )

    client_secret_encrypted = models.BinaryField(default=b"", editable=False)
    certificate_password_encrypted = models.BinaryField(default=b"", editable=False)
    certificate_pfx_encrypted = models.BinaryField(default=b"", editable=False)
    certificate_thumbprint = models.CharField(max_length=40, blank=True)
    certificate_subject = models.CharField(max_length=200, blank=True)
    certificate_not_after = models.DateTimeField(null=True, blank=True)

    last_test_at = models.DateTimeField(null=True, blank=True)
    last_test_ok = models.BooleanField(null=True)
    last_test_message = models.TextField(blank=True)
    last_test_missing = models.JSONField(default=list, blank=True)
    last_test_roles = models.JSONField(default=list, blank=True)

    users_delta_link = models.TextField(blank=True, editable=False)
    users_synced_at = models.DateTimeField(null=True, blank=True)
    auto_sync_enabled = models.BooleanField("Automatically synchronize accounts", default=False)
    auto_sync_time = models.TimeField("Daily at", null=True, blank=True)
    auto_sync_time_zone = models.CharField("Time zone", max_length=64, default="UTC")

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ConfigurationQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = "Office 365 configuration"
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"], name="configuration_name_per_org"
            ),
        ]

    def __str__(self):
        return self.name

    # Secrets: write-only from the outside.
    def set_client_secret(self, value: str):
        self.client_secret_encrypted = crypto.encrypt_text(value) if value else b""

    def set_certificate(self, certificate, password: str):
        if certificate is None:
            self.certificate_pfx_encrypted = b""
            self.certificate_password_encrypted = b""
            self.certificate_thumbprint = self.certificate_subject = ""
            self.certificate_not_after = None
            return
        self.certificate_pfx_encrypted = crypto.encrypt(certificate.pfx)
        self.certificate_password_encrypted = crypto.encrypt_text(password) if password else b""
        self.certificate_thumbprint = certificate.thumbprint
        self.certificate_subject = certificate.subject
        self.certificate_not_after = certificate.not_after

    @property
    def has_client_secret(self) -> bool:
        return bool(self.client_secret_encrypted)

    @property
    def has_certificate(self) -> bool:
        return bool(self.certificate_pfx_encrypted)

    def certificate_status(self) -> str:
        return certificate_status(self.certificate_not_after) if self.has_certificate else ""

    def credential_kind(self) -> str:
        return "certificate" if self.has_certificate else "client secret"

    def secret_fields(self):
        return (
            "client_secret_encrypted",
            "certificate_password_encrypted",
            "certificate_pfx_encrypted",
        )

    def graph_client(self, **options):
        """A Graph client for this tenant; tokens are cached per configuration and credentials."""
        return graph_client_for(self, **options)

    def record_test(self, *, ok: bool, message: str, missing=(), roles=()):
        self.last_test_at = timezone.now()
        self.last_test_ok = ok
        self.last_test_message = message[:2000]
        self.last_test_missing = list(missing)
        self.last_test_roles = sorted(roles)
        self.save(
            update_fields=[
                "last_test_at",
                "last_test_ok",
                "last_test_message",
                "last_test_missing",
                "last_test_roles",
            ]
        )


class DirectoryUserQuerySet(models.QuerySet["DirectoryUser"]):
    def may_have_onedrive(self, now=None):
        """Users not known to lack a OneDrive. A user found without one is asked again once
        that answer is older than KODO_ONEDRIVE_RECHECK_HOURS: a OneDrive is often provisioned
        days after the user was imported, and nothing else would ever look again."""
        recheck_before = (now or timezone.now()) - dt.timedelta(
            hours=settings.KODO_ONEDRIVE_RECHECK_HOURS
        )
        return self.filter(
            ~models.Q(onedrive=DirectoryUser.OneDrive.MISSING)
            | models.Q(onedrive_checked_at__isnull=True)
            | models.Q(onedrive_checked_at__lte=recheck_before)
        )


class DirectoryUser(models.Model):
    """Kodo's mirror of one Microsoft 365 user of a configuration's tenant.

    Filled by IMPORT USERS / SYNCHRONIZE USERS; linked to the Kodo account with the same email.
    A user removed from Microsoft 365 keeps its row (and its backups), marked removed."""

    class OneDrive(models.TextChoices):
        UNKNOWN = "unknown", "Not checked yet"
        PROVISIONED = "yes", "Has OneDrive"
        MISSING = "no", "No OneDrive"

    configuration = models.ForeignKey(
        Configuration, on_delete=models.CASCADE, related_name="directory_users"
    )
    graph_id = models.CharField(max_length=64)
    user_principal_name = models.CharField(max_length=320)
    mail = models.CharField(max_length=320, blank=True)
    display_name = models.CharField(max_length=256, blank=True)
    account_enabled = models.BooleanField(default=True)
    licensed = models.BooleanField(default=False)
    is_guest = models.BooleanField(default=False)
    onedrive = models.CharField(max_length=8, choices=OneDrive.choices, default=OneDrive.UNKNOWN)
    # When the answer in `onedrive` was found (an import's check, a backup asking for the drive):
    # backups ask again about a missing OneDrive once this is KODO_ONEDRIVE_RECHECK_HOURS old.
    onedrive_checked_at = models.DateTimeField(null=True, blank=True)
    drive_id = models.CharField(max_length=200, blank=True)
    removed_at = models.DateTimeField(null=True, blank=True)
    removed_permanently = models.BooleanField(default=False)
    # Whether a backup of the user completed (succeeded or partially): the user is *protected*.
    # Kept by database triggers on the backup runs (backups migration 0011_run_tallies), so that
    # counting protected users reads an index, not a probe of the runs per user.
    backed_up = models.BooleanField(default=False, editable=False)
    account = models.ForeignKey(
        "auth.User",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="directory_users",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects: ClassVar = DirectoryUserQuerySet.as_manager()

    class Meta:
        ordering = ["display_name", "user_principal_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["configuration", "graph_id"], name="one_row_per_graph_user"
            ),
        ]
        indexes = [
            models.Index(fields=["configuration", "mail"]),
            # The Users tab and the Backups page: a configuration's users in their order; the
            # tab's search reads this index, not the table (PostgreSQL: trigram indexes too,
            # migration 0007).
            models.Index(
                fields=[
                    "configuration",
                    "display_name",
                    "user_principal_name",
                    "mail",
                    "removed_at",
                    "id",  # PostgreSQL: a page of ids from the index alone
                ],
                name="users_listed",
            ),
            # The Dashboard's and the overview's users and protected users, from the index alone.
            models.Index(
                fields=["configuration", "backed_up", "removed_at"], name="users_protected"
            ),
        ]

    def __str__(self):
        return self.display_name or self.user_principal_name

    def save(self, *args, **kwargs):
        """Never write `backed_up` back: the triggers own it, and this copy may be stale."""
        if self.pk is not None and not self._state.adding and kwargs.get("update_fields") is None:
            kwargs["update_fields"] = [
                f.name
                for f in self._meta.concrete_fields
                if not f.primary_key and f.name != "backed_up"
            ]
        super().save(*args, **kwargs)

    @property
    def email(self) -> str:
        """The address Kodo matches accounts by: mail, else the user principal name."""
        return (self.mail or self.user_principal_name).lower()

    def skip_reason(
        self, *, chosen=None, include_disabled=False, include_unlicensed=False, include_guests=False
    ) -> str | None:
        """Why an import leaves this user out (None: it is imported). `chosen`: the graph ids
        the import is limited to (None: every user)."""
        if self.removed_at:
            return "removed from Microsoft 365"
        if chosen is not None and self.graph_id not in chosen:
            return "not chosen"
        if not self.account_enabled and not include_disabled:
            return "disabled"
        if not self.licensed and not include_unlicensed:
            return "unlicensed"
        if self.is_guest and not include_guests:
            return "guest"
        return None


class DirectoryJobQuerySet(JobQuerySet):
    pass


class DirectoryJob(Job):
    """One IMPORT USERS or SYNCHRONIZE USERS. The row is the truth; a Celery task runs it
    (kodo.jobs: claim, beat, finish, recovery)."""

    # Its page (`link`) is under Services: administrators only, never a restore operator.
    link_is_for_admins_only = True

    class Kind(models.TextChoices):
        IMPORT = "import", "Import users"
        SYNC = "sync", "Synchronize users"

    ACTIVE = jobs.ACTIVE_STATUSES
    position = 20
    noun = "job"
    gave_up_hint = "Start it again; users already imported stay imported."
    # A takeover reads the directory again: these are counted again from zero (accounts created
    # or linked, and users found removed, are done and not counted twice).
    RECOUNTED = ("pages_read", "users_seen", "skipped", "conflicts", "errors")

    configuration = models.ForeignKey(
        Configuration, on_delete=models.CASCADE, related_name="directory_jobs"
    )
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    requested_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Which users to import: {"graph_ids": [...] or absent for all, "include_disabled": bool,
    # "include_unlicensed": bool, "include_guests": bool}
    options = models.JSONField(default=dict, blank=True)

    pages_read = models.PositiveIntegerField(default=0)
    users_seen = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    linked = models.PositiveIntegerField(default=0)
    removed = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    conflicts = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    conflict_details = models.JSONField(default=list, blank=True)
    full_read = models.BooleanField(default=False)

    objects: ClassVar = DirectoryJobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["configuration"],
                condition=models.Q(status__in=["queued", "running"]),
                name="one_active_directory_job_per_configuration",
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} ({self.get_status_display()})"

    def takeover_fields(self) -> dict:
        return {**{name: 0 for name in self.RECOUNTED}, "conflict_details": []}

    @classmethod
    def job_task(cls):
        from o365.tasks import run_directory_job  # local: o365.tasks imports this module

        return run_directory_job

    # -- the Tasks page ------------------------------------------------------------------------
    @property
    def kind_label(self) -> str:
        return self.get_kind_display()

    @property
    def subject(self) -> str:
        return self.configuration.name

    @property
    def requester(self) -> str:
        return self.requested_by.email if self.requested_by else self.trigger.capitalize()

    @property
    def link(self) -> str:
        organization = self.configuration.organization
        if not organization.services_enabled:
            return ""
        return reverse(
            "o365:directory-job", args=[organization.code, self.configuration.code, self.code]
        )

    @property
    def progress_text(self) -> str:
        return f"{self.users_seen} users read"

    @property
    def changed_nothing(self) -> bool:
        """A finished job that changed no account and no user, and met no problem: its counts
        are all zeros, which read as "nothing was done" rather than "nothing had changed"."""
        return self.status == self.Status.SUCCEEDED and not any(
            (self.created, self.updated, self.linked, self.removed, self.conflicts, self.errors)
        )

    @cached_property
    def previous_finished_at(self) -> dt.datetime | None:
        """When the configuration's last earlier import or synchronization succeeded: what "no
        changes" is counted from. The Tasks page annotates it (load_for_tasks) for a
        whole page at once; the job page asks here."""
        return (
            DirectoryJob.objects.filter(
                configuration_id=self.configuration_id,
                status=self.Status.SUCCEEDED,
                created_at__lt=self.created_at,
            )
            .order_by("-finished_at")
            .values_list("finished_at", flat=True)
            .first()
        )

    @property
    def no_changes_text(self) -> str:
        """ "No changes since 2026-12-03 08:15" (in the active time zone), or "" when the job
        changed something."""
        if not self.changed_nothing:
            return ""
        since = self.previous_finished_at
        if since is None:
            return "No changes"
        return f"No changes since {date_format(timezone.localtime(since), 'Y-m-d H:i')}"

    @property
    def summary(self) -> str:
        return self.no_changes_text or (
            f"{self.users_seen} users: {self.created} created, {self.updated} updated, "
            f"{self.removed} removed"
        )

    @property
    def problem_badge(self) -> str:
        return f"{self.errors} errors" if self.errors else ""

    @classmethod
    def task_types(cls):
        return [
            ("import", "Import users", {"kind": cls.Kind.IMPORT}),
            ("synchronize", "Synchronize users", {"kind": cls.Kind.SYNC}),
        ]

    @classmethod
    def tasks_of(cls, organization, *, user=""):
        jobs_ = cls.objects.filter(configuration__organization=organization)
        return jobs_.filter(requested_by__email__icontains=user) if user else jobs_

    @classmethod
    def load_for_tasks(cls, pks):
        previous = (
            cls.objects.filter(
                configuration_id=models.OuterRef("configuration_id"),
                status=cls.Status.SUCCEEDED,
                created_at__lt=models.OuterRef("created_at"),
            )
            .order_by("-finished_at")
            .values("finished_at")[:1]
        )
        return (
            cls.objects.select_related("configuration__organization", "requested_by")
            .annotate(previous_finished_at=models.Subquery(previous))
            .in_bulk(pks)
        )
