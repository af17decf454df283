"""Builders for Office 365 test data: PFX certificates, KodoADSettings.json, configurations."""

import base64
import datetime as dt
import json
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from o365.models import Cloud, CloudAccess, Service
from o365.validators import load_certificate

SECRET = "Qx58Q~SuperSecretValue-0123456789abcdefXYZ"
PFX_PASSWORD = "pfx-Pa55word!"


def make_pfx(password=PFX_PASSWORD, days=730, key_type="rsa", with_key=True) -> bytes:
    key = (rsa.generate_private_key(public_exponent=65537, key_size=2048) if key_type == "rsa"
           else ec.generate_private_key(ec.SECP256R1()))
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Kodo Backup")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    encryption = (serialization.BestAvailableEncryption(password.encode()) if password
                  else serialization.NoEncryption())
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


def make_service(organization, name="Contoso", secret=SECRET, **fields) -> Service:
    service = Service(organization=organization, name=name, tenant_id=uuid.uuid4(),
                      client_id=uuid.uuid4(), **fields)
    service.set_client_secret(secret)
    service.save()
    return service


def sim_cloud(running, organization=None, *, default=False) -> Cloud:
    """The running m365sim as a custom cloud (loopback: private network allowed, its CA, its
    download host), enabled for `organization` (and its default, if asked)."""
    from pathlib import Path
    from urllib.parse import urlsplit

    cloud, _ = Cloud.objects.update_or_create(
        authority_host=running.info["authority_host"],
        defaults={"graph_base_url": running.info["graph_base"],
                  "download_hosts": urlsplit(running.info["download_base"]).netloc,
                  "ca_certificate_pem": Path(running.info["ca_file"]).read_text(),
                  "private_network_allowed": True},
        create_defaults={"name": f"m365sim {running.info['authority_host']}",
                         "key": f"m365sim-{urlsplit(running.info['authority_host']).port}",
                         "graph_base_url": running.info["graph_base"],
                         "download_hosts": urlsplit(running.info["download_base"]).netloc,
                         "ca_certificate_pem": Path(running.info["ca_file"]).read_text(),
                         "private_network_allowed": True})
    if organization is not None:
        CloudAccess.objects.update_or_create(cloud=cloud, organization=organization,
                                             defaults={"is_default": default})
    return cloud


def sim_service(organization, running, app_name="Kodo Backup", certificate=False,
                name=None) -> Service:
    """A configuration of `organization` pointing at a running m365sim tenant's app."""
    from pathlib import Path

    tenant = running.info["tenants"][0]
    app = next(a for a in tenant["apps"] if a["name"] == app_name)
    service = Service(
        organization=organization, name=name or app_name, tenant_id=tenant["tenant_id"],
        client_id=app["client_id"], cloud=sim_cloud(running, organization),
    )
    if certificate:
        pfx = Path(app["pfx_path"]).read_bytes()
        service.set_certificate(load_certificate(pfx, app["pfx_password"]), app["pfx_password"])
    else:
        service.set_client_secret(app["client_secret"])
    service.save()
    return service
