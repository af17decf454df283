"""Register-KodoApp.ps1 cannot run here; its output's exact shape must be accepted."""

import json
import re
from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile

from o365.kodo_settings import TEXT_KEYS
from o365.models import Service

FIXTURE = Path(__file__).parent / "fixtures" / "KodoADSettings.script.json"
SCRIPT = Path(__file__).parents[2] / "scripts" / "Register-KodoApp.ps1"


def test_the_script_writes_every_key_the_portal_reads():
    script = SCRIPT.read_text()
    block = re.search(r"\$settings = \[ordered\]\s*@\{(.*?)\n\}", script, re.DOTALL).group(1)
    written = set(re.findall(r"^\s*(\w+)\s*=", block, re.MULTILINE))
    fixture_keys = set(json.loads(FIXTURE.read_text(encoding="utf-8-sig")))
    assert written == fixture_keys
    assert fixture_keys <= set(TEXT_KEYS)


def test_the_portal_accepts_the_scripts_file(admin_a_client, world):
    upload = SimpleUploadedFile("KodoADSettings.json", FIXTURE.read_bytes(), "application/json")
    response = admin_a_client.post(
        f"/o/{world.org_a.code}/services/office365/configuration/new/",
        {"name": "From the script", "cloud": "global", "settings_file": upload})
    assert response.status_code == 302, response.content.decode()[:2000]
    service = Service.objects.get()
    values = json.loads(FIXTURE.read_text(encoding="utf-8-sig"))
    assert str(service.tenant_id) == values["TenantId"]
    assert service.certificate_thumbprint == values["CertificateThumbprint"]
    assert service.has_client_secret and service.has_certificate
