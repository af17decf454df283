"""Clouds become a server-level list: built-in Global, US Government and China, and custom clouds
defined by the server administrator and enabled per organization.

Existing configurations keep their cloud. Each distinct custom endpoint (authority host, Graph
base URL, CA) of the old per-configuration "Custom" cloud becomes a custom cloud, enabled for the
organizations that used it. It may use private networks only when both its hosts are loopback
(localhost, 127.0.0.0/8, ::1): that is a simulator on the same machine; anything else must be
marked private by the server administrator. No download host is allowed for it until the server
administrator adds them (Graph's own host excepted).
"""

import ipaddress
import uuid
from urllib.parse import urlsplit

import django.db.models.deletion
from django.db import migrations, models
from django.utils.text import slugify

import o365.models

BUILTINS = {"global": "Global", "usgov": "US Government", "china": "China"}


def _loopback(url):
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _unique(model, field, value, limit):
    base, n = value[:limit], 1
    while model.objects.filter(**{field: value}).exists():
        n += 1
        suffix = f"-{n}" if field == "key" else f" ({n})"
        value = base[:limit - len(suffix)] + suffix
    return value


def forwards(apps, schema_editor):
    Cloud = apps.get_model("o365", "Cloud")
    CloudAccess = apps.get_model("o365", "CloudAccess")
    Service = apps.get_model("o365", "Service")
    builtins = {}
    for key, name in BUILTINS.items():
        builtins[key], _ = Cloud.objects.get_or_create(
            key=key, defaults={"name": name, "all_organizations": True, "code": uuid.uuid4()})
    customs = {}
    for service in Service.objects.order_by("pk"):
        if service.cloud in builtins:
            service.cloud_ref = builtins[service.cloud]
        else:
            triple = (service.authority_host.rstrip("/"), service.graph_base_url.rstrip("/"),
                      service.ca_certificate_pem.strip())
            cloud = customs.get(triple)
            if cloud is None:
                netloc = urlsplit(triple[0]).netloc or "unknown"
                name = _unique(Cloud, "name", f"Custom {netloc}", 100)
                cloud = customs[triple] = Cloud.objects.create(
                    code=uuid.uuid4(), key=_unique(Cloud, "key", slugify(name) or "custom", 60),
                    name=name, authority_host=triple[0], graph_base_url=triple[1],
                    ca_certificate_pem=service.ca_certificate_pem,
                    private_network_allowed=_loopback(triple[0]) and _loopback(triple[1]))
            CloudAccess.objects.get_or_create(cloud=cloud, organization_id=service.organization_id)
            service.cloud_ref = cloud
        service.save(update_fields=["cloud_ref"])


def backwards(apps, schema_editor):
    Service = apps.get_model("o365", "Service")
    for service in Service.objects.select_related("cloud_ref"):
        cloud = service.cloud_ref
        if cloud.key in BUILTINS:
            service.cloud = cloud.key
        else:
            service.cloud = "custom"
            service.authority_host = cloud.authority_host
            service.graph_base_url = cloud.graph_base_url
            service.ca_certificate_pem = cloud.ca_certificate_pem
        service.save(update_fields=["cloud", "authority_host", "graph_base_url",
                                    "ca_certificate_pem"])


class Migration(migrations.Migration):

    dependencies = [
        ("o365", "0001_initial"),
        ("organizations", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="Cloud",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("code", models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                ("key", models.SlugField(help_text="global, usgov, china for the built-in clouds.",
                                         max_length=60, unique=True)),
                ("name", models.CharField(max_length=100, unique=True)),
                ("authority_host", models.CharField(blank=True, max_length=200,
                                                    verbose_name="Sign-in (authority) host")),
                ("graph_base_url", models.CharField(blank=True, max_length=200,
                                                    verbose_name="Graph base URL")),
                ("download_hosts", models.TextField(blank=True,
                                                    verbose_name="Download hosts allowed")),
                ("ca_certificate_pem", models.TextField(blank=True, verbose_name="CA certificate")),
                ("private_network_allowed", models.BooleanField(default=False)),
                ("all_organizations", models.BooleanField(
                    default=False, verbose_name="Enabled for every organization")),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={"ordering": ["created_at", "id"]},
        ),
        migrations.CreateModel(
            name="CloudAccess",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("is_default", models.BooleanField(default=False)),
                ("cloud", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                            related_name="accesses", to="o365.cloud")),
                ("organization", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                                   related_name="cloud_accesses",
                                                   to="organizations.organization")),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("cloud", "organization"),
                                            name="one_access_per_cloud"),
                    models.UniqueConstraint(condition=models.Q(("is_default", True)),
                                            fields=("organization",),
                                            name="one_default_cloud_per_organization"),
                ],
            },
        ),
        migrations.AddField(
            model_name="service",
            name="cloud_ref",
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT,
                                    related_name="+", to="o365.cloud"),
        ),
        migrations.RunPython(forwards, backwards),
        migrations.RemoveField(model_name="service", name="cloud"),
        migrations.RemoveField(model_name="service", name="authority_host"),
        migrations.RemoveField(model_name="service", name="graph_base_url"),
        migrations.RemoveField(model_name="service", name="ca_certificate_pem"),
        migrations.RenameField(model_name="service", old_name="cloud_ref", new_name="cloud"),
        migrations.AlterField(
            model_name="service",
            name="cloud",
            field=models.ForeignKey(default=o365.models.default_cloud_id,
                                    on_delete=django.db.models.deletion.PROTECT,
                                    related_name="services", to="o365.cloud"),
        ),
    ]
