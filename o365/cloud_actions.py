"""The server administrator's workflows on clouds (the server-level list of Microsoft clouds)."""

from django.db import transaction
from django.utils.text import slugify

from o365.models import Cloud, CloudAccess
from organizations import audit


def _unique_key(name: str) -> str:
    base = (slugify(name) or "cloud")[:50]
    key, n = base, 1
    while Cloud.objects.filter(key=key).exists():
        n += 1
        key = f"{base}-{n}"
    return key


@transaction.atomic
def do_save_cloud(*, request, cloud: Cloud | None, data: dict) -> Cloud:
    """Create or change a cloud and the organizations it is enabled for (and the default of)."""
    created = cloud is None
    if cloud is None:
        cloud = Cloud(key=_unique_key(data["name"]))
    if not cloud.builtin:
        cloud.name = data["name"]
        cloud.authority_host = data["authority_host"]
        cloud.graph_base_url = data["graph_base_url"]
        cloud.download_hosts = data["download_hosts"]
        cloud.ca_certificate_pem = data["ca_certificate"]
        cloud.private_network_allowed = data["private_network_allowed"]
    cloud.all_organizations = data["all_organizations"]
    cloud.save()
    enabled = {org.pk for org in data["organizations"]}
    defaults = {org.pk for org in data["default_for"]}
    cloud.accesses.exclude(organization_id__in=enabled | defaults).delete()
    # an organization has one default cloud: this one takes over
    CloudAccess.objects.filter(organization_id__in=defaults, is_default=True).exclude(
        cloud=cloud
    ).update(is_default=False)
    for org_id in enabled | defaults:
        CloudAccess.objects.update_or_create(
            cloud=cloud, organization_id=org_id, defaults={"is_default": org_id in defaults}
        )
    audit.record(
        "cloud_created" if created else "cloud_updated",
        f"{'Added' if created else 'Edited'} the cloud {cloud.name}"
        f"{' (private network allowed)' if cloud.private_network_allowed else ''}.",
        request=request,
    )
    return cloud


@transaction.atomic
def do_delete_cloud(*, request, cloud: Cloud) -> bool:
    """Delete a custom cloud no configuration uses; False if it cannot be deleted."""
    if cloud.builtin or cloud.services.exists():
        return False
    name = cloud.name
    cloud.delete()
    audit.record("cloud_deleted", f"Deleted the cloud {name}.", request=request)
    return True
