from urllib.parse import urlsplit

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q

from kodo import crypto
from o365.kodo_settings import MAX_SETTINGS_BYTES, decode_pfx_base64, parse_kodo_settings
from o365.models import Service
from o365.validators import MAX_PFX_BYTES, load_certificate, parse_ca_certificates, parse_guid
from organizations.models import time_zone_choices

JSON_CLOUDS = {"global": "global", "usgovernment": "usgov", "usgov": "usgov", "china": "china",
               "custom": "custom"}
SECRET_WIDGET = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})


def _read_upload(upload, limit: int, label: str) -> bytes:
    if upload.size > limit:
        raise ValidationError(f"{label} is larger than {limit // 1024} KB. Is it the right file?")
    return upload.read()


def _https_url(value: str, label: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.netloc:
        raise ValidationError(f"{label} must be an https:// address.")
    return value.rstrip("/")


class ConfigurationForm(forms.Form):
    """+ ADD CONFIGURATION and edit: values typed in, or read from KodoADSettings.json.

    Secrets are never shown again: on edit, a blank secret field keeps the stored value."""

    name = forms.CharField(max_length=200, required=False,
                           help_text="Any name, e.g. the tenant's domain.")
    settings_file = forms.FileField(
        label="KodoADSettings.json", required=False,
        help_text="The file Register-KodoApp.ps1 wrote: it fills the fields below.",
        widget=forms.ClearableFileInput(attrs={"accept": ".json,application/json"}),
    )
    tenant_id = forms.CharField(label="Tenant ID", max_length=64, required=False)
    client_id = forms.CharField(label="Client ID", max_length=64, required=False)
    client_secret = forms.CharField(label="Client Secret", max_length=500, required=False,
                                    strip=True, widget=SECRET_WIDGET)
    certificate_password = forms.CharField(label="Certificate Password", max_length=500,
                                           required=False, strip=False, widget=SECRET_WIDGET)
    certificate_file = forms.FileField(
        label="Private Certificate", required=False,
        help_text="The PFX file (or paste its base64 below).",
        widget=forms.ClearableFileInput(attrs={"accept": ".pfx,.p12"}),
    )
    certificate_base64 = forms.CharField(
        label="Private Certificate (base64)", required=False, max_length=MAX_PFX_BYTES * 2,
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off"}),
    )
    cloud = forms.ChoiceField(choices=Service.Cloud.choices, initial=Service.Cloud.GLOBAL)
    authority_host = forms.CharField(label="Authority host", max_length=200, required=False,
                                     help_text="Custom cloud only, e.g. https://127.0.0.1:9443")
    graph_base_url = forms.CharField(label="Graph base URL", max_length=200, required=False,
                                     help_text="Custom cloud only, e.g. https://127.0.0.1:9443/v1.0")
    ca_certificate = forms.CharField(label="CA certificate (PEM)", required=False,
                                     max_length=64 * 1024,
                                     widget=forms.Textarea(attrs={"rows": 3}),
                                     help_text="Custom cloud only, when its TLS certificate is "
                                               "signed by a private CA.")

    def __init__(self, *args, organization, instance: Service | None = None, **kwargs):
        self.organization = organization
        self.instance = instance
        if instance is not None:
            kwargs.setdefault("initial", {
                "name": instance.name, "tenant_id": instance.tenant_id,
                "client_id": instance.client_id, "cloud": instance.cloud,
                "authority_host": instance.authority_host,
                "graph_base_url": instance.graph_base_url,
                "ca_certificate": instance.ca_certificate_pem,
            })
        super().__init__(*args, **kwargs)
        if instance is not None:
            keep = "Leave blank to keep the stored value."
            self.fields["client_secret"].help_text = keep if instance.has_client_secret else ""
            self.fields["certificate_password"].help_text = keep if instance.has_certificate else ""

    def _from_file(self, data):
        """Fill what the admin left blank from the uploaded KodoADSettings.json."""
        upload = data.get("settings_file")
        if not upload:
            return
        settings = parse_kodo_settings(_read_upload(upload, MAX_SETTINGS_BYTES,
                                                    "KodoADSettings.json"))
        for field, key in (("name", "AppName"), ("tenant_id", "TenantId"),
                           ("client_id", "ClientId"), ("client_secret", "ClientSecret"),
                           ("certificate_password", "CertificatePassword"),
                           ("certificate_base64", "CertificatePfxBase64"),
                           ("authority_host", "AuthorityHost"),
                           ("graph_base_url", "GraphBaseUrl"),
                           ("ca_certificate", "CaCertificatePem")):
            if not data.get(field) and settings.get(key):
                data[field] = settings.get(key)
        cloud = JSON_CLOUDS.get(settings.get("Cloud").lower().replace(" ", ""))
        if cloud and data.get("cloud") in ("", Service.Cloud.GLOBAL):
            data["cloud"] = cloud
        elif settings.get("Cloud") and not cloud:
            raise ValidationError(
                f"KodoADSettings.json names an unknown Cloud {settings.get('Cloud')!r}; "
                "use Global, USGovernment, China or Custom."
            )

    def _certificate(self, data):
        """The new certificate, None to keep the stored one, or raise."""
        pfx = b""
        if data.get("certificate_file"):
            pfx = _read_upload(data["certificate_file"], MAX_PFX_BYTES, "The Private Certificate")
        elif data.get("certificate_base64"):
            pfx = decode_pfx_base64(data["certificate_base64"])
        password = data.get("certificate_password", "")
        if not pfx and password and self.instance is not None and self.instance.has_certificate:
            pfx = crypto.decrypt(self.instance.certificate_pfx_encrypted)  # a new password
        return load_certificate(pfx, password) if pfx else None

    def clean(self):
        data = super().clean()
        try:
            self._from_file(data)
        except ValidationError as error:
            self.add_error("settings_file", error)
            return data

        data["name"] = (data.get("name") or "").strip()
        if not data["name"]:
            self.add_error("name", "Give the configuration a name (any).")
        elif (Service.objects.for_organization(self.organization)
              .filter(name__iexact=data["name"])
              .exclude(pk=getattr(self.instance, "pk", None)).exists()):
            self.add_error("name", "A configuration with this name already exists.")

        for field, label in (("tenant_id", "Tenant ID"), ("client_id", "Client ID")):
            try:
                data[field] = parse_guid(data.get(field), label)
            except ValidationError as error:
                self.add_error(field, error)

        try:
            data["certificate"] = self._certificate(data)
        except ValidationError as error:
            self.add_error("certificate_file", error)
            data["certificate"] = None

        has_secret = bool(data.get("client_secret")) or bool(
            self.instance and self.instance.has_client_secret)
        has_certificate = data.get("certificate") is not None or bool(
            self.instance and self.instance.has_certificate)
        if not self.errors and not (has_secret or has_certificate):
            self.add_error("client_secret", "Enter the Client Secret, or give the Private "
                                            "Certificate with its password (or both).")

        self._clean_cloud(data)
        return data

    def _clean_cloud(self, data):
        if data.get("cloud") != Service.Cloud.CUSTOM:
            data["authority_host"] = data["graph_base_url"] = data["ca_certificate"] = ""
            return
        for field, label in (("authority_host", "Authority host"),
                             ("graph_base_url", "Graph base URL")):
            if not data.get(field):
                self.add_error(field, f"{label} is required for a custom cloud.")
                continue
            try:
                data[field] = _https_url(data[field].strip(), label)
            except ValidationError as error:
                self.add_error(field, error)
        try:
            data["ca_certificate"] = parse_ca_certificates(data.get("ca_certificate", ""))
        except ValidationError as error:
            self.add_error("ca_certificate", error)


class GraphIdsField(forms.MultipleChoiceField):
    """Graph user ids ticked in the list; checked against the directory in the form."""

    def valid_value(self, value):
        return 0 < len(value) <= 64


class ImportUsersForm(forms.Form):
    graph_ids = GraphIdsField(required=False)
    include_disabled = forms.BooleanField(required=False, label="Include disabled users")
    include_unlicensed = forms.BooleanField(required=False, label="Include unlicensed users")
    include_guests = forms.BooleanField(required=False, label="Include guests (#EXT#)")

    def __init__(self, *args, service, **kwargs):
        super().__init__(*args, **kwargs)
        self.service = service

    def clean_graph_ids(self):
        ids = set(self.cleaned_data["graph_ids"])
        known = set(self.service.directory_users.filter(graph_id__in=ids)
                    .values_list("graph_id", flat=True))
        if ids - known:
            raise ValidationError("Some chosen users are not in this configuration's directory; "
                                  "reload the page and choose again.")
        return sorted(ids)

    def options(self) -> dict:
        options = {k: v for k, v in self.cleaned_data.items() if k != "graph_ids" and v}
        if self.cleaned_data["graph_ids"]:
            options["graph_ids"] = self.cleaned_data["graph_ids"]
        return options


class DirectoryFilterForm(forms.Form):
    q = forms.CharField(label="Search", required=False, max_length=200)
    domain = forms.CharField(label="Domain", required=False, max_length=200)
    status = forms.ChoiceField(required=False, choices=[
        ("", "Any status"), ("enabled", "Enabled"), ("disabled", "Disabled"),
        ("guest", "Guests"), ("removed", "Removed from Microsoft 365")])
    licensed = forms.ChoiceField(required=False, choices=[
        ("", "Licensed or not"), ("yes", "Licensed"), ("no", "Unlicensed")])
    imported = forms.ChoiceField(label="Kodo account", required=False, choices=[
        ("", "With or without"), ("yes", "Has a Kodo account"), ("no", "No Kodo account")])

    def filter(self, rows):
        if not self.is_valid():
            return rows
        data = self.cleaned_data
        if data["q"]:
            rows = rows.filter(Q(display_name__icontains=data["q"])
                               | Q(mail__icontains=data["q"])
                               | Q(user_principal_name__icontains=data["q"]))
        if data["domain"]:
            domain = data["domain"].strip().lstrip("@")
            rows = rows.filter(Q(mail__iendswith="@" + domain)
                               | Q(user_principal_name__iendswith="@" + domain))
        status = data["status"]
        if status == "enabled":
            rows = rows.filter(account_enabled=True, removed_at__isnull=True)
        elif status == "disabled":
            rows = rows.filter(account_enabled=False)
        elif status == "guest":
            rows = rows.filter(is_guest=True)
        elif status == "removed":
            rows = rows.filter(removed_at__isnull=False)
        if data["licensed"]:
            rows = rows.filter(licensed=data["licensed"] == "yes")
        if data["imported"]:
            rows = rows.filter(account__isnull=data["imported"] == "no")
        return rows


class AutoSyncForm(forms.Form):
    auto_sync_enabled = forms.BooleanField(required=False,
                                           label="Automatically synchronize accounts")
    auto_sync_time = forms.TimeField(label="Daily at", required=False,
                                     widget=forms.TimeInput(attrs={"type": "time"}))
    auto_sync_time_zone = forms.ChoiceField(label="Time zone", choices=time_zone_choices)

    def clean(self):
        data = super().clean()
        if data.get("auto_sync_enabled") and not data.get("auto_sync_time"):
            self.add_error("auto_sync_time", "Choose the time of the daily synchronization.")
        return data
