"""manage.py add_configuration: + ADD CONFIGURATION from the command line, so that onboarding an
organization (a service provider's hundred customers) can be scripted end to end.

The file goes through the portal's own form (o365.forms.ConfigurationForm, which reads it with
o365.kodo_settings), so the command accepts and refuses exactly what SAVE does; the secret and
the certificate are encrypted as there and never printed."""

from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand, CommandError

from o365 import actions
from o365.forms import CHOOSE_AGAIN, ENTER_AGAIN, ConfigurationForm
from o365.kodo_settings import MAX_SETTINGS_BYTES
from o365.models import Cloud
from organizations.commands import organization_from_argument

AUDIT_ACTOR = "manage.py add_configuration"


class Command(BaseCommand):
    help = (
        "Add an Office 365 configuration to an organization from the KodoADSettings.json "
        "Register-KodoApp.ps1 wrote (the portal's + ADD CONFIGURATION)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--organization", required=True, help="Name or code.")
        parser.add_argument(
            "--from",
            dest="settings_file",
            required=True,
            metavar="KodoADSettings.json",
            help="The file Register-KodoApp.ps1 wrote.",
        )
        parser.add_argument("--name", default="", help="Default: AppName in the file.")
        parser.add_argument(
            "--cloud",
            default="",
            help="The cloud's name (Global, USGovernment, China or a custom cloud enabled for "
            "the organization). Default: the file's Cloud, else the organization's default.",
        )

    def handle(self, *args, **options):
        organization = organization_from_argument(options["organization"])
        if not organization.services_enabled:
            raise CommandError(
                f"Services are not enabled for {organization.name}. Enable them first (server "
                "administrator: Organizations → the organization → Services)."
            )
        form = ConfigurationForm(
            {"name": options["name"], "cloud": self._cloud_key(options["cloud"])},
            {"settings_file": _upload(Path(options["settings_file"]))},
            organization=organization,
        )
        if not form.is_valid():
            raise CommandError("The configuration was not added:\n" + "\n".join(_problems(form)))
        configuration = actions.do_create_configuration(
            request=None,
            organization=organization,
            data=form.cleaned_data,
            actor_email=AUDIT_ACTOR,
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Added the configuration {configuration.name} to {organization.name}."
            )
        )
        self.stdout.write(f"Code: {configuration.code}")
        self.stdout.write(
            f"Cloud: {configuration.cloud.name}. Next: TEST CONNECTION, then IMPORT USERS "
            f"(manage.py import_users --organization {organization.code})."
        )

    @staticmethod
    def _cloud_key(name: str) -> str:
        """The form's cloud field takes a key; the command, like the file, takes a name."""
        if not name.strip():
            return ""
        cloud = Cloud.objects.named(name) or Cloud.objects.filter(key=name.strip()).first()
        if cloud is None:
            raise CommandError(
                f"No cloud is named {name!r}: use Global, USGovernment, China or the name of a "
                "cloud enabled for the organization."
            )
        return cloud.key


def _upload(path: Path) -> SimpleUploadedFile:
    """The file as the form receives an upload: at most one byte more than the form accepts,
    so that a huge file is refused by the form's own message without being read whole."""
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_SETTINGS_BYTES + 1)
    except OSError as error:
        raise CommandError(f"Cannot read {path}: {error.strerror or error}.") from None
    return SimpleUploadedFile("KodoADSettings.json", raw, content_type="application/json")


def _problems(form) -> list[str]:
    """The form's messages, less those that ask a browser to send its file or secrets again."""
    lines = []
    for field, messages in form.errors.items():
        label = form[field].label if field in form.fields else ""
        for message in messages:
            if message in (CHOOSE_AGAIN, ENTER_AGAIN):
                continue
            lines.append(f"  {label}: {message}" if label else f"  {message}")
    return lines
