import functools
import json
import uuid
from typing import cast

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.forms.utils import flatatt
from django.utils.html import format_html, format_html_join
from django.views.decorators.debug import sensitive_variables

from kodo import crypto
from o365.clouds import JSON_NAMES, parse_host_patterns
from o365.kodo_settings import MAX_SETTINGS_BYTES, decode_pfx_base64, parse_kodo_settings
from o365.models import Cloud, Configuration, default_cloud_for
from o365.validators import (
    MAX_PFX_BYTES,
    load_certificate,
    parse_ca_certificates,
    parse_guid,
    parse_https_url,
)
from organizations.forms import IdsChoiceField, SingleLineField
from organizations.models import Organization, time_zone_choices

SECRET_WIDGET = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})
CUSTOM_JSON_CLOUD = "custom"  # m365sim writes it: "the cloud chosen in the form"
# Secrets never go back to the browser: after a failed SAVE these fields come back empty.
SECRET_INPUTS = ("client_secret", "certificate_password", "certificate_base64")
ENTER_AGAIN = "Enter it again: Kodo never sends a secret back to the browser."
CHOOSE_AGAIN = (
    "Choose the file again (or type its secrets): a file and the secrets it filled are not "
    "kept after a failed SAVE."
)


class SecretTextarea(forms.Textarea):
    """A textarea that never renders its value back (the PFX's base64 holds the private key)."""

    def format_value(self, value):
        return None


def _read_upload(upload, limit: int, label: str) -> bytes:
    if upload.size > limit:
        raise ValidationError(f"{label} is larger than {limit // 1024} KB. Is it the right file?")
    return upload.read()


class ConfigurationForm(forms.Form):
    """+ ADD CONFIGURATION and edit: values typed in, or read from KodoADSettings.json.

    The cloud is one of those the server administrator enabled for the organization (the
    organization's default preselected); where it signs in and calls Graph is the cloud's, never
    the admin's or the file's. Secrets are never shown again: on edit, a blank secret field keeps
    the stored value -- unless the cloud, tenant ID or client ID change: then the stored secret
    and certificate are dropped and must be given again."""

    name = SingleLineField(
        max_length=200, required=False, help_text="Any name, e.g. the tenant's domain."
    )
    settings_file = forms.FileField(
        label="KodoADSettings.json",
        required=False,
        help_text="The file Register-KodoApp.ps1 wrote: choosing it fills the fields below, in "
        "your browser (nothing is sent before SAVE).",
        widget=forms.ClearableFileInput(
            attrs={"accept": ".json,application/json", "data-kodo-settings": ""}
        ),
    )
    tenant_id = forms.CharField(label="Tenant ID", max_length=64, required=False)
    client_id = forms.CharField(label="Client ID", max_length=64, required=False)
    client_secret = forms.CharField(
        label="Client Secret", max_length=500, required=False, strip=True, widget=SECRET_WIDGET
    )
    certificate_password = forms.CharField(
        label="Certificate Password",
        max_length=500,
        required=False,
        strip=False,
        widget=SECRET_WIDGET,
    )
    certificate_file = forms.FileField(
        label="Private Certificate",
        required=False,
        help_text="The PFX file (or paste its base64 below).",
        widget=forms.ClearableFileInput(attrs={"accept": ".pfx,.p12"}),
    )
    certificate_base64 = forms.CharField(
        label="Private Certificate (base64)",
        required=False,
        max_length=MAX_PFX_BYTES * 2,
        widget=SecretTextarea(attrs={"rows": 3, "autocomplete": "off"}),
    )
    cloud = forms.ModelChoiceField(
        queryset=Cloud.objects.none(),
        to_field_name="key",
        required=False,
        empty_label=None,
        help_text="The Microsoft cloud of the tenant. Ask the server administrator for another.",
    )

    def __init__(self, *args, organization, instance: Configuration | None = None, **kwargs):
        self.organization = organization
        self.instance = instance
        enabled = Cloud.objects.enabled_for(organization).order_by("created_at", "id")
        self.default_cloud = default_cloud_for(organization)
        if instance is not None:
            kwargs.setdefault(
                "initial",
                {
                    "name": instance.name,
                    "tenant_id": instance.tenant_id,
                    "client_id": instance.client_id,
                    "cloud": instance.cloud.key,
                },
            )
        else:
            kwargs.setdefault(
                "initial", {"cloud": self.default_cloud.key if self.default_cloud else None}
            )
        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["cloud"]).queryset = enabled
        # KodoADSettings.json's `Cloud` names -> cloud keys, for static/js/configuration.js
        self.fields["cloud"].widget.attrs["data-json-names"] = json.dumps(
            {**JSON_NAMES, CUSTOM_JSON_CLOUD: ""}
        )
        if instance is not None:
            keep = (
                "Leave blank to keep the stored value. Changing the cloud, tenant ID or "
                "client ID drops it: then enter it again."
            )
            self.fields["client_secret"].help_text = keep if instance.has_client_secret else ""
            self.fields["certificate_password"].help_text = keep if instance.has_certificate else ""

    def _initial_cloud(self):
        key = self.initial.get("cloud")
        return self.fields["cloud"].queryset.filter(key=key).first() if key else None

    @sensitive_variables()
    def _from_file(self, data):
        """Fill what the admin left blank from the uploaded KodoADSettings.json. Its `Cloud`
        names a cloud (Global, USGovernment, China, or a custom cloud's name); "Custom" and the
        m365sim keys AuthorityHost, GraphBaseUrl, CaCertificatePem define nothing here."""
        upload = data.get("settings_file")
        if not upload:
            return
        settings = parse_kodo_settings(
            _read_upload(upload, MAX_SETTINGS_BYTES, "KodoADSettings.json")
        )
        for field, key in (
            ("name", "AppName"),
            ("tenant_id", "TenantId"),
            ("client_id", "ClientId"),
            ("client_secret", "ClientSecret"),
            ("certificate_password", "CertificatePassword"),
            ("certificate_base64", "CertificatePfxBase64"),
        ):
            if not data.get(field) and settings.get(key):
                data[field] = settings.get(key)
        named = settings.get("Cloud")
        if not named or named.strip().lower() == CUSTOM_JSON_CLOUD:
            return
        cloud = Cloud.objects.named(named)
        if cloud is None:
            raise ValidationError(
                f"KodoADSettings.json names an unknown Cloud {named!r}; use Global, USGovernment, "
                "China or the name of a cloud enabled for your organization."
            )
        if data.get("cloud") not in (None, self._initial_cloud()):
            return  # the admin chose a cloud in the form: it wins
        if not self.fields["cloud"].queryset.filter(pk=cloud.pk).exists():
            raise ValidationError(
                f"KodoADSettings.json is for the cloud {cloud.name}, which is not enabled for "
                "your organization. Ask the server administrator to enable it."
            )
        data["cloud"] = cloud

    def _identity_changed(self, data) -> bool:
        """Whether the stored secret and certificate would now be sent to another cloud, tenant
        or app: then they are dropped, never reused."""
        instance = self.instance
        if instance is None:
            return False
        return (
            data.get("cloud") is not None
            and data["cloud"].pk != instance.cloud_id
            or data.get("tenant_id") != instance.tenant_id
            or data.get("client_id") != instance.client_id
        )

    @sensitive_variables()
    def _certificate(self, data):
        """The new certificate, None to keep the stored one, or raise."""
        pfx = b""
        if data.get("certificate_file"):
            pfx = _read_upload(data["certificate_file"], MAX_PFX_BYTES, "The Private Certificate")
        elif data.get("certificate_base64"):
            pfx = decode_pfx_base64(data["certificate_base64"])
        password = data.get("certificate_password", "")
        if (
            not pfx
            and password
            and self.instance is not None
            and self.instance.has_certificate
            and not data["drop_stored_credentials"]
        ):
            pfx = crypto.decrypt(self.instance.certificate_pfx_encrypted)  # a new password
        return load_certificate(pfx, password) if pfx else None

    def _refuse_a_second_configuration(self, data):
        """One configuration per tenant and app (cloud, tenant ID, client ID) in an organization:
        a second one would back the same users up twice."""
        ids = (data.get("tenant_id"), data.get("client_id"))
        if data.get("cloud") is None or not all(isinstance(i, uuid.UUID) for i in ids):
            return
        existing = (
            Configuration.objects.for_organization(self.organization)
            .filter(cloud=data["cloud"], tenant_id=ids[0], client_id=ids[1])
            .exclude(pk=getattr(self.instance, "pk", None))
            .first()
        )
        if existing is not None:
            self.add_error(
                "client_id",
                f'The configuration "{existing.name}" already uses this tenant and app (the '
                "same cloud, Tenant ID and Client ID): a second one would back the same users "
                f'up twice. Edit "{existing.name}" instead.',
            )

    def _certificate_field(self, error: ValidationError) -> str:
        """The field a certificate error concerns: its password, or where the PFX came from."""
        if any("Password" in message for message in error.messages):
            return "certificate_password"
        if self.files.get("certificate_file"):
            return "certificate_file"
        if self.data.get("certificate_base64"):
            return "certificate_base64"
        return "settings_file" if self.files.get("settings_file") else "certificate_file"

    def full_clean(self):
        super().full_clean()
        if self.is_bound and self.errors:
            self._ask_for_secrets_again()

    def _ask_for_secrets_again(self):
        """A failed SAVE keeps what was typed, never the secrets: say which to give again."""
        for field in SECRET_INPUTS:
            if self.data.get(field) and field not in self.errors:
                self.add_error(field, ENTER_AGAIN)
        if self.files.get("settings_file") and "settings_file" not in self.errors:
            self.add_error("settings_file", CHOOSE_AGAIN)
        if self.files.get("certificate_file") and "certificate_file" not in self.errors:
            self.add_error("certificate_file", "Choose the PFX file again: files are not kept.")

    @sensitive_variables()
    def clean(self):
        data = super().clean()
        try:
            self._from_file(data)
        except ValidationError as error:
            self.add_error("settings_file", error)
            return data
        if data.get("cloud") is None and "cloud" not in self.errors:
            data["cloud"] = self.default_cloud
            if data["cloud"] is None:
                self.add_error(
                    "cloud",
                    "No cloud is enabled for your organization. Ask the server administrator.",
                )

        data["name"] = (data.get("name") or "").strip()
        if not data["name"]:
            self.add_error("name", "Give the configuration a name (any).")
        elif (
            Configuration.objects.for_organization(self.organization)
            .filter(name__iexact=data["name"])
            .exclude(pk=getattr(self.instance, "pk", None))
            .exists()
        ):
            self.add_error("name", "A configuration with this name already exists.")

        for field, label in (("tenant_id", "Tenant ID"), ("client_id", "Client ID")):
            try:
                data[field] = parse_guid(data.get(field), label)
            except ValidationError as error:
                self.add_error(field, error)

        self._refuse_a_second_configuration(data)
        data["drop_stored_credentials"] = self._identity_changed(data)
        keep_stored = self.instance is not None and not data["drop_stored_credentials"]
        try:
            data["certificate"] = self._certificate(data)
        except ValidationError as error:
            self.add_error(self._certificate_field(error), error)
            data["certificate"] = None

        has_secret = bool(data.get("client_secret")) or bool(
            keep_stored and self.instance.has_client_secret
        )
        has_certificate = data.get("certificate") is not None or bool(
            keep_stored and self.instance.has_certificate
        )
        if not self.errors and not (has_secret or has_certificate):
            if data["drop_stored_credentials"]:
                self.add_error(
                    "client_secret",
                    "You changed the cloud, tenant ID or client ID: "
                    "enter the Client Secret (or give the Private "
                    "Certificate with its password) again. The stored "
                    "ones are not reused.",
                )
            else:
                self.add_error(
                    "client_secret",
                    "Enter the Client Secret, or give the Private "
                    "Certificate with its password (or both).",
                )
        return data


class GraphIdsField(forms.MultipleChoiceField):
    """Graph user ids ticked in the list; checked against the directory in the form."""

    def valid_value(self, value):
        return 0 < len(value) <= 64 and value.isascii() and value.isprintable()


class ImportUsersForm(forms.Form):
    graph_ids = GraphIdsField(required=False)
    include_disabled = forms.BooleanField(required=False, label="Include disabled users")
    include_unlicensed = forms.BooleanField(required=False, label="Include unlicensed users")
    include_guests = forms.BooleanField(required=False, label="Include guests (#EXT#)")

    def __init__(self, *args, configuration, **kwargs):
        super().__init__(*args, **kwargs)
        self.configuration = configuration

    def clean_graph_ids(self):
        ids = set(self.cleaned_data["graph_ids"])
        known = set(
            self.configuration.directory_users.filter(graph_id__in=ids).values_list(
                "graph_id", flat=True
            )
        )
        if ids - known:
            raise ValidationError(
                "Some chosen users are not in this configuration's directory; "
                "reload the page and choose again."
            )
        return sorted(ids)

    def options(self) -> dict:
        options = {k: v for k, v in self.cleaned_data.items() if k != "graph_ids" and v}
        if self.cleaned_data["graph_ids"]:
            options["graph_ids"] = self.cleaned_data["graph_ids"]
        return options


class DirectoryFilterForm(forms.Form):
    q = forms.CharField(label="Search", required=False, max_length=200)
    domain = forms.CharField(label="Domain", required=False, max_length=200)
    status = forms.ChoiceField(
        required=False,
        choices=[
            ("", "Any status"),
            ("enabled", "Enabled"),
            ("disabled", "Disabled"),
            ("guest", "Guests"),
            ("removed", "Removed from Microsoft 365"),
        ],
    )
    licensed = forms.ChoiceField(
        required=False, choices=[("", "Licensed or not"), ("yes", "Licensed"), ("no", "Unlicensed")]
    )
    imported = forms.ChoiceField(
        label="Kodo account",
        required=False,
        choices=[("", "With or without"), ("yes", "Has a Kodo account"), ("no", "No Kodo account")],
    )

    def filter(self, rows):
        if not self.is_valid():
            return rows
        data = self.cleaned_data
        if data["q"]:
            rows = rows.filter(
                Q(display_name__icontains=data["q"])
                | Q(mail__icontains=data["q"])
                | Q(user_principal_name__icontains=data["q"])
            )
        if data["domain"]:
            domain = data["domain"].strip().lstrip("@")
            rows = rows.filter(
                Q(mail__iendswith="@" + domain) | Q(user_principal_name__iendswith="@" + domain)
            )
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


@functools.cache
def _option_html(choices: tuple) -> tuple[tuple[str, str, str], ...]:
    """Each choice's value, its <option> and its selected <option>, rendered once."""
    return tuple(
        (
            str(value),
            format_html('<option value="{}">{}</option>', value, label),
            format_html('<option value="{}" selected>{}</option>', value, label),
        )
        for value, label in choices
    )


class RenderedOnceSelect(forms.Select):
    """A <select> of many plain choices (the ~600 time zones) whose options are rendered in
    Python once: Django's Select renders a template per option (~30 ms a page for the zones)."""

    def render(self, name, value, attrs=None, renderer=None):
        chosen = set(self.format_value(value))
        options = format_html_join(
            "",
            "{}",
            (
                (selected if option_value in chosen else plain,)
                for option_value, plain, selected in _option_html(tuple(self.choices))
            ),
        )
        attrs = self.build_attrs(self.attrs, attrs)
        return format_html('<select name="{}"{}>{}</select>', name, flatatt(attrs), options)


_time_zone_choices = functools.cache(time_zone_choices)


class AutoSyncForm(forms.Form):
    auto_sync_enabled = forms.BooleanField(
        required=False, label="Automatically synchronize accounts"
    )
    auto_sync_time = forms.TimeField(
        label="Daily at", required=False, widget=forms.TimeInput(attrs={"type": "time"})
    )
    auto_sync_time_zone = forms.ChoiceField(
        label="Time zone", choices=_time_zone_choices, widget=RenderedOnceSelect
    )

    def clean(self):
        data = super().clean()
        if data.get("auto_sync_enabled") and not data.get("auto_sync_time"):
            self.add_error("auto_sync_time", "Choose the time of the daily synchronization.")
        return data


RESERVED_CLOUD_NAMES = {"global", "usgovernment", "usgov", "china", "custom"}


class CloudForm(forms.Form):
    """The server administrator's form for a cloud. A built-in cloud's endpoints are fixed: only
    which organizations may use it (and have it as default) can change."""

    name = SingleLineField(max_length=100)
    authority_host = forms.CharField(
        label="Sign-in (authority) host",
        max_length=200,
        help_text="https://host[:port], e.g. https://127.0.0.1:9443 for m365sim.",
    )
    graph_base_url = forms.CharField(
        label="Graph base URL", max_length=200, help_text="e.g. https://127.0.0.1:9443/v1.0"
    )
    download_hosts = forms.CharField(
        label="Download hosts allowed",
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Where Graph's download and upload links may point, one a line: host[:port] "
        "or *.domain (port 443 unless given), e.g. *.sharepoint.com or "
        "127.0.0.1:9444.",
    )
    ca_certificate = forms.CharField(
        label="CA certificate (PEM)",
        required=False,
        max_length=64 * 1024,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Only when the cloud's TLS certificates are signed by a private CA.",
    )
    private_network_allowed = forms.BooleanField(
        label="Private network allowed",
        required=False,
        help_text="Let Kodo connect to this cloud's hosts on loopback, link-local or private "
        "addresses (a simulator or an on-premises proxy). Leave off for anything on "
        "the internet.",
    )
    all_organizations = forms.BooleanField(label="Enabled for every organization", required=False)
    organizations = IdsChoiceField(
        queryset=None,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Enabled for these organizations",
    )
    default_for = IdsChoiceField(
        queryset=None,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Default cloud of these organizations",
        help_text="The configuration form of these organizations preselects this cloud.",
    )

    ENDPOINT_FIELDS = (
        "name",
        "authority_host",
        "graph_base_url",
        "download_hosts",
        "ca_certificate",
        "private_network_allowed",
    )

    def __init__(self, *args, instance: Cloud | None = None, **kwargs):
        self.instance = instance
        if instance is not None:
            accesses = list(instance.accesses.all())
            kwargs.setdefault(
                "initial",
                {
                    "name": instance.name,
                    "authority_host": instance.authority_host,
                    "graph_base_url": instance.graph_base_url,
                    "download_hosts": instance.download_hosts,
                    "ca_certificate": instance.ca_certificate_pem,
                    "private_network_allowed": instance.private_network_allowed,
                    "all_organizations": instance.all_organizations,
                    "organizations": [a.organization_id for a in accesses],
                    "default_for": [a.organization_id for a in accesses if a.is_default],
                },
            )
        super().__init__(*args, **kwargs)
        for field in ("organizations", "default_for"):
            cast(
                forms.ModelChoiceField, self.fields[field]
            ).queryset = Organization.objects.order_by("name")
        if instance is not None and instance.builtin:
            for field in self.ENDPOINT_FIELDS:
                del self.fields[field]

    def clean_name(self):
        name = " ".join(self.cleaned_data["name"].split())
        if name.replace(" ", "").lower() in RESERVED_CLOUD_NAMES:
            raise ValidationError(
                "This name is reserved for a built-in cloud (KodoADSettings.json "
                "names clouds by name): choose another."
            )
        if (
            Cloud.objects.filter(name__iexact=name)
            .exclude(pk=getattr(self.instance, "pk", None))
            .exists()
        ):
            raise ValidationError("A cloud with this name already exists.")
        return name

    def clean_authority_host(self):
        return parse_https_url(
            self.cleaned_data["authority_host"], "The sign-in host", path_allowed=False
        )

    def clean_graph_base_url(self):
        return parse_https_url(self.cleaned_data["graph_base_url"], "The Graph base URL")

    def clean_download_hosts(self):
        try:
            patterns = parse_host_patterns(self.cleaned_data["download_hosts"])
        except ValueError as error:
            raise ValidationError(str(error)) from None
        if len(patterns) > 50:
            raise ValidationError("Give at most 50 download hosts.")
        return "\n".join(str(p) for p in patterns)

    def clean_ca_certificate(self):
        return parse_ca_certificates(self.cleaned_data["ca_certificate"])

    def clean(self):
        data = super().clean()
        enabled = set(data.get("organizations") or ())
        default_for = set(data.get("default_for") or ())
        if not data.get("all_organizations") and default_for - enabled:
            self.add_error(
                "default_for", "A cloud can be the default only of organizations it is enabled for."
            )
        return data
