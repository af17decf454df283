"""The organization's Users page: Kodo accounts with what Microsoft 365 says about them."""

from django import forms
from django.db.models import Prefetch, Q

from o365.models import DirectoryUser
from organizations.models import Membership


class PeopleFilterForm(forms.Form):
    q = forms.CharField(label="Search", required=False, max_length=200)
    status = forms.ChoiceField(
        required=False,
        choices=[
            ("", "Any status"),
            ("active", "Active"),
            ("disabled", "Disabled"),
            ("removed", "Removed from Microsoft 365"),
        ],
    )
    licensed = forms.ChoiceField(
        required=False, choices=[("", "Licensed or not"), ("yes", "Licensed"), ("no", "Unlicensed")]
    )
    onedrive = forms.ChoiceField(
        label="OneDrive",
        required=False,
        choices=[
            ("", "Any"),
            ("yes", "Has OneDrive"),
            ("no", "No OneDrive"),
            ("unknown", "Not checked"),
        ],
    )

    def filter(self, memberships):
        if not self.is_valid():
            return memberships
        data = self.cleaned_data
        if data["q"]:
            memberships = memberships.filter(
                Q(user__username__icontains=data["q"])
                | Q(user__first_name__icontains=data["q"])
                | Q(user__last_name__icontains=data["q"])
            )
        if data["status"] == "active":
            memberships = memberships.filter(user__is_active=True)
        elif data["status"] == "disabled":
            memberships = memberships.filter(user__is_active=False)
        elif data["status"] == "removed":
            memberships = memberships.filter(user__directory_users__removed_at__isnull=False)
        if data["licensed"]:
            memberships = memberships.filter(
                user__directory_users__licensed=data["licensed"] == "yes"
            )
        if data["onedrive"]:
            memberships = memberships.filter(user__directory_users__onedrive=data["onedrive"])
        return memberships.distinct()


def people_of(organization):
    directory = DirectoryUser.objects.filter(
        configuration__organization=organization
    ).select_related("configuration")
    return (
        Membership.objects.filter(organization=organization)
        .select_related("user")
        .prefetch_related(Prefetch("user__directory_users", queryset=directory, to_attr="m365"))
        .order_by("user__username")
    )
