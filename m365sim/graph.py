"""The login + Graph server's app. GraphApp sends /v1.0/... to Graph and the rest to login;
for each Graph request it routes, counts, authenticates, injects a fault and checks the roles
(execute), then runs the endpoint, which lives in one of its mixins:

  login.LoginMixin            Entra ID discovery, keys and token endpoints
  graph_users.UsersMixin      users, users delta, user
  graph_drives.DrivesMixin    drive, drive delta, items, children, content redirect
  graph_uploads.UploadsMixin  uploads, upload sessions, new folders, deletes, renames and moves
  graph_batch.BatchMixin      JSON batching
"""

import time
import uuid
from urllib.parse import unquote

from .faults import BODY_KINDS, STATUS_KINDS
from .graph_batch import BatchMixin
from .graph_drives import DrivesMixin
from .graph_uploads import UploadsMixin
from .graph_users import UsersMixin
from .http_base import ERROR_FOR_STATUS, BaseApp, Reply, graph_error
from .identity import GRAPH_APP_ID, GRAPH_RESOURCE
from .login import LoginMixin

USER_ROLES = {
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
}
FILE_READ_ROLES = {
    "Files.Read.All",
    "Files.ReadWrite.All",
    "Sites.Read.All",
    "Sites.ReadWrite.All",
    "Sites.FullControl.All",
}
FILE_WRITE_ROLES = {"Files.ReadWrite.All", "Sites.ReadWrite.All", "Sites.FullControl.All"}
DRIVE_KINDS = ("drive", "drive_delta", "item", "children", "content", "upload")


def _revoked(challenge):
    """Graph's answer to a token issued before the app's tokens were revoked (CAE)."""
    return graph_error(
        401,
        "InvalidAuthenticationToken",
        "Continuous access evaluation resulted in challenge with result: "
        "InteractionRequired and code: TokenIssuedBeforeRevocationTimestamp",
        challenge,
    )


class GraphApp(LoginMixin, UsersMixin, DrivesMixin, UploadsMixin, BatchMixin, BaseApp):
    def handle(self, h, method):
        path, query = self.parse(h)
        request_id = str(uuid.uuid4())
        headers = {
            "request-id": request_id,
            "client-request-id": h.headers.get("client-request-id") or request_id,
        }
        try:
            if path.startswith("/v1.0/") or path == "/v1.0":
                self.graph(h, method, path[len("/v1.0") :], query, headers)
            else:
                self.login(h, method, path, query)
        except Reply as reply:
            self.send_reply(h, reply, extra_headers=headers)

    # Graph
    def authenticate(self, h):
        header = h.headers.get("Authorization", "")
        challenge = {
            "WWW-Authenticate": f'Bearer realm="", authorization_uri="{self.running.authority_host}'
            f'/common/oauth2/authorize", client_id="{GRAPH_APP_ID}"'
        }
        if not header.startswith("Bearer ") or not header[7:].strip():
            raise graph_error(
                401, "InvalidAuthenticationToken", "Access token is empty.", challenge
            )
        claims = self.running.identity.verify(header[7:].strip())
        if claims is None:
            raise graph_error(
                401,
                "InvalidAuthenticationToken",
                "IDX14100: JWT is not well formed, or its signature is invalid.",
                challenge,
            )
        if claims.get("aud") not in (GRAPH_RESOURCE, GRAPH_APP_ID):
            raise graph_error(
                401,
                "InvalidAuthenticationToken",
                "Access token validation failure. Invalid audience.",
                challenge,
            )
        if claims["exp"] <= time.time():
            raise graph_error(
                401,
                "InvalidAuthenticationToken",
                "Lifetime validation failed, the token is expired.",
                challenge,
            )
        tenant = self.sim.tenant_by_ref(claims.get("tid"))
        app = (
            next((a for a in tenant.apps if a.client_id == claims.get("appid")), None)
            if tenant
            else None
        )
        if app is None:
            raise graph_error(
                401, "InvalidAuthenticationToken", "Invalid token: unknown application.", challenge
            )
        if claims.get("xms_sim_gen") != app.generation:
            raise _revoked(challenge)
        return tenant, app, set(claims.get("roles", ())), challenge

    @staticmethod
    def split_drive_path(rest):
        """'/root:/a/b:/content' -> ('root', ['a', 'b'], '/content')."""
        if rest.startswith("/root"):
            base, after = "root", rest[5:]
        elif rest.startswith("/items/"):
            r = rest[7:]
            cut = min([i for i in (r.find(":"), r.find("/")) if i >= 0] or [len(r)])
            base, after = unquote(r[:cut]), r[cut:]
        else:
            return None
        relpath = None
        if after.startswith(":"):
            after = after[1:]
            end = after.find(":")
            relpath, tail = (after, "") if end == -1 else (after[:end], after[end + 1 :])
            relpath = [unquote(p) for p in relpath.split("/") if p]
        else:
            tail = after
        return base, relpath, tail

    def route(self, method, path):
        """(endpoint kind, handler name, args)."""
        parts = path.split("/")[1:]
        if parts and parts[0] == "me":
            raise graph_error(
                400, "BadRequest", "/me request is only valid with delegated authentication flow."
            )
        if parts[:1] == ["users"] and method == "GET":
            if len(parts) == 1:
                return "users", "users_list", ()
            if len(parts) == 2 and parts[1] in ("delta", "delta()"):
                return "users_delta", "users_delta", ()
            if len(parts) == 2:
                return "user", "user_get", (unquote(parts[1]),)
            if len(parts) >= 3 and parts[2] == "drive":
                rest = "/" + "/".join(parts[3:]) if len(parts) > 3 else ""
                return self._drive_route(method, ("user", unquote(parts[1])), rest)
        if parts[:1] == ["users"] and len(parts) >= 3 and parts[2] == "drive":
            rest = "/" + "/".join(parts[3:]) if len(parts) > 3 else ""
            return self._drive_route(method, ("user", unquote(parts[1])), rest)
        if parts[:1] == ["drives"] and len(parts) >= 2:
            rest = path[len("/drives/") + len(parts[1]) :]
            return self._drive_route(method, ("drive", unquote(parts[1])), rest)
        raise graph_error(
            400, "BadRequest", f"Resource not found for the segment '{parts[0] if parts else ''}'."
        )

    def _drive_route(self, method, drive_ref, rest):
        if rest in ("", "/") and method == "GET":
            return "drive", "drive_get", (drive_ref,)
        split = self.split_drive_path(rest)
        if split is None:
            raise graph_error(400, "invalidRequest", "Invalid request")
        base, relpath, tail = split
        if (
            tail in ("/delta", "/delta()")
            and base == "root"
            and relpath is None
            and method == "GET"
        ):
            return "drive_delta", "drive_delta", (drive_ref,)
        target = (drive_ref, base, relpath)
        if method == "GET":
            if tail == "":
                return "item", "item_get", (target,)
            if tail == "/content":
                return "content", "item_content", (target,)
            if tail == "/children":
                return "children", "children_list", (target,)
        if method == "PUT" and tail == "/content":
            return "upload", "upload_simple", (target,)
        if method == "POST" and tail == "/createUploadSession":
            return "upload", "upload_session", (target,)
        if method == "POST" and tail == "/children":
            return "upload", "create_child", (target,)
        if method == "DELETE" and tail == "":
            return "upload", "item_delete", (target,)
        if method == "PATCH" and tail == "":
            return "upload", "item_patch", (target,)
        raise graph_error(400, "invalidRequest", f"Invalid request: {method} {rest}")

    def graph(self, h, method, path, query, headers):
        if path == "/$batch":
            self.batch(h, method, headers)
            return
        result, fault = self.execute(h, method, path, query)
        if isinstance(result, Reply):
            result.headers.update(headers)
            self.send_reply(h, result, fault=fault)
        else:
            self.send(h, 200, result, headers=headers, fault=fault)

    def execute(self, h, method, path, query, body_faults=True):
        """One Graph request, direct or from a batch: route, count, authenticate, inject a fault,
        check the roles, run the handler. Returns (body or Reply, body fault or None); errors
        are raised as Reply."""
        kind, handler, args = self.route(method, path)
        self.stats.count(f"requests.{kind}")
        tenant, app, roles, challenge = self.authenticate(h)
        has_token = (
            kind in ("drive_delta", "users_delta")
            and any(k in query for k in ("token", "$deltatoken", "$skiptoken"))
            and query.get("token") != "latest"
        )
        eligible = (
            set(STATUS_KINDS)
            | {"revoke"}
            | ({"resync"} if has_token else set())
            | (set(BODY_KINDS) if body_faults else set())
        )
        fault = self.sim.faults.decide(kind, app.client_id, eligible)
        if fault is not None:
            if fault.kind == "revoke":
                self.sim.revoke_tokens(app.client_id)
                raise _revoked(challenge)
            if fault.kind == "resync":
                raise self.resync_error()
            if fault.kind in STATUS_KINDS:
                status = STATUS_KINDS[fault.kind]
                extra = {}
                retry_after = fault.params.get("retry_after", 1 if status == 429 else None)
                if retry_after is not None:
                    extra["Retry-After"] = str(retry_after)
                code = ERROR_FOR_STATUS[status]
                message = (
                    "Please retry again later." if status == 429 else "The service is unavailable."
                )
                if status == 429 and kind in DRIVE_KINDS:
                    code, message = "activityLimitReached", "The request has been throttled"
                raise graph_error(status, code, message, extra)
        if kind in ("users", "users_delta", "user"):
            if not roles & USER_ROLES:
                raise graph_error(
                    403,
                    "Authorization_RequestDenied",
                    "Insufficient privileges to complete the operation.",
                )
        else:
            needed = FILE_WRITE_ROLES if kind == "upload" else FILE_READ_ROLES
            if not roles & needed:
                raise graph_error(
                    403,
                    "accessDenied",
                    "Either scp or roles claim need to be present in the token."
                    if not roles
                    else "Access denied",
                )
        with self.sim.lock:
            result = getattr(self, handler)(h, tenant, app, query, *args)
        return result, fault

    def resync_error(self):
        return graph_error(
            410,
            "resyncRequired",
            "Resync required. Replace any local items with the server's version (including "
            "deletes) if you're sure that the service was up to date with your local "
            "changes when you last sync'd. Upload any local changes that the server doesn't "
            "know about.",
        )
