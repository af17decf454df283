"""What Kodo keeps about OneDrive backups: runs, per-drive cursors, file versions, store keys.

A FileVersion is one state of one drive item (content and place). It is present from the run that
first saw it (`first_run`) until the run that replaced or deleted it (`end_run`, exclusive), so the
state of a drive as of any run is a single query (FileVersionQuerySet.files_as_of).
"""

import datetime as dt
import uuid
from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.template.defaultfilters import filesizeformat, floatformat
from django.urls import reverse
from django.utils import timezone

from backups.store import OrgKeys
from kodo import crypto, jobs
from kodo.jobs import Job, JobQuerySet, JobRecord
from o365.models import Configuration, DirectoryUser
from organizations.models import Organization


class OrganizationStoreKey(models.Model):
    """An organization's chunk-store keys (backups.store.OrgKeys), wrapped with
    KODO_ENCRYPTION_KEYS."""

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="store_key"
    )
    wrapped_keys = models.BinaryField(editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"Store key of {self.organization}"

    def org_keys(self):
        return OrgKeys.from_bytes(crypto.decrypt(self.wrapped_keys))


class BackupRunQuerySet(JobQuerySet):
    def for_organization(self, organization):
        return self.filter(organization=organization)


class BackupRun(Job):
    """One backup of one user's OneDrive. The row is the truth about the job; Celery only
    runs it (kodo.jobs: claim, beat, finish, recovery)."""

    ACTIVE_STATUSES = jobs.ACTIVE_STATUSES
    TASK_ARGS = ("pk", "organization_id")
    noun = "backup"
    gave_up_hint = "The next backup continues from what was stored."
    kind_label = "Backup"
    position = 10

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="backup_runs"
    )
    configuration = models.ForeignKey(
        Configuration, on_delete=models.CASCADE, related_name="backup_runs"
    )
    directory_user = models.ForeignKey(
        DirectoryUser, on_delete=models.CASCADE, related_name="backup_runs"
    )
    # Set while queued or running, cleared when finished: the unique constraint below makes two
    # active runs of one user impossible, whatever the number of web servers and workers.
    active_user = models.ForeignKey(
        DirectoryUser,
        null=True,
        blank=True,
        editable=False,
        on_delete=models.CASCADE,
        related_name="+",
    )
    full_enumeration = models.BooleanField(default=False)

    files_seen = models.PositiveIntegerField(default=0)
    bytes_seen = models.PositiveBigIntegerField(default=0)
    files_to_download = models.PositiveIntegerField(default=0)
    bytes_to_download = models.PositiveBigIntegerField(default=0)
    files_downloaded = models.PositiveIntegerField(default=0)
    bytes_downloaded = models.PositiveBigIntegerField(default=0)
    bytes_stored = models.PositiveBigIntegerField(default=0)
    files_moved = models.PositiveIntegerField(default=0)
    files_deleted = models.PositiveIntegerField(default=0)
    files_skipped = models.PositiveIntegerField(default=0)
    files_failed = models.PositiveIntegerField(default=0)
    # Older versions this run found unrecoverable (a chunk of theirs is damaged and the current
    # OneDrive content did not hold it again): [{"path": ..., "version": pk}, ...].
    lost_versions = models.JSONField(default=list, blank=True)

    objects: ClassVar = BackupRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["active_user"], name="one_active_backup_per_user"),
        ]
        indexes = [
            models.Index(fields=["organization", "-created_at"]),
            models.Index(fields=["directory_user", "-created_at"]),
            # The overview across organizations (backups/overview.py): backups of the last day
            # by result, and data stored, each read from the index alone. Partial, so that only
            # queries naming their condition use them.
            models.Index(
                fields=["organization", "status", "finished_at"],
                condition=Q(finished_at__isnull=False),
                name="runs_by_result",
            ),
            models.Index(
                fields=["organization", "bytes_stored"],
                condition=Q(bytes_stored__gt=0),
                name="runs_stored",
            ),
            # Whether a user is protected (backups/overview.py protected_users): one probe.
            models.Index(fields=["directory_user", "status"], name="runs_of_user_by_status"),
            # The Dashboard (backups/activity.py): bytes stored per day, running backups.
            models.Index(fields=["organization", "created_at", "bytes_stored"], name="runs_by_day"),
            models.Index(fields=["organization", "status", "created_at"], name="runs_by_status"),
        ]

    def __str__(self):
        return f"Backup of {self.directory_user} ({self.status})"

    def closing_fields(self) -> dict:
        return {"active_user": None}

    @classmethod
    def job_task(cls):
        from backups.tasks import run_backup  # local: backups.tasks imports this module

        return run_backup

    @property
    def progress_percent(self) -> int:
        if self.status in (self.Status.SUCCEEDED, self.Status.PARTIAL):
            return 100
        if not self.bytes_to_download:
            return 0
        return min(99, int(100 * self.bytes_downloaded / self.bytes_to_download))

    # -- the Tasks page ------------------------------------------------------------------------
    @property
    def subject(self) -> str:
        return str(self.directory_user)

    @property
    def subject_detail(self) -> str:
        return f"{self.directory_user.email} · {self.configuration.name}"

    @property
    def link(self) -> str:
        return reverse("backups:backup-run", args=[self.organization.code, self.code])

    @property
    def cancel_url(self) -> str:
        return (
            reverse("backups:backup-run-cancel", args=[self.organization.code, self.code])
            if self.is_active
            else ""
        )

    @property
    def progress_text(self) -> str:
        return f"{self.files_downloaded} / {self.files_to_download} files downloaded"

    @property
    def files_changed(self) -> int:
        """Files new or modified (to download), renamed or moved, or deleted since the last
        backup: what an incremental run found to do, whatever it had to download."""
        return self.files_to_download + self.files_moved + self.files_deleted

    @property
    def summary(self) -> str:
        """Files checked, changed and downloaded. "0 files, 0 bytes" (the downloads alone) read
        as "nothing was backed up" after an incremental run that found nothing to download."""
        if self.status in (self.Status.SUCCEEDED, self.Status.PARTIAL) and not (
            self.files_changed or self.files_failed
        ):
            if not self.files_seen and not self.full_enumeration:
                return "No changes since the last backup"
            return f"{self.files_seen} files checked, no changes"
        return (
            f"{self.files_seen} files checked, {self.files_changed} changed, "
            f"{self.files_downloaded} downloaded ({filesizeformat(self.bytes_downloaded)})"
        )

    @property
    def problem_badge(self) -> str:
        return f"{self.files_failed} failed" if self.files_failed else ""

    @classmethod
    def task_types(cls):
        return [("backup", "Backup", {})]

    @classmethod
    def tasks_of(cls, organization, *, user=""):
        runs = cls.objects.for_organization(organization)
        if user:
            # The matching users first (one pass over the organization's users), then their
            # runs by index: not the text matched again on every run's joined user.
            users = DirectoryUser.objects.filter(configuration__organization=organization).filter(
                Q(mail__icontains=user) | Q(user_principal_name__icontains=user)
            )
            runs = runs.filter(directory_user__in=users.values("pk"))
        return runs

    @classmethod
    def load_for_tasks(cls, pks):
        return cls.objects.select_related(
            "directory_user", "configuration", "organization"
        ).in_bulk(pks)

    def add(self, **counts):
        """Add to counters atomically in the database (and on this instance)."""
        BackupRun.objects.filter(pk=self.pk).update(
            **{name: F(name) + value for name, value in counts.items()}
        )
        for name, value in counts.items():
            setattr(self, name, getattr(self, name) + value)


class DriveState(models.Model):
    """A user's OneDrive as Kodo follows it: the delta cursor saved by the last completed run."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="drive_states"
    )
    directory_user = models.ForeignKey(
        DirectoryUser, on_delete=models.CASCADE, related_name="drive_states"
    )
    drive_id = models.CharField(max_length=200)
    root_item_id = models.CharField(max_length=200, blank=True)
    delta_link = models.TextField(blank=True)
    # Items a completed run could not store (persisting faults); the next run fetches them again.
    retry_item_ids = models.JSONField(default=list, blank=True)
    last_run = models.ForeignKey(
        BackupRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)
    # The drive's current files (not folders) and their bytes, as the Dashboard shows them. Kept
    # by database triggers on FileVersion (migration 0010_drive_totals), whatever writes the
    # versions: the engine's bulk inserts and updates, prune, a user's removal.
    current_files = models.BigIntegerField(default=0, editable=False)
    current_bytes = models.BigIntegerField(default=0, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["directory_user", "drive_id"], name="one_state_per_drive"
            ),
        ]
        # Protected users and users not backed up lately (backups/overview.py), read from the
        # indexes alone: `last_run` is set, with `updated_at`, when a run completes.
        indexes = [
            models.Index(
                fields=["organization", "directory_user", "last_run"],
                condition=Q(last_run__isnull=False),
                name="drives_backed_up",
            ),
            models.Index(
                fields=["updated_at", "organization", "directory_user", "last_run"],
                condition=Q(last_run__isnull=False),
                name="drives_late",
            ),
            # ... whether a late drive's user has a fresher one (a new OneDrive)
            models.Index(
                fields=["directory_user", "updated_at", "last_run"],
                condition=Q(last_run__isnull=False),
                name="drives_of_user",
            ),
        ]

    def __str__(self):
        return f"Drive {self.drive_id} of {self.directory_user}"

    TOTALS = ("current_files", "current_bytes")

    def save(self, *args, **kwargs):
        """Never write the totals back: the triggers own them, and this copy may be stale."""
        if self.pk is not None and not self._state.adding and kwargs.get("update_fields") is None:
            kwargs["update_fields"] = [
                f.name
                for f in self._meta.concrete_fields
                if not f.primary_key and f.name not in self.TOTALS
            ]
        super().save(*args, **kwargs)


class FileVersionQuerySet(models.QuerySet):
    def for_organization(self, organization):
        return self.filter(organization=organization)

    def current(self):
        return self.filter(end_run__isnull=True)

    def files_as_of(self, run):
        """The items of run's drive as they were when `run` finished (or stopped)."""
        return self.filter(
            drive__directory_user_id=run.directory_user_id,
            organization_id=run.organization_id,
            first_run_id__lte=run.pk,
        ).filter(Q(end_run__isnull=True) | Q(end_run_id__gt=run.pk))


class FileVersion(models.Model):
    """One state of a drive item: where it was, what it held (as ordered chunks), when."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="file_versions"
    )
    drive = models.ForeignKey(DriveState, on_delete=models.CASCADE, related_name="versions")
    item_id = models.CharField(max_length=200)
    parent_id = models.CharField(max_length=200, blank=True)
    path = models.TextField(help_text="Full path from the drive root, e.g. /Documents/a.docx.")
    name = models.CharField(max_length=400)
    is_folder = models.BooleanField(default=False)
    size = models.PositiveBigIntegerField(default=0)
    quickxorhash = models.CharField(max_length=40, blank=True)
    mime_type = models.CharField(max_length=200, blank=True)
    created_datetime = models.DateTimeField(null=True, blank=True)
    modified_datetime = models.DateTimeField(null=True, blank=True)
    etag = models.CharField(max_length=200, blank=True)
    ctag = models.CharField(max_length=200, blank=True)
    # [[chunk id, plaintext size], ...] in file order; every chunk is stored before the row exists.
    chunks = models.JSONField(default=list, blank=True)

    first_run = models.ForeignKey(BackupRun, on_delete=models.RESTRICT, related_name="+")
    end_run = models.ForeignKey(
        BackupRun, null=True, blank=True, on_delete=models.RESTRICT, related_name="+"
    )
    deleted = models.BooleanField(default=False, help_text="Ended because the item was deleted.")

    class Damage(models.TextChoices):
        SOUND = "", "Sound"
        # A verification found one of its chunks corrupt or missing: the next backup of its user
        # downloads the file again if this is the current version.
        DAMAGED = "damaged", "Damaged"
        # An older version whose damaged chunk no backup could store again: it cannot be
        # restored (reported on the run that found it so).
        LOST = "lost", "Lost"

    damage = models.CharField(
        max_length=8, choices=Damage.choices, default=Damage.SOUND, blank=True
    )

    objects = FileVersionQuerySet.as_manager()

    class Meta:
        ordering = ["path"]
        indexes = [
            models.Index(fields=["drive", "item_id"]),
            models.Index(fields=["drive", "end_run"]),
            # browse: a folder's items as of a run; deleted items
            models.Index(fields=["drive", "parent_id", "first_run"], name="versions_in_folder"),
            models.Index(
                fields=["drive", "end_run"], condition=Q(deleted=True), name="deleted_versions"
            ),
            models.Index(fields=["organization", "quickxorhash"]),
            # The Dashboard's damaged and lost versions (a query naming the condition uses it).
            models.Index(
                fields=["organization", "damage"],
                condition=~Q(damage=""),
                name="damaged_in_organization",
            ),
            models.Index(
                fields=["drive", "damage"], condition=~Q(damage=""), name="damaged_versions"
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["drive", "item_id"],
                condition=Q(end_run__isnull=True),
                name="one_current_version_per_item",
            ),
        ]

    def __str__(self):
        return self.path

    @property
    def chunk_ids(self):
        return [chunk_id for chunk_id, _ in self.chunks]

    @property
    def last_present_run_id(self):
        """The last run in which this version was present (None while it is still current)."""
        if self.end_run_id is None:
            return None
        return (
            BackupRun.objects.filter(
                directory_user_id=self.drive.directory_user_id,
                pk__lt=self.end_run_id,
                pk__gte=self.first_run_id,
            )
            .order_by("-pk")
            .values_list("pk", flat=True)
            .first()
        )


class RunIssue(models.Model):
    """An item a run skipped (with the reason) or failed to back up (with the error)."""

    class Kind(models.TextChoices):
        SKIPPED = "skipped", "Skipped"
        FAILED = "failed", "Failed"

    class Reason(models.TextChoices):
        MALWARE = "malware", "Flagged as malware by Microsoft"
        ONENOTE = "onenote", "OneNote notebook (cannot be downloaded)"
        DELETED = "deleted", "Deleted during the backup"
        NO_ONEDRIVE = "no_onedrive", "The user has no OneDrive"
        VERIFY = "verify", "Downloaded content did not match its size or hash"
        DOWNLOAD = "download", "Download failed"
        OTHER = "other", "Other"

    run = models.ForeignKey(BackupRun, on_delete=models.CASCADE, related_name="issues")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    reason = models.CharField(max_length=12, choices=Reason.choices)
    item_id = models.CharField(max_length=200, blank=True)
    path = models.TextField(blank=True)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"{self.kind} {self.path}: {self.get_reason_display()}"


class UnreferencedChunk(models.Model):
    """A stored chunk that no file version referred to when prune last looked (the mark of mark
    and sweep). A later prune takes it out of the store only if it is still unreferenced and the
    mark is older than the grace period; it is first held aside (`held_at`), and deleted for good
    after another grace period, so that a backup that reused it just before it was held aside
    and recorded its version late gets it back."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="unreferenced_chunks"
    )
    chunk_id = models.CharField(max_length=64)
    marked_at = models.DateTimeField()
    held_at = models.DateTimeField(null=True, blank=True)
    stored_size = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "chunk_id"], name="one_mark_per_chunk"),
        ]

    def __str__(self):
        return f"Unreferenced chunk {self.chunk_id[:12]} of {self.organization}"


class DamagedChunk(models.Model):
    """A chunk a verification found corrupt or missing. It is never a deduplication target: the
    next backup that stores the same content writes the chunk again (healing every version that
    uses it) and deletes this row."""

    class Problem(models.TextChoices):
        CORRUPT = "corrupt", "Corrupt"
        MISSING = "missing", "Missing"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="damaged_chunks"
    )
    chunk_id = models.CharField(max_length=64)
    problem = models.CharField(max_length=8, choices=Problem.choices)
    found_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "chunk_id"], name="one_damage_per_chunk"
            ),
        ]

    def __str__(self):
        return f"{self.get_problem_display()} chunk {self.chunk_id[:12]} of {self.organization}"


class Verification(JobRecord):
    """One verification of an organization's backups (manage.py verify_store or the nightly
    task): what it read and what it found. A job row (kodo.jobs.JobRecord) that is not claimed:
    it runs where it was started. Its results have words of their own, mapped to the job
    statuses (JOB_STATUSES) for the badge and the Tasks page's filters."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SOUND = "sound", "Sound"
        PROBLEMS = "problems", "Problems found"
        FAILED = "failed", "Failed"

    JOB_STATUSES: dict[str, str] = {
        Status.RUNNING: jobs.Status.RUNNING,
        Status.SOUND: jobs.Status.SUCCEEDED,
        Status.PROBLEMS: jobs.Status.FAILED,
        Status.FAILED: jobs.Status.FAILED,
    }
    kind_label = "Verification"
    position = 30
    subject = "Backup store"

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="verifications"
    )
    trigger = models.CharField(
        max_length=10, choices=jobs.Trigger.choices, default=jobs.Trigger.SCHEDULE
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    sample = models.FloatField(default=1.0, help_text="Fraction of the chunks re-read.")
    versions_checked = models.PositiveIntegerField(default=0)
    chunks_checked = models.PositiveIntegerField(default=0)  # each read once
    problems = models.PositiveIntegerField(default=0)
    damaged_chunks = models.PositiveIntegerField(default=0)
    versions_affected = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "-created_at"])]

    def __str__(self):
        return f"Verification of {self.organization} ({self.status})"

    @property
    def job_status(self) -> str:
        return self.JOB_STATUSES.get(self.status, self.status)

    @property
    def status_label(self) -> str:
        return self.get_status_display()

    # -- the Tasks page ------------------------------------------------------------------------
    @property
    def subject_detail(self) -> str:
        return f"a sample of {floatformat(self.sample, -2)}" if self.sample < 1 else ""

    @property
    def summary(self) -> str:
        return f"{self.versions_checked} file versions, {self.chunks_checked} chunks re-read"

    @property
    def problem_badge(self) -> str:
        return f"{self.problems} problems" if self.problems else ""

    @property
    def note(self) -> str:
        if not self.damaged_chunks:
            return ""
        return (
            f"{self.damaged_chunks} damaged chunks used by {self.versions_affected} file "
            "versions; the next backups download them again"
        )

    @classmethod
    def task_types(cls):
        return [("verification", "Verification", {})]

    @classmethod
    def tasks_of(cls, organization, *, user=""):
        return None if user else cls.objects.filter(organization=organization)

    @classmethod
    def statuses_for(cls, job_statuses):
        return [own for own, job in cls.JOB_STATUSES.items() if job in job_statuses]


class RestoreJob(Job):
    """One restore of backed-up OneDrive content to Microsoft 365: what (a selection of paths or
    versions, a whole OneDrive, or its deleted items), as of which restore point, where to
    (a new folder, the original place, another folder; the same or another user's OneDrive) and
    what to do with a name that exists. The worker first lists the files as RestoreItems (the
    plan), then uploads them; a takeover continues from the items and their upload sessions."""

    class What(models.TextChoices):
        SELECTION = "selection", "The selected files and folders"
        DRIVE = "drive", "The whole OneDrive"
        DELETED = "deleted", "Deleted items only"

    class Where(models.TextChoices):
        NEW_FOLDER = "new_folder", "A new folder in the OneDrive"
        ORIGINAL = "original", "The original location"
        FOLDER = "folder", "Another folder"

    class Conflict(models.TextChoices):
        SKIP = "skip", "Skip it"
        REPLACE = "replace", "Replace it"
        RENAME = "rename", "Keep both (rename)"

    ACTIVE_STATUSES = jobs.ACTIVE_STATUSES
    TASK_ARGS = ("pk", "organization_id")
    noun = "restore"
    gave_up_hint = "Start the restore again: what was restored is skipped or replaced as chosen."
    kind_label = "Restore"
    position = 15

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="restore_jobs"
    )
    source_user = models.ForeignKey(
        DirectoryUser, on_delete=models.CASCADE, related_name="restores_from"
    )
    # The restore point: the state of the source OneDrive when this run finished.
    as_of_run = models.ForeignKey(
        BackupRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    as_of = models.DateTimeField(null=True, blank=True)
    what = models.CharField(max_length=10, choices=What.choices, default=What.SELECTION)
    # Selected paths (files or folders, from the drive root) and chosen versions (FileVersion
    # pks, e.g. a version older than the restore point).
    paths = models.JSONField(default=list, blank=True)
    version_ids = models.JSONField(default=list, blank=True)

    target_user = models.ForeignKey(
        DirectoryUser, on_delete=models.CASCADE, related_name="restores_to"
    )
    where = models.CharField(max_length=10, choices=Where.choices, default=Where.NEW_FOLDER)
    # NEW_FOLDER: the folder's name ("Kodo Restore 2026-12-03 07-10"); FOLDER: its path.
    folder = models.TextField(blank=True)
    conflict = models.CharField(max_length=8, choices=Conflict.choices, default=Conflict.SKIP)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    requested_by_email = models.CharField(max_length=254, blank=True)

    planned = models.BooleanField(default=False, help_text="Its RestoreItems are all listed.")
    target_drive_id = models.CharField(max_length=200, blank=True)
    files_total = models.PositiveIntegerField(default=0)
    bytes_total = models.PositiveBigIntegerField(default=0)
    files_restored = models.PositiveIntegerField(default=0)
    bytes_restored = models.PositiveBigIntegerField(default=0)
    files_skipped = models.PositiveIntegerField(default=0)
    files_failed = models.PositiveIntegerField(default=0)
    # Every byte sent to Microsoft, retries and re-sent fragments included.
    bytes_uploaded = models.PositiveBigIntegerField(default=0)
    # Progress in bytes: the files finished (restored, skipped or failed), and what Microsoft
    # holds of the files being uploaded now (set by the worker as it goes).
    bytes_finished = models.PositiveBigIntegerField(default=0)
    bytes_in_flight = models.PositiveBigIntegerField(default=0)

    objects: ClassVar = JobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "-created_at"]),
            models.Index(fields=["source_user", "-created_at"]),
        ]

    def __str__(self):
        return f"Restore of {self.source_user} ({self.status})"

    def add(self, **counts):
        """Add to counters atomically in the database (and on this instance)."""
        RestoreJob.objects.filter(pk=self.pk).update(
            **{name: F(name) + value for name, value in counts.items()}
        )
        for name, value in counts.items():
            setattr(self, name, getattr(self, name) + value)

    @classmethod
    def job_task(cls):
        from backups.tasks import run_restore  # local: backups.tasks imports this module

        return run_restore

    # -- in words (the job page, the Tasks page, the audit log and the email) -------------------
    @property
    def what_text(self) -> str:
        """E.g. "the whole OneDrive", "deleted items", "/Documents", "3 files and folders"."""
        if self.what == self.What.DRIVE:
            return "the whole OneDrive"
        if self.what == self.What.DELETED:
            return "the deleted items"
        picked = len(self.paths) + len(self.version_ids)
        if len(self.paths) == 1 and not self.version_ids:
            return self.paths[0]
        if len(self.version_ids) == 1 and not self.paths:
            return "1 chosen file version"
        return f"{picked} files and folders"

    @property
    def where_text(self) -> str:
        """E.g. 'a new folder "Kodo Restore 2026-12-03 07-10" in Ada's OneDrive'."""
        whose = f"{self.target_user}'s OneDrive ({self.target_user.email})"
        if self.where == self.Where.NEW_FOLDER:
            return f'a new folder "{self.folder}" in {whose}'
        if self.where == self.Where.FOLDER:
            return f'the folder "{self.folder}" in {whose}'
        return f"the original location in {whose}"

    @property
    def files_done(self) -> int:
        return self.files_restored + self.files_skipped + self.files_failed

    @property
    def requester(self) -> str:
        return self.requested_by_email or self.get_trigger_display()

    @property
    def progress_percent(self) -> int:
        if self.status in (self.Status.SUCCEEDED, self.Status.PARTIAL):
            return 100
        if not self.bytes_total:
            return 100 * self.files_done // self.files_total if self.files_total else 0
        return min(99, int(100 * (self.bytes_finished + self.bytes_in_flight) / self.bytes_total))

    # -- the Tasks page ------------------------------------------------------------------------
    @property
    def subject(self) -> str:
        return str(self.source_user)

    @property
    def subject_detail(self) -> str:
        detail = f"{self.source_user.email} · {self.what_text}"
        if self.target_user_id != self.source_user_id:
            detail += f" → {self.target_user.email}"
        return detail

    @property
    def link(self) -> str:
        return reverse("backups:restore", args=[self.organization.code, self.code])

    @property
    def cancel_url(self) -> str:
        return (
            reverse("backups:restore-cancel", args=[self.organization.code, self.code])
            if self.is_active
            else ""
        )

    @property
    def progress_text(self) -> str:
        return f"{self.files_done} / {self.files_total} files"

    @property
    def summary(self) -> str:
        text = f"{self.files_restored} files restored, {filesizeformat(self.bytes_restored)}"
        if self.files_skipped:
            text += f", {self.files_skipped} skipped"
        return text

    @property
    def problem_badge(self) -> str:
        return f"{self.files_failed} failed" if self.files_failed else ""

    @classmethod
    def task_types(cls):
        return [("restore", "Restore", {})]

    @classmethod
    def tasks_of(cls, organization, *, user=""):
        restores = cls.objects.filter(organization=organization)
        if user:
            restores = restores.filter(
                Q(source_user__mail__icontains=user)
                | Q(source_user__user_principal_name__icontains=user)
                | Q(target_user__mail__icontains=user)
                | Q(target_user__user_principal_name__icontains=user)
            )
        return restores

    @classmethod
    def load_for_tasks(cls, pks):
        return cls.objects.select_related("source_user", "target_user", "organization").in_bulk(pks)


class RestoreItem(models.Model):
    """One file (or folder) of a restore: where it comes from, where it goes, how it ended."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RESTORED = "restored", "Restored"
        SKIPPED = "skipped", "Skipped"
        FAILED = "failed", "Failed"

    restore = models.ForeignKey(RestoreJob, on_delete=models.CASCADE, related_name="items")
    # SET_NULL: retention may remove the version while the restore waits; the item then fails.
    version = models.ForeignKey(
        FileVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    is_folder = models.BooleanField(default=False)
    source_path = models.TextField()
    # Where it goes in the target OneDrive, from its root, e.g. /Kodo Restore 2026-12-03
    # 07-10/Documents/a.docx (a file kept by "Keep both" may end under another name: message).
    target_path = models.TextField()
    size = models.PositiveBigIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    message = models.TextField(blank=True)
    # The upload session in progress (its URL is a credential: encrypted with kodo.crypto), so
    # that a takeover resumes it from nextExpectedRanges instead of uploading again.
    upload_session = models.BinaryField(null=True, blank=True, editable=False)
    upload_expires_at = models.DateTimeField(null=True, blank=True)
    bytes_done = models.PositiveBigIntegerField(default=0)
    new_item_id = models.CharField(max_length=200, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["restore", "status"])]

    def __str__(self):
        return f"{self.source_path} -> {self.target_path} ({self.status})"


class UsageSample(models.Model):
    """An organization's usage on one day (UTC), recorded by a daily maintenance task for the
    monthly usage report (billing): its peak needs the days, and a report of a past month must
    not change when users, configurations or runs are deleted later."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="usage_samples"
    )
    day = models.DateField()
    protected_users = models.PositiveIntegerField(default=0)
    stored_bytes = models.PositiveBigIntegerField(default=0)
    recorded_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["organization", "day"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "day"], name="one_sample_per_day"),
        ]

    def __str__(self):
        return f"Usage of {self.organization} on {self.day}"


class StoredBytes(models.Model):
    """What an organization's backups stored (BackupRun.bytes_stored) by quarter hour of their
    start (created_at): kept by database triggers on BackupRun (migration 0011_run_tallies), so
    that the Dashboard's chart and total and the overview's data stored sum a few rows a day, not
    every run. Quarter hours, because every time zone's midnight starts one (UTC offsets are
    multiples of 15 minutes)."""

    SECONDS = 900

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    quarter = models.BigIntegerField()  # Unix time of the runs' start // SECONDS
    bytes_stored = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "quarter"], name="one_stored_bytes_per_quarter"
            ),
        ]

    def __str__(self):
        return f"{self.bytes_stored} bytes stored in quarter {self.quarter}"

    @classmethod
    def quarter_of(cls, moment: dt.datetime) -> int:
        return int(moment.timestamp()) // cls.SECONDS
