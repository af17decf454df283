"""Row builders shared by the tests: accounts, configurations (with their PFX certificates and
KodoADSettings.json), clouds, directory users, backup runs and schedules.

The shared world (organizations A and B, their admins) is the `world` fixture in tests/conftest.py;
the builders here take an organization or a configuration and return saved rows."""

import base64
import datetime as dt
import json
import os
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from django.contrib.auth import get_user_model
from django.utils import timezone

from backups.models import BackupRun
from o365.models import Cloud, CloudAccess, Configuration, DirectoryUser
from o365.validators import load_certificate
from organizations.models import Membership
from schedules.beat import sync_beat_entry
from schedules.models import Schedule

PASSWORD = "correct-horse-battery-staple"
SECRET = "Qx58Q~SuperSecretValue-0123456789abcdefXYZ"
PFX_PASSWORD = "pfx-Pa55word!"


# ----- accounts -----------------------------------------------------------------------------


def make_account(email, organization=None, role=Membership.Role.ADMIN, **extra):
    """A person who logs in with `email` and PASSWORD, a member of `organization` if given."""
    user = get_user_model().objects.create_user(
        username=email, email=email, password=PASSWORD, **extra
    )
    if organization is not None:
        Membership.objects.create(user=user, organization=organization, role=role)
    return user


# ----- configurations -----------------------------------------------------------------------


def make_pfx(password=PFX_PASSWORD, days=730, key_type="rsa", with_key=True) -> bytes:
    key = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if key_type == "rsa"
        else ec.generate_private_key(ec.SECP256R1())
    )
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Kodo Backup")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    encryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password
        else serialization.NoEncryption()
    )
    return pkcs12.serialize_key_and_certificates(
        b"kodo", key if with_key else None, certificate, None, encryption
    )


def kodo_settings_json(**overrides) -> bytes:
    pfx = make_pfx()
    values = {
        "AppName": "Kodo Backup",
        "TenantId": str(uuid.uuid4()),
        "ClientId": str(uuid.uuid4()),
        "ClientSecret": SECRET,
        "CertificatePassword": PFX_PASSWORD,
        "CertificatePfxBase64": base64.b64encode(pfx).decode(),
        "CertificateThumbprint": load_certificate(pfx, PFX_PASSWORD).thumbprint,
        "CertificateNotAfter": "2028-11-27T03:38:00Z",
    }
    values.update(overrides)
    return json.dumps({k: v for k, v in values.items() if v is not None}).encode()


def make_configuration(organization, name="Contoso", secret=SECRET, **fields) -> Configuration:
    """A configuration of `organization` with a client secret and random IDs (no simulator)."""
    configuration = Configuration(
        organization=organization,
        name=name,
        tenant_id=uuid.uuid4(),
        client_id=uuid.uuid4(),
        **fields,
    )
    configuration.set_client_secret(secret)
    configuration.save()
    return configuration


def sim_cloud(running, organization=None, *, default=False) -> Cloud:
    """The running m365sim as a custom cloud (loopback: private network allowed, its CA, its
    download host), enabled for `organization` (and its default, if asked)."""
    cloud, _ = Cloud.objects.update_or_create(
        authority_host=running.info["authority_host"],
        defaults={
            "graph_base_url": running.info["graph_base"],
            "download_hosts": urlsplit(running.info["download_base"]).netloc,
            "ca_certificate_pem": Path(running.info["ca_file"]).read_text(),
            "private_network_allowed": True,
        },
        create_defaults={
            "name": f"m365sim {running.info['authority_host']}",
            "key": f"m365sim-{urlsplit(running.info['authority_host']).port}",
            "graph_base_url": running.info["graph_base"],
            "download_hosts": urlsplit(running.info["download_base"]).netloc,
            "ca_certificate_pem": Path(running.info["ca_file"]).read_text(),
            "private_network_allowed": True,
        },
    )
    if organization is not None:
        CloudAccess.objects.update_or_create(
            cloud=cloud, organization=organization, defaults={"is_default": default}
        )
    return cloud


def sim_configuration(
    organization, running, app_name="Kodo Backup", certificate=False, name=None
) -> Configuration:
    """A configuration of `organization` pointing at a running m365sim tenant's app (named
    `name`, by default the app's name)."""
    tenant = running.info["tenants"][0]
    app = next(a for a in tenant["apps"] if a["name"] == app_name)
    configuration = Configuration(
        organization=organization,
        name=name or app_name,
        tenant_id=uuid.UUID(tenant["tenant_id"]),
        client_id=uuid.UUID(app["client_id"]),
        cloud=sim_cloud(running, organization),
    )
    if certificate:
        pfx = Path(app["pfx_path"]).read_bytes()
        configuration.set_certificate(
            load_certificate(pfx, app["pfx_password"]), app["pfx_password"]
        )
    else:
        configuration.set_client_secret(app["client_secret"])
    configuration.save()
    return configuration


# ----- directory users ----------------------------------------------------------------------


def make_users(organization, count, configuration=None):
    """`count` directory users of `configuration` (default: a new one of `organization`)."""
    configuration = configuration or make_configuration(
        organization, name=f"Tenant {uuid.uuid4().hex[:6]}"
    )
    return [
        DirectoryUser.objects.create(
            configuration=configuration,
            graph_id=str(uuid.uuid4()),
            user_principal_name=f"u{i}@alpha.example",
            display_name=f"User {i}",
        )
        for i in range(count)
    ]


def mirror(configuration, count, prefix="u"):
    """`count` directory users of `configuration` with a OneDrive, in one query. Their ids are
    GUIDs, as Microsoft's are (the pages' URLs take them as UUIDs)."""
    return DirectoryUser.objects.bulk_create(
        DirectoryUser(
            configuration=configuration,
            graph_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{configuration.pk}/{prefix}-{i}")),
            user_principal_name=f"{prefix}{i}@alpha.example",
            mail=f"{prefix}{i}@alpha.example",
            display_name=f"{prefix.upper()} {i}",
            onedrive="yes",
            drive_id=f"b!{prefix}{i}",
        )
        for i in range(count)
    )


def mirror_users(configuration, sim):
    """The simulator's users as directory users of `configuration`, in the simulator's order."""
    return [
        DirectoryUser.objects.create(
            configuration=configuration,
            graph_id=u["id"],
            user_principal_name=u["userPrincipalName"],
            mail=u["mail"] or "",
            display_name=u["displayName"],
        )
        for u in sim.list_users()
    ]


def mirror_one(tenant, name):
    """A new simulator user with an empty OneDrive, mirrored into the configuration of `tenant`
    (the `tenant` fixture of tests/backups/conftest.py)."""
    info = tenant.sim.add_user(upn=name)
    return DirectoryUser.objects.create(
        configuration=tenant.configuration,
        graph_id=info["id"],
        user_principal_name=info["userPrincipalName"],
        mail=info["mail"] or "",
        display_name=info["displayName"],
    )


# ----- runs and schedules -------------------------------------------------------------------


def make_finished_run(user, **fields):
    """A finished backup run of `user` (succeeded unless `status` says otherwise)."""
    fields.setdefault("status", BackupRun.Status.SUCCEEDED)
    return BackupRun.objects.create(
        organization_id=user.configuration.organization_id,
        configuration=user.configuration,
        directory_user=user,
        started_at=timezone.now(),
        finished_at=timezone.now(),
        **fields,
    )


def make_schedule(organization, configuration=None, **fields):
    """A daily schedule at 22:00 UTC (its beat entry synced) of `configuration` (default: new)."""
    configuration = configuration or make_configuration(organization)
    values = {
        "name": "Nightly",
        "time": dt.time(22, 0),
        "time_zone": "UTC",
        "start_date": dt.date(2026, 1, 1),
    }
    values.update(fields)
    schedule = Schedule.objects.create(
        organization=organization, configuration=configuration, **values
    )
    sync_beat_entry(schedule)
    return schedule


def wizard_values(configuration, **overrides) -> dict:
    """What the schedule wizard posts for a valid daily schedule of `configuration`: the fields
    of every step (the test adds "step" and "action")."""
    return {
        "name": "Nightly",
        "configuration": configuration.pk,
        "scope": "all",
        "frequency": "daily",
        "time": "23:15",
        "every_hours": "6",
        "start_date": "2026-12-01",
        "time_zone": "Europe/Warsaw",
        "keep_versions": "10",
        "keep_deleted_for": "6",
        "keep_deleted_unit": "months",
        "notify": "failure",
        **overrides,
    }


# ----- a drive's history, made directly in the database -------------------------------------


class DriveHistory:
    """One user's OneDrive as the backup engine would have recorded it, run by run, without
    Microsoft 365 or a store: `run()` starts the next (finished) run, and the changes after it
    are recorded as that run's, the way the engine records them (an edit or a move ends the
    current version and starts a new one; a folder moved or deleted takes everything below it
    along; a second change of an item in the same run amends that run's version).

        history = make_drive_history(user)
        history.run()
        history.add("/Documents", folder=True)
        history.add("/Documents/a.txt", size=10)
        history.run()
        history.move("/Documents", "/Docs")
        history.delete("/Docs/a.txt")
    """

    def __init__(self, user, drive_id="", root_item_id="root", start=None):
        from backups.models import DriveState

        self.user = user
        self.organization_id = user.configuration.organization_id
        self.state = DriveState.objects.create(
            organization_id=self.organization_id,
            directory_user=user,
            drive_id=drive_id or f"b!{uuid.uuid4().hex[:12]}",
            root_item_id=root_item_id,
        )
        self.runs: list = []
        self.current: dict = {}  # path -> current FileVersion
        self.start = start or dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)
        self._ids = 0

    def run(self, status=BackupRun.Status.SUCCEEDED, finished_at=None):
        """The next run (one hour after the previous one unless `finished_at` says)."""
        finished_at = finished_at or self.start + dt.timedelta(hours=len(self.runs))
        run = BackupRun.objects.create(
            organization_id=self.organization_id,
            configuration=self.user.configuration,
            directory_user=self.user,
            status=status,
            started_at=finished_at - dt.timedelta(minutes=5),
            finished_at=finished_at,
        )
        self.runs.append(run)
        return run

    @property
    def last_run(self):
        assert self.runs, "call run() first"
        return self.runs[-1]

    def _parent_id(self, path):
        parent = path.rsplit("/", 1)[0]
        if not parent:
            return self.state.root_item_id
        return self.current[parent].item_id

    def _new(self, path, **fields):
        from backups.models import FileVersion

        self._ids += 1
        values = {
            "item_id": f"item-{self._ids}",
            "size": 0,
            "quickxorhash": "",
            "modified_datetime": self.last_run.finished_at - dt.timedelta(hours=1),
        }
        values.update(fields)
        return FileVersion(
            organization_id=self.organization_id,
            drive=self.state,
            parent_id=self._parent_id(path),
            path=path,
            name=path.rsplit("/", 1)[1],
            first_run=self.last_run,
            **values,
        )

    def add(self, path, *, folder=False, size=0, **fields):
        """A new item at `path` (its folder must exist)."""
        fields.setdefault(
            "quickxorhash", "" if folder else base64.b64encode(os.urandom(20)).decode()
        )
        version = self._new(path, is_folder=folder, size=0 if folder else size, **fields)
        version.save()
        self.current[path] = version
        return version

    def add_many(self, folder, count, *, name="file {:05}.txt", size=1, folders=0):
        """`folders` subfolders then `count` files in `folder` ("/" for the top), bulk-inserted."""
        from backups.models import FileVersion

        base = "" if folder == "/" else folder
        made = [
            self._new(f"{base}/{('folder ' + name).format(i)}", is_folder=True)
            for i in range(folders)
        ] + [self._new(f"{base}/{name.format(i)}", size=size) for i in range(count)]
        made = FileVersion.objects.bulk_create(made)
        for version in made:
            self.current[version.path] = version
        return made

    def _end(self, version, *, deleted=False):
        """End `version` at this run; False when this run made it (it is amended instead)."""
        if version.first_run_id == self.last_run.pk and not deleted:
            return False
        if version.first_run_id == self.last_run.pk:
            version.delete()  # seen and deleted within one run: never a restore point's
            return True
        version.end_run = self.last_run
        version.deleted = deleted
        version.save(update_fields=["end_run", "deleted"])
        return True

    def _successor(self, version, path, **changes):
        """The next version of `version`'s item: at `path`, with `changes`."""
        from backups.models import FileVersion

        if not self._end(version):
            for name, value in changes.items():
                setattr(version, name, value)
            version.path, version.name = path, path.rsplit("/", 1)[1]
            version.parent_id = self._parent_id(path)
            version.save()
            return version
        fields = {
            f.attname: getattr(version, f.attname)
            for f in FileVersion._meta.concrete_fields
            if f.attname not in ("id", "end_run_id", "deleted", "first_run_id", "damage")
        }
        fields.update(
            path=path,
            name=path.rsplit("/", 1)[1],
            parent_id=self._parent_id(path),
            first_run_id=self.last_run.pk,
            **changes,
        )
        return FileVersion.objects.create(**fields)

    def edit(self, path, *, size, **changes):
        """New content for the file at `path`."""
        changes.setdefault("quickxorhash", base64.b64encode(os.urandom(20)).decode())
        changes.setdefault("modified_datetime", self.last_run.finished_at)
        old = self.current.pop(path)
        self.current[path] = self._successor(old, path, size=size, **changes)
        return self.current[path]

    def move(self, path, new_path):
        """Rename or move `path` (and, for a folder, everything below it)."""
        below = sorted(p for p in self.current if p.startswith(path + "/"))
        old = self.current.pop(path)
        self.current[new_path] = self._successor(old, new_path)
        for child in below:
            moved = new_path + child[len(path) :]
            self.current[moved] = self._successor(self.current.pop(child), moved)
        return self.current[new_path]

    def delete(self, path):
        """Delete `path` (and everything below it)."""
        for gone in sorted(
            (p for p in self.current if p == path or p.startswith(path + "/")), reverse=True
        ):
            self._end(self.current.pop(gone), deleted=True)


def make_drive_history(user, **options) -> DriveHistory:
    """A drive of `user` to fill run by run (DriveHistory)."""
    return DriveHistory(user, **options)
