"""The restore form's two halves: what was picked on the browse pages (SelectionForm: the same
fields the zip download takes) and the options asked before RESTORE (RestoreOptionsForm: where,
whose OneDrive, what to do with a name that exists); and the job page's filter by status."""

from dataclasses import dataclass
from typing import cast

from django import forms
from django.core.exceptions import ValidationError

from backups.models import BackupRun, FileVersion, RestoreItem, RestoreJob
from backups.restore.paths import MAX_PATH as MAX_FOLDER_PATH
from backups.restore.paths import clean_folder_path, new_folder_name
from backups.selection import NoRestorePoint, UnknownUser, find_directory_user
from backups.selection import resolve_restore_point as restore_point_of
from o365.models import DirectoryUser
from organizations.validators import MAX_DATABASE_ID, validate_text

# Paths or versions in one restore: ticked rows (a whole folder is one path). Django refuses a
# request of more than DATA_UPLOAD_MAX_NUMBER_FIELDS (1,000) fields before this form.
MAX_PICKED = 1000
MAX_PATH = 4000


class RepeatedField(forms.Field):
    """A field the browse pages send once per ticked row (`path=...&path=...`)."""

    widget = forms.MultipleHiddenInput

    def __init__(self, *, item_label: str, **kwargs):
        self.item_label = item_label
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_python(self, value):
        if not value:
            return []
        if not isinstance(value, list | tuple):
            value = [value]
        if len(value) > MAX_PICKED:
            raise ValidationError(
                f"{len(value):,} {self.item_label}s were picked; restore at most {MAX_PICKED:,} "
                "at once (pick their folder instead)."
            )
        return [self.clean_item(str(item)) for item in value]

    def clean_item(self, value: str):
        return value


class PathsField(RepeatedField):
    def clean_item(self, value: str) -> str:
        validate_text(value, "A picked path", max_length=MAX_PATH)
        return "/" + value.strip().strip("/")


class VersionIdsField(RepeatedField):
    def clean_item(self, value: str) -> int:
        try:
            number = int(value.strip())
        except ValueError:
            number = 0
        if not 0 < number <= MAX_DATABASE_ID:
            raise ValidationError("A picked version is not a version number. Pick it again.")
        return number


@dataclass(frozen=True)
class Selection:
    """A valid selection: as of which restore point, what, and the picks it holds."""

    run: BackupRun
    what: str
    paths: list[str]
    version_ids: list[int]


class SelectionForm(forms.Form):
    """What the browse, versions, deleted-items and search pages post. `whole_drive` wins over
    `deleted_only`, which wins over ticked paths and versions (the page's buttons send those
    flags beside whatever rows were ticked)."""

    at = forms.CharField(required=False, max_length=100)
    path = PathsField(item_label="path")
    version = VersionIdsField(item_label="version")
    whole_drive = forms.BooleanField(required=False)
    deleted_only = forms.BooleanField(required=False)

    def __init__(self, *args, directory_user: DirectoryUser, **kwargs):
        self.directory_user = directory_user
        super().__init__(*args, **kwargs)

    def clean_at(self):
        at = self.cleaned_data["at"]
        validate_text(at, "The restore point", max_length=100)
        try:
            return restore_point_of(self.directory_user, at)
        except NoRestorePoint as error:
            raise ValidationError(str(error)) from None

    def clean(self):
        data = super().clean()
        run = data.get("at")
        if run is None or self.errors:
            return data
        if data.get("whole_drive"):
            what, paths, version_ids = RestoreJob.What.DRIVE, [], []
        elif data.get("deleted_only"):
            what, paths, version_ids = RestoreJob.What.DELETED, [], []
        else:
            what = RestoreJob.What.SELECTION
            paths = sorted(set(data.get("path") or []) - {"/"})
            version_ids = sorted(set(data.get("version") or []))
            if not paths and not version_ids:
                raise ValidationError(
                    "Nothing is selected: tick files or folders (or versions) first, or restore "
                    "the whole OneDrive."
                )
            self._check_paths(run, paths)
            self._check_versions(version_ids)
        data["selection"] = Selection(run, what, paths, version_ids)
        return data

    def _check_paths(self, run, paths):
        if not paths:
            return
        present = set(
            FileVersion.objects.files_as_of(run)
            .filter(path__in=paths)
            .values_list("path", flat=True)
        )
        missing = [path for path in paths if path not in present]
        if missing:
            shown = ", ".join(missing[:5]) + (
                f" and {len(missing) - 5} more" if missing[5:] else ""
            )
            when = run.finished_at or run.created_at
            raise ValidationError(
                f"Not in the backup of {when:%Y-%m-%d %H:%M} UTC: {shown}. Go back and pick "
                "again from this restore point."
            )

    def _check_versions(self, version_ids):
        if not version_ids:
            return
        found = FileVersion.objects.filter(
            pk__in=version_ids, drive__directory_user=self.directory_user
        ).count()
        if found != len(version_ids):
            raise ValidationError(
                f"{len(version_ids) - found} of the picked versions are not kept for "
                f"{self.directory_user} (removed by retention, or another user's). Go back and "
                "pick again."
            )


class RestoreOptionsForm(forms.Form):
    where = forms.ChoiceField(
        label="Where",
        choices=RestoreJob.Where.choices,
        initial=RestoreJob.Where.NEW_FOLDER,
        widget=forms.RadioSelect,
    )
    folder = forms.CharField(
        label="Another folder",
        required=False,
        max_length=MAX_FOLDER_PATH,
        help_text="A path in the OneDrive, e.g. /Restored/Reports (created if missing).",
        widget=forms.TextInput(attrs={"placeholder": "/Restored"}),
    )
    target = forms.CharField(
        label="Whose OneDrive",
        required=False,
        max_length=320,
        help_text="The same user, or the email of any user of this organization's configurations.",
        widget=forms.TextInput(attrs={"list": "restore-targets", "autocomplete": "off"}),
    )
    conflict = forms.ChoiceField(
        label="If an item with the same name exists",
        choices=RestoreJob.Conflict.choices,
        initial=RestoreJob.Conflict.SKIP,
        widget=forms.RadioSelect,
    )

    def __init__(self, *args, organization, directory_user: DirectoryUser, **kwargs):
        self.organization = organization
        self.directory_user = directory_user
        kwargs.setdefault("initial", {"target": directory_user.email})
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["where"]).choices = [
            # The restore names the folder when it starts: this is the name it gets now.
            (
                RestoreJob.Where.NEW_FOLDER,
                f"A new folder: {new_folder_name(organization)} (nothing existing is touched)",
            ),
            (RestoreJob.Where.ORIGINAL, "The original location"),
            (RestoreJob.Where.FOLDER, "Another folder:"),
        ]

    def clean_folder(self) -> str:
        folder = self.cleaned_data["folder"]
        validate_text(folder, "The folder", max_length=MAX_FOLDER_PATH)
        if not folder.strip():
            return ""
        try:
            return clean_folder_path(folder)
        except ValueError as error:
            raise ValidationError(str(error)) from None

    def clean_target(self) -> DirectoryUser:
        email = self.cleaned_data["target"].strip()
        validate_text(email, "The email", max_length=320)
        source = self.directory_user
        if not email or email.lower() in (source.email, source.user_principal_name.lower()):
            return source
        try:
            target = find_directory_user(self.organization, email)
        except UnknownUser as error:
            raise ValidationError(str(error)) from None
        if target.removed_at is not None:
            raise ValidationError(
                f"{target} was removed from Microsoft 365: restore to another user's OneDrive."
            )
        return target

    def clean(self):
        data = super().clean()
        if data.get("where") == RestoreJob.Where.FOLDER and not data.get("folder"):
            if "folder" not in self.errors:
                self.add_error("folder", "Type the folder to restore into, e.g. /Restored.")
        elif data.get("where") != RestoreJob.Where.FOLDER:
            data["folder"] = ""
        return data


class RestoreItemFilterForm(forms.Form):
    status = forms.ChoiceField(
        label="Show",
        required=False,
        choices=[("", "Every file"), *RestoreItem.Status.choices],
    )
