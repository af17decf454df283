"""The running servers: Running starts login + Graph, the download host and the admin API, each
on its own port and thread, and stops them."""

import base64
import json
import os
import secrets
import ssl
import threading
import time
from pathlib import Path

from . import certs
from .admin import AdminApp
from .download import DownloadApp
from .graph import GraphApp
from .http_base import Reply, Server, graph_error
from .identity import Identity
from .model import DELETED

SIGNIN_APPS_FILE = "signin-apps.json"


class Running:
    """Servers started by Simulator.serve(): .info, .stop(), usable as a context manager."""

    def __init__(self, sim):
        self.sim = sim
        self.stopping = False
        self.servers = []
        self.threads = []
        self.upload_sessions = {}
        self.url_key = secrets.token_bytes(32)
        # Sign-in (m365sim/oidc.py): sign-ins in progress by request id, codes by value
        self.auth_requests = {}
        self.codes = {}

    @classmethod
    def start(
        cls,
        sim,
        host="127.0.0.1",
        port=0,
        download_port=0,
        admin_port=0,
        state_dir=None,
        info_file=None,
        kodo_settings=None,
    ):
        self = cls(sim)
        state_dir = Path(state_dir or "var/m365sim").resolve()
        state_dir.mkdir(parents=True, exist_ok=True)
        ca_cert, ca_key, ca_path = certs.ensure_ca(state_dir)
        cert_path, key_path = certs.ensure_server_cert(state_dir, host, ca_cert, ca_key)
        self.ca_file = str(ca_path)
        self.identity = Identity(certs.ensure_signing_key(state_dir))
        (state_dir / "apps").mkdir(exist_ok=True)
        # Sign-in apps a Kodo demo registered before the simulator started (create_demo)
        signin_apps = state_dir / SIGNIN_APPS_FILE
        if signin_apps.exists():
            for spec in json.loads(signin_apps.read_text()):
                sim.register_signin_app(**spec)
        for tenant in sim.tenants:
            for app in tenant.apps:
                pfx = state_dir / "apps" / f"{app.client_id}.pfx"
                cert, _ = certs.ensure_app_pfx(pfx, app.name, app.pfx_password)
                app.set_certificate(cert, pfx.resolve())
        if sim.blob_dir is None:
            sim.blob_dir = state_dir / "blobs"
            sim.blob_dir.mkdir(exist_ok=True)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        graph_server = Server((host, port), context, GraphApp(sim, self))
        download_server = Server((host, download_port), context, DownloadApp(sim, self))
        admin_server = Server((host, admin_port), context, AdminApp(sim, self))
        self.servers = [graph_server, download_server, admin_server]
        netloc = host if ":" not in host else f"[{host}]"
        self.authority_host = f"https://{netloc}:{graph_server.server_address[1]}"
        self.graph_base = f"{self.authority_host}/v1.0"
        self.download_base = f"https://{netloc}:{download_server.server_address[1]}"
        self.admin_base = f"https://{netloc}:{admin_server.server_address[1]}"
        for server in self.servers:
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                daemon=True,
                name=f"m365sim-{server.server_address[1]}",
            )
            thread.start()
            self.threads.append(thread)
        self.info = {
            "authority_host": self.authority_host,
            "graph_base": self.graph_base,
            "download_base": self.download_base,
            "admin_base": self.admin_base,
            "ca_file": self.ca_file,
            "state_dir": str(state_dir),
            "tenants": [t.info() for t in sim.tenants],
        }
        if info_file:
            write_json_atomic(info_file, self.info)
        if kodo_settings:
            write_json_atomic(kodo_settings, self.kodo_settings())
        return self

    def kodo_settings(self, tenant_index=0, app_index=0):
        """KodoADSettings.json for one app, as Register-KodoApp.ps1 writes it, plus the
        custom-cloud keys."""
        tenant = self.sim.tenants[tenant_index]
        app = tenant.apps[app_index]
        return {
            "AppName": app.name,
            "TenantId": tenant.id,
            "ClientId": app.client_id,
            "ClientSecret": app.client_secret,
            "CertificatePassword": app.pfx_password,
            "CertificatePfxBase64": base64.b64encode(Path(app.pfx_path).read_bytes()).decode(),
            "CertificateThumbprint": app.thumbprint,
            "CertificateNotAfter": app.cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Cloud": "Custom",
            "AuthorityHost": self.authority_host,
            "GraphBaseUrl": self.graph_base,
            "CaCertificatePem": Path(self.ca_file).read_text(),
        }

    def new_upload_session(self, drive, parent_n, name, behavior, replace_n, app, fs_times=None):
        self.sweep_upload_sessions()
        session_id = secrets.token_urlsafe(24)
        session = {
            "drive": drive.num,
            "parent": parent_n,
            "name": name,
            "behavior": behavior,
            "replace": replace_n,
            "fs_times": fs_times,
            "received": 0,
            "total": None,
            "spool": self.sim.new_spool(),
            "lock": threading.Lock(),
            "expires": time.time() + self.sim.upload_session_lifetime,
            "client_id": app.client_id,
            "app": app,
            "url": f"{self.download_base}/up/{session_id}",
        }
        self.upload_sessions[session_id] = session
        return session

    def upload_session(self, session_id):
        """The live session, or None when there is none or it expired (its spool is dropped)."""
        session = self.upload_sessions.get(session_id)
        if session is not None and self._drop_if_expired(session_id, session):
            return None
        return session

    def _drop_if_expired(self, session_id, session):
        if time.time() <= session["expires"] or not session["lock"].acquire(blocking=False):
            return False  # a fragment on its way in finishes first
        try:
            self.drop_upload_session(session_id)
        finally:
            session["lock"].release()
        return True

    def drop_upload_session(self, session_id):
        session = self.upload_sessions.pop(session_id, None)
        if session is not None:
            try:
                os.unlink(session["spool"])
            except OSError:
                pass

    def sweep_upload_sessions(self):
        for session_id, session in list(self.upload_sessions.items()):
            self._drop_if_expired(session_id, session)

    def finish_upload(self, session):
        """The last fragment is in: create or update the item. Returns the Reply; on an error
        (a name conflict, a deleted parent) the session is kept, as Graph keeps it until it
        expires."""
        sim = self.sim
        graph = self.servers[0].app
        with sim.lock:
            drive = sim.drives[session["drive"]]
            if session["replace"] is not None:
                item = drive.items[session["replace"]]
                if item.flags & DELETED:
                    return graph_error(
                        404, "itemNotFound", "The item was deleted during the upload."
                    )
                target, name = item, item.name
            else:
                parent = drive.items[session["parent"]]
                if parent.flags & DELETED:
                    return graph_error(
                        404, "itemNotFound", "The parent folder was deleted during the upload."
                    )
                try:
                    target, name = graph._place(
                        drive, parent, session["name"], session["behavior"], folder=False
                    )
                except Reply as reply:
                    if reply.status == 409:  # the words of driveitem-createuploadsession
                        reply.body["error"]["message"] = (
                            "Another file exists with the same name as the uploaded session. "
                            "You can redirect the upload session to use a new filename by "
                            "calling PUT with the new metadata and @microsoft.graph.sourceUrl "
                            "attribute."
                        )
                    return reply
            blob = sim.blob_from_file(session["spool"], session["received"])
            if target is not None:
                sim.replace_content(drive, target, blob)
                sim.set_fs_times(drive, target, session["fs_times"])
                status = 200
            else:
                target = sim.create_item(
                    drive, parent, name, blob=blob, fs_times=session["fs_times"]
                )
                status = 201
            return Reply(status, graph.render_item(drive, target, session["app"]))

    def stop(self):
        if self.stopping:
            return
        self.stopping = True
        stoppers = [threading.Thread(target=server.shutdown) for server in self.servers]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()
        for server in self.servers:
            server.server_close()
            server.close_connections()
        for thread in self.threads:
            thread.join(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def write_json_atomic(path, data):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
