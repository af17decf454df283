import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import GraphClient
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import pkcs12

from m365sim import Simulator

ROOT = Path(__file__).resolve().parents[2]


def wait_for(path, process, seconds=30):
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, process.stdout.read()
        assert time.monotonic() < deadline, "m365sim did not write its info file"
        time.sleep(0.05)
    return json.loads(path.read_text())


def test_demo_runs_writes_kodo_settings_and_stops_on_sigterm(tmp_path):
    info_file, settings_file = tmp_path / "info.json", tmp_path / "KodoADSettings.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "m365sim",
            "--demo",
            "--state-dir",
            str(tmp_path / "state"),
            "--info-file",
            str(info_file),
            "--kodo-settings",
            str(settings_file),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        info = wait_for(info_file, process)
        settings = json.loads(settings_file.read_text())
        apps = info["tenants"][0]["apps"]
        assert [a["name"] for a in apps] == ["Kodo Backup", "Kodo Backup (no files)"]
        assert apps[1]["roles"] == ["User.Read.All"]
        assert set(settings) == {
            "AppName",
            "TenantId",
            "ClientId",
            "ClientSecret",
            "CertificatePassword",
            "CertificatePfxBase64",
            "CertificateThumbprint",
            "CertificateNotAfter",
            "Cloud",
            "AuthorityHost",
            "GraphBaseUrl",
            "CaCertificatePem",
        }
        assert settings["ClientId"] == apps[0]["client_id"]
        assert settings["GraphBaseUrl"] == info["graph_base"]
        key, cert, _ = pkcs12.load_key_and_certificates(
            base64.b64decode(settings["CertificatePfxBase64"]),
            settings["CertificatePassword"].encode(),
        )
        assert cert.fingerprint(hashes.SHA1()).hex().upper() == settings["CertificateThumbprint"]
        assert settings["CaCertificatePem"] == Path(info["ca_file"]).read_text()

        client = GraphClient(info)
        users, _, _ = client.collect("/users")
        assert len(users) == 25
        without = [u for u in users if client.get(f"/users/{u['id']}/drive").status_code != 200]
        assert len(without) == 1
        user = users[0]["id"]
        drive_id = client.get(f"/users/{user}/drive").json()["id"]
        files = [v for v in client.collect(f"/drives/{drive_id}/root/delta")[0] if "file" in v]
        assert all(f["size"] <= 4_000_000 for f in files)

        client.admin("reset_stats")
        added = client.admin(
            "add_file",
            user=user,
            path="/via admin.txt",
            content_b64=base64.b64encode(b"hi").decode(),
        )
        assert client.get(f"/users/{user}/drive/items/{added['id']}").json()["size"] == 2
        assert client.admin("stats")["requests"]["item"] == 1
        bad = client.session.post(
            f"{info['admin_base']}/delete_item", json={"user": user, "item": "/nope"}
        )
        assert bad.status_code == 404
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_the_ca_and_app_certificates_survive_a_restart(tmp_path):
    sim = Simulator.generate(seed=9, users=2, files_per_user=1)
    with sim.serve(state_dir=tmp_path) as first:
        ca, app = Path(first.info["ca_file"]).read_text(), first.info["tenants"][0]["apps"][0]
    again = Simulator.generate(seed=9, users=2, files_per_user=1)
    with again.serve(state_dir=tmp_path) as second:
        assert Path(second.info["ca_file"]).read_text() == ca
        assert second.info["tenants"][0]["apps"][0] == app


def test_a_tenant_file(tmp_path):
    spec = {
        "settings": {"token_lifetime": 600},
        "tenants": [
            {
                "seed": 4,
                "users": 3,
                "files_per_user": 2,
                "domain": "fabrikam.example",
                "users_without_drive": 0,
                "extra_users": [
                    {
                        "upn": "pat@fabrikam.example",
                        "display_name": "Pat",
                        "files": [{"path": "/a/b.txt", "size": 12}],
                    }
                ],
            }
        ],
    }
    (tmp_path / "tenant.json").write_text(json.dumps(spec))
    sim = Simulator.from_tenant_file(tmp_path / "tenant.json")
    assert sim.token_lifetime == 600
    assert len(sim.list_users()) == 4
    assert sim.get_item("pat@fabrikam.example", "/a/b.txt")["size"] == 12
