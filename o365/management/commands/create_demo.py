import json
import os
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.urls import reverse

from kodo import devenv
from m365sim import certs
from m365sim.running import SIGNIN_APPS_FILE
from m365sim.simulator import DEMO_USER_PASSWORD, Simulator
from o365.models import Cloud, CloudAccess
from organizations.models import Membership, Organization

SERVER_ADMIN = "admin@kodo.example"
ORG_ADMIN = "admin@demo.example"
DEMO_ORGANIZATION = "Demo Organization"
SIM_CLOUD = "m365sim"


class Command(BaseCommand):
    help = "Create the demo server administrator and a demo organization with an admin, if absent."

    def add_arguments(self, parser):
        parser.add_argument(
            "--password", default="kodo-demo-password", help="Password for new demo accounts."
        )
        # where the Procfile starts m365sim
        parser.add_argument("--sim-state-dir", default="var/m365sim")
        parser.add_argument("--sim-host", default="127.0.0.1")
        parser.add_argument("--sim-port", type=int, default=9443)
        parser.add_argument("--sim-download-port", type=int, default=9444)

    @transaction.atomic
    def handle(
        self, *args, password, sim_state_dir, sim_host, sim_port, sim_download_port, **options
    ):
        users = get_user_model().objects
        if not users.filter(username=SERVER_ADMIN).exists():
            users.create_superuser(
                username=SERVER_ADMIN,
                email=SERVER_ADMIN,
                password=password,
                first_name="Server",
                last_name="Administrator",
            )
        org, _ = Organization.objects.get_or_create(
            name=DEMO_ORGANIZATION, defaults={"services_enabled": True, "time_zone": "UTC"}
        )
        admin = users.filter(username=ORG_ADMIN).first()
        if admin is None:
            admin = users.create_user(
                username=ORG_ADMIN,
                email=ORG_ADMIN,
                password=password,
                first_name="Demo",
                last_name="Admin",
            )
        Membership.objects.get_or_create(
            user=admin, organization=org, defaults={"role": Membership.Role.ADMIN}
        )
        state_dir = Path(settings.BASE_DIR) / sim_state_dir
        self.register_simulator(org, state_dir, sim_host, sim_port, sim_download_port)
        self.stdout.write(
            f"  Server administrator: {SERVER_ADMIN} / {password}\n"
            f"  Organization admin:   {ORG_ADMIN} / {password}  ({org.name})"
        )
        self.register_signin_app(state_dir, sim_host, sim_port)

    def register_signin_app(self, state_dir, host, port):
        """Sign in with Microsoft for the demo: the server app (its id and secret in
        var/kodo.env, added there once) registered in m365sim's state, which m365sim reads when
        it starts; the reply URL is this portal's, on any loopback port."""
        if settings.ENV_FILE is None or Path(settings.ENV_FILE) != Path(settings.DEV_ENV_FILE):
            return  # only `make run`'s development settings are changed
        netloc = f"[{host}]" if ":" in host else host
        values = devenv.ensure_microsoft_signin(
            Path(settings.ENV_FILE), authority=f"https://{netloc}:{port}"
        )
        callback = reverse("organizations:microsoft-callback")
        app = {
            "name": "Kodo (demo sign-in)",
            "client_id": values["KODO_MICROSOFT_SIGNIN_CLIENT_ID"],
            "client_secret": values["KODO_MICROSOFT_SIGNIN_CLIENT_SECRET"],
            "redirect_uris": list(
                dict.fromkeys(
                    [
                        settings.KODO_BASE_URL.rstrip("/") + callback,
                        f"http://127.0.0.1{callback}",  # a loopback URL matches any port
                        f"http://localhost{callback}",
                    ]
                )
            ),
        }
        path = state_dir / SIGNIN_APPS_FILE
        with os.fdopen(os.open(path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600), "w") as f:
            json.dump([app], f, indent=2)
        tenant = Simulator.demo().tenants[0]
        person = tenant.users[1]
        self.stdout.write(
            f"  Sign in with Microsoft: once {ORG_ADMIN} has added the demo tenant's "
            f"configuration (var/KodoADSettings.json) and imported its users, "
            f"{person.upn} / {DEMO_USER_PASSWORD} signs in with Microsoft (any user of "
            f"{tenant.domain} does: the m365sim sign-in page lists them)."
        )

    def register_simulator(self, org, state_dir, host, port, download_port):
        """m365sim as a custom cloud (on loopback: private network allowed; its CA, created
        here if m365sim has not run yet), enabled for the demo organization and its default, so
        a configuration typed in with Tenant ID, Client ID and Client Secret only works."""
        state_dir.mkdir(parents=True, exist_ok=True)
        _, _, ca_path = certs.ensure_ca(state_dir)
        netloc = f"[{host}]" if ":" in host else host
        cloud, _ = Cloud.objects.update_or_create(
            key=SIM_CLOUD,
            defaults={
                "name": SIM_CLOUD,
                "authority_host": f"https://{netloc}:{port}",
                "graph_base_url": f"https://{netloc}:{port}/v1.0",
                "download_hosts": f"{netloc}:{download_port}",
                "ca_certificate_pem": Path(ca_path).read_text(),
                "private_network_allowed": True,
            },
        )
        CloudAccess.objects.filter(organization=org, is_default=True).exclude(cloud=cloud).update(
            is_default=False
        )
        CloudAccess.objects.update_or_create(
            cloud=cloud, organization=org, defaults={"is_default": True}
        )
