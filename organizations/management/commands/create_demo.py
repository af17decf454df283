from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from organizations.models import Membership, Organization

SERVER_ADMIN = "admin@kodo.example"
ORG_ADMIN = "admin@demo.example"
DEMO_ORGANIZATION = "Demo Organization"


class Command(BaseCommand):
    help = "Create the demo server administrator and a demo organization with an admin, if absent."

    def add_arguments(self, parser):
        parser.add_argument("--password", default="kodo-demo-password",
                            help="Password for new demo accounts.")

    @transaction.atomic
    def handle(self, *args, password, **options):
        users = get_user_model().objects
        if not users.filter(username=SERVER_ADMIN).exists():
            users.create_superuser(username=SERVER_ADMIN, email=SERVER_ADMIN, password=password,
                                   first_name="Server", last_name="Administrator")
        org, _ = Organization.objects.get_or_create(
            name=DEMO_ORGANIZATION, defaults={"services_enabled": True, "time_zone": "UTC"}
        )
        admin = users.filter(username=ORG_ADMIN).first()
        if admin is None:
            admin = users.create_user(username=ORG_ADMIN, email=ORG_ADMIN, password=password,
                                      first_name="Demo", last_name="Admin")
        Membership.objects.get_or_create(
            user=admin, organization=org, defaults={"role": Membership.Role.ADMIN}
        )
        self.stdout.write(
            f"  Server administrator: {SERVER_ADMIN} / {password}\n"
            f"  Organization admin:   {ORG_ADMIN} / {password}  ({org.name})"
        )
