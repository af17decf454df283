from django import forms

from o365.models import Configuration, DirectoryUser
from organizations.forms import IdChoiceField, IdsChoiceField, SingleLineField
from organizations.models import time_zone_choices
from schedules.models import Schedule

WEEKDAY_CHOICES = list(enumerate(Schedule.WEEKDAYS))

# The + ADD SCHEDULE wizard: (title, fields) per step; SAVE on the last one.
STEPS = [
    ("Name and configuration", ["name", "configuration"]),
    ("What to back up", ["scope", "users", "include_new_users"]),
    ("When", ["frequency", "time", "weekdays", "every_hours", "start_date", "time_zone"]),
    (
        "Retention and notifications",
        ["keep_versions", "keep_deleted_for", "keep_deleted_unit", "notify"],
    ),
]


class ScheduleForm(forms.Form):
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
    users = IdsChoiceField(
        label="Chosen users",
        queryset=DirectoryUser.objects.none(),
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 10}),
        help_text="Hold Ctrl (or Cmd) to choose several. Used when 'Chosen users' is selected.",
    )
    include_new_users = forms.BooleanField(
        label="New users automatically",
        required=False,
        help_text="With chosen users: also back up users imported after this schedule is saved.",
    )
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
    time_zone = forms.ChoiceField(choices=time_zone_choices)
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
        configurations = Configuration.objects.for_organization(organization)
        self.fields["configuration"].queryset = configurations
        self.fields["users"].queryset = (
            DirectoryUser.objects.filter(configuration__in=configurations, removed_at__isnull=True)
            .select_related("configuration")
            .order_by("display_name")
        )
        self.fields["users"].label_from_instance = lambda u: (
            f"{u.display_name or u.email} ({u.email})"
        )

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        taken = Schedule.objects.for_organization(self.organization).filter(name__iexact=name)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise forms.ValidationError("A schedule with this name already exists.")
        return name

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
        if data.get("frequency") == Schedule.Frequency.WEEKLY and not data.get("weekdays"):
            self.add_error("weekdays", "Choose at least one day of the week.")
        return data

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
