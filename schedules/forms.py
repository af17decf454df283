from django import forms

from o365.models import Configuration, DirectoryUser
from organizations.forms import IdChoiceField, IdsChoiceField, SingleLineField
from organizations.validators import validate_database_id
from schedules import picker
from schedules.models import Schedule

WEEKDAY_CHOICES = list(enumerate(Schedule.WEEKDAYS))

# Chosen users travel as form fields, and Django refuses a request of more than 1,000 fields
# (DATA_UPLOAD_MAX_NUMBER_FIELDS): past a few hundred, "All users" is the way.
MAX_CHOSEN_USERS = 500

# The + ADD SCHEDULE wizard: (title, fields) per step; SAVE on the last one (the review).
STEPS = [
    ("What to back up", ["name", "configuration", "scope", "users", "include_new_users"]),
    ("When", ["frequency", "time", "weekdays", "every_hours", "start_date", "time_zone"]),
    (
        "Retention and notifications",
        ["keep_versions", "keep_deleted_for", "keep_deleted_unit", "notify"],
    ),
    ("Review", []),
]

# Fields that apply only to one choice of another field; the wizard shows them for it alone.
SHOWN_IF = {
    "users": ("scope", Schedule.Scope.CHOSEN),
    "include_new_users": ("scope", Schedule.Scope.CHOSEN),
    "weekdays": ("frequency", Schedule.Frequency.WEEKLY),
    "every_hours": ("frequency", Schedule.Frequency.HOURLY),
}


class TimeZoneField(forms.CharField):
    """An IANA time zone typed (the page offers them in a <datalist>); cleans to its name."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 64)
        super().__init__(**kwargs)

    def clean(self, value):
        text = super().clean(value)
        if text in self.empty_values:
            return text
        name = picker.canonical_time_zone(text)
        if name is None:
            close = picker.time_zones_matching(text)
            hint = (
                f" Did you mean {', '.join(close)}?"
                if close
                else " Type part of a city's name (such as Warsaw) and choose from the list."
            )
            raise forms.ValidationError(f'"{text[:64]}" is not a time zone.{hint}')
        return name


class WhenForm(forms.Form):
    """When a schedule fires: the wizard's When step, and its next-runs preview."""

    frequency = forms.ChoiceField(
        choices=Schedule.Frequency.choices,
        widget=forms.RadioSelect,
        initial=Schedule.Frequency.DAILY,
    )
    time = forms.TimeField(
        label="At",
        initial="22:00",
        widget=forms.TimeInput(attrs={"type": "time"}),
        help_text="Daily and weekly: the time of day. Every N hours: the first run's time.",
    )
    weekdays = forms.TypedMultipleChoiceField(
        label="On days",
        choices=WEEKDAY_CHOICES,
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    every_hours = forms.IntegerField(label="Every N hours", min_value=1, max_value=24, initial=6)
    start_date = forms.DateField(
        label="Starting on", widget=forms.DateInput(attrs={"type": "date"})
    )
    time_zone = TimeZoneField(
        label="Time zone",
        help_text="Type part of a name (a city, such as Warsaw) and choose from the list.",
        widget=forms.TextInput(
            attrs={"list": "time-zones", "autocomplete": "off", "spellcheck": "false"}
        ),
    )

    def clean(self):
        data = super().clean()
        if data.get("frequency") == Schedule.Frequency.WEEKLY and not data.get("weekdays"):
            self.add_error("weekdays", "Choose at least one day of the week.")
        return data

    def schedule(self) -> Schedule:
        """An unsaved schedule with these times (valid forms only), to compute its runs."""
        return Schedule(**{name: self.cleaned_data[name] for name in WhenForm.base_fields})


class ScheduleForm(WhenForm):
    name = SingleLineField(max_length=200)
    configuration = IdChoiceField(
        label="Configuration", queryset=Configuration.objects.none(), empty_label=None
    )
    scope = forms.ChoiceField(
        label="Back up",
        choices=Schedule.Scope.choices,
        widget=forms.RadioSelect,
        initial=Schedule.Scope.ALL,
    )
    # Rendered by the wizard as the chosen list and a server search (schedules/picker.py),
    # never as a list of every user.
    users = IdsChoiceField(
        label="Chosen users",
        queryset=DirectoryUser.objects.none(),
        required=False,
        widget=forms.MultipleHiddenInput,
    )
    include_new_users = forms.BooleanField(
        label="New users automatically",
        required=False,
        help_text="With chosen users: also back up users imported after this schedule is saved.",
    )
    keep_versions = forms.IntegerField(
        label="Versions to keep per file", min_value=1, max_value=10000, initial=30
    )
    keep_deleted_for = forms.IntegerField(
        label="Keep deleted items for", min_value=1, max_value=100000, initial=1
    )
    keep_deleted_unit = forms.ChoiceField(
        label="Unit", choices=Schedule.RetentionUnit.choices, initial=Schedule.RetentionUnit.YEARS
    )
    notify = forms.ChoiceField(
        label="Email the organization's admins",
        choices=Schedule.Notify.choices,
        initial=Schedule.Notify.FAILURE,
    )

    def __init__(self, *args, organization, instance=None, **kwargs):
        self.organization = organization
        self.instance = instance
        super().__init__(*args, **kwargs)
        self.configurations = Configuration.objects.for_organization(organization)
        self.users_offered = DirectoryUser.objects.filter(
            configuration__in=self.configurations, removed_at__isnull=True
        )
        self.fields["configuration"].queryset = self.configurations
        self.fields["users"].queryset = self.users_offered

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        taken = Schedule.objects.for_organization(self.organization).filter(name__iexact=name)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise forms.ValidationError("A schedule with this name already exists.")
        return name

    def clean_users(self):
        users = self.cleaned_data["users"]
        if len(users) > MAX_CHOSEN_USERS:
            raise forms.ValidationError(
                f"Choose at most {MAX_CHOSEN_USERS} users here, or back up all users."
            )
        return users

    def clean(self):
        data = super().clean()
        configuration, users = data.get("configuration"), data.get("users") or []
        if configuration and any(user.configuration_id != configuration.pk for user in users):
            self.add_error("users", "Choose users of the chosen configuration only.")
        if (
            data.get("scope") == Schedule.Scope.CHOSEN
            and not users
            and not data.get("include_new_users")
        ):
            self.add_error("users", "Choose at least one user, or tick 'New users automatically'.")
        return data

    # ----- what the wizard's pages show --------------------------------------------------------

    def picked_configuration(self) -> Configuration | None:
        """The configuration chosen so far (posted or initial), if it is this organization's."""
        value = self["configuration"].value()
        try:
            validate_database_id(value)
        except forms.ValidationError:
            return None
        return self.configurations.filter(pk=int(str(value).strip())).first()

    def chosen_ids(self) -> list[int]:
        """The ids of the users chosen so far that can be ids at all (the rest are errors)."""
        ids = []
        for value in self["users"].value() or []:
            try:
                validate_database_id(getattr(value, "pk", value))
            except forms.ValidationError:
                continue
            ids.append(int(str(getattr(value, "pk", value)).strip()))
        return ids[: MAX_CHOSEN_USERS + 1]

    def chosen_users(self) -> list[DirectoryUser]:
        ids = self.chosen_ids()
        if not ids:
            return []
        return list(
            self.users_offered.filter(pk__in=ids).order_by(
                "display_name", "user_principal_name", "pk"
            )
        )

    def review(self) -> list[tuple[str, str]]:
        """What SAVE will save, in words (valid forms only)."""
        data = self.cleaned_data
        schedule = self.unsaved_schedule()
        unit = dict(Schedule.RetentionUnit.choices)[data["keep_deleted_unit"]]
        if data["keep_deleted_for"] == 1:
            unit = unit.removesuffix("s")
        return [
            ("Name", data["name"]),
            ("Configuration", data["configuration"].name),
            ("Back up", schedule.describe_what()),
            ("When", schedule.describe_when() + f", starting on {data['start_date']:%Y-%m-%d}"),
            ("Versions to keep per file", str(data["keep_versions"])),
            ("Keep deleted items for", f"{data['keep_deleted_for']} {unit}"),
            ("Email the organization's admins", dict(Schedule.Notify.choices)[data["notify"]]),
        ]

    def unsaved_schedule(self) -> Schedule:
        data = self.cleaned_data
        schedule = self.schedule()
        schedule.name = data["name"]
        schedule.scope = data["scope"]
        schedule.include_new_users = data["include_new_users"]
        schedule.chosen_count = len(data["users"])  # type: ignore[attr-defined]  # as the list's
        return schedule

    def step_of(self, field_name: str) -> int:
        return next(
            number for number, (_, fields) in enumerate(STEPS, start=1) if field_name in fields
        )

    def first_step_with_errors(self) -> int | None:
        steps = [self.step_of(name) for name in self.errors if name != "__all__"]
        return min(steps) if steps else None

    @staticmethod
    def initial_from(schedule) -> dict:
        initial = {
            field: getattr(schedule, field)
            for _, fields in STEPS
            for field in fields
            if field not in ("users", "configuration")
        }
        initial["configuration"] = schedule.configuration_id
        initial["users"] = list(schedule.users.values_list("pk", flat=True))
        return initial
