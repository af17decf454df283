import datetime as dt

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm

from organizations.actions import normalize_email
from organizations.models import Membership, Organization, time_zone_choices
from organizations.validators import validate_database_id, validate_single_line


class SingleLineField(forms.CharField):
    """A name or anything that may end up in an email header: one line, no control characters."""

    default_validators = [validate_single_line]


class IdChoiceField(forms.ModelChoiceField):
    """A row chosen by id; an id the database cannot hold is an invalid choice, not a crash."""

    def to_python(self, value):
        if value not in self.empty_values and self.to_field_name is None:
            validate_database_id(getattr(value, "pk", value), self.error_messages["invalid_choice"])
        return super().to_python(value)


class IdsChoiceField(forms.ModelMultipleChoiceField):
    def clean(self, value):
        if isinstance(value, list | tuple) and self.to_field_name is None:
            for pk in value:
                message = self.error_messages["invalid_choice"] % {"value": str(pk)[:40]}
                validate_database_id(getattr(pk, "pk", pk), message)
        return super().clean(value)


class EmailAuthenticationForm(AuthenticationForm):
    """Kodo accounts log in with their email address, whatever its case."""

    username = forms.EmailField(
        label="Email",
        max_length=254,
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}),
    )

    def clean_username(self):
        return normalize_email(self.cleaned_data["username"])


class EmailPasswordResetForm(PasswordResetForm):
    """Django's reset form, the email read as Kodo stores logins (so limits count it once)."""

    def clean_email(self):
        return normalize_email(self.cleaned_data["email"])


class OrganizationForm(forms.Form):
    name = SingleLineField(max_length=200)
    time_zone = forms.ChoiceField(choices=time_zone_choices, initial="UTC")
    admin_name = SingleLineField(label="Administrator's name", max_length=300)
    admin_email = forms.EmailField(label="Administrator's email")

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if Organization.objects.filter(name__iexact=name).exists():
            raise forms.ValidationError("An organization with this name already exists.")
        return name

    def clean_admin_email(self):
        email = normalize_email(self.cleaned_data["admin_email"])
        if get_user_model().objects.filter(username=email).exists():
            raise forms.ValidationError(
                "This email already has a Kodo account. Each account belongs to one "
                "organization: use another address."
            )
        return email


class ServicesForm(forms.Form):
    services_enabled = forms.BooleanField(required=False, label="Services enabled")


class DownloadPolicyForm(forms.Form):
    admins_may_download = forms.BooleanField(
        required=False, label="Administrators may download users' data"
    )


class DateRangeForm(forms.Form):
    """A From/To pair of days, both included, read in a time zone."""

    since = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label="To", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            raise forms.ValidationError("The start date is after the end date.")
        return cleaned

    def bounds(self, zone) -> tuple[dt.datetime | None, dt.datetime | None]:
        """[start of From, start of the day after To) as aware datetimes in `zone`."""
        since, until = self.cleaned_data.get("since"), self.cleaned_data.get("until")
        return (
            since and dt.datetime.combine(since, dt.time(), zone),
            until and dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), zone),
        )


class AuditSearchForm(DateRangeForm):
    field_order = ["q", "since", "until"]

    q = forms.CharField(label="Keyword", required=False, max_length=200)


class SelfServiceForm(forms.Form):
    self_service_enabled = forms.BooleanField(
        required=False, label="Self-service: users reach their own backups (My backups)"
    )


class UserPermissionsForm(forms.Form):
    users_may_browse = forms.BooleanField(
        required=False, label="Users may browse their own OneDrive as of any backup"
    )
    users_may_download = forms.BooleanField(
        required=False, label="Users may download their own files"
    )
    users_may_restore = forms.BooleanField(
        required=False, label="Users may restore their own files to their own OneDrive"
    )


class OperatorForm(forms.Form):
    """Make a user of the organization a restore operator, by their email."""

    email = forms.EmailField(label="Email of a user of this organization")

    def __init__(self, *args, organization, **kwargs):
        self.organization = organization
        super().__init__(*args, **kwargs)

    def clean_email(self) -> Membership:
        email = normalize_email(self.cleaned_data["email"])
        membership = (
            Membership.objects.filter(organization=self.organization, user__username=email)
            .select_related("user", "organization")
            .first()
        )
        if membership is None:
            raise forms.ValidationError(
                f"{email} is not a user of {self.organization.name}. Import their Microsoft 365 "
                "account first (Services → Users → IMPORT USERS)."
            )
        if membership.role == Membership.Role.OPERATOR:
            raise forms.ValidationError(f"{email} is already a restore operator.")
        if membership.role != Membership.Role.USER:
            raise forms.ValidationError(
                f"{email} is an administrator of {self.organization.name}: administrators can "
                "already restore."
            )
        return membership
