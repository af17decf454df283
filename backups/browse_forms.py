"""The browse pages' query forms: they validate the query string and return real types."""

from django import forms

from backups.browse import SearchFilters, megabytes
from organizations.forms import DateRangeForm


class RestorePointDayForm(forms.Form):
    """The timeline's date input: the last restore point on or before that day."""

    day = forms.DateField(label="Backup on or before", widget=forms.DateInput({"type": "date"}))


class SearchForm(DateRangeForm):
    field_order = ["q", "extension", "since", "until", "size_min", "size_max", "deleted_only"]

    q = forms.CharField(
        label="Name contains",
        required=False,
        max_length=200,
        widget=forms.TextInput({"type": "search", "placeholder": "Part of a file or folder name"}),
    )
    extension = forms.CharField(
        label="Extension",
        required=False,
        max_length=20,
        widget=forms.TextInput({"placeholder": "e.g. docx"}),
    )
    size_min = forms.DecimalField(
        label="Size at least (MB)", required=False, min_value=0, max_digits=12, decimal_places=3
    )
    size_max = forms.DecimalField(
        label="Size at most (MB)", required=False, min_value=0, max_digits=12, decimal_places=3
    )
    deleted_only = forms.BooleanField(label="Deleted items only", required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["since"].label = "Modified from"
        self.fields["until"].label = "Modified to"

    def clean_q(self):
        return self.cleaned_data["q"].strip()

    def clean_extension(self):
        extension = self.cleaned_data["extension"].strip().lstrip(".")
        if any(ch in extension for ch in "/\\.") or any(ord(ch) < 32 for ch in extension):
            raise forms.ValidationError("Type the extension alone, e.g. docx or pdf.")
        return extension

    def clean(self):
        cleaned = super().clean()
        low, high = cleaned.get("size_min"), cleaned.get("size_max")
        if low is not None and high is not None and low > high:
            raise forms.ValidationError("The smallest size is above the largest.")
        return cleaned

    def filters(self, zone) -> SearchFilters:
        data = self.cleaned_data
        since, until = self.bounds(zone)
        return SearchFilters(
            text=data.get("q") or "",
            modified_since=since,
            modified_until=until,
            deleted_only=bool(data.get("deleted_only")),
            extension=data.get("extension") or "",
            size_min=megabytes(data.get("size_min")),
            size_max=megabytes(data.get("size_max")),
        )
