"""The admin API: the Simulator's methods over HTTPS (see README.md, Admin API)."""

import base64

from .http_base import BaseApp, Reply

ADMIN_METHODS = (
    "add_user",
    "update_user",
    "rename_user",
    "delete_user",
    "restore_user",
    "provision_drive",
    "add_file",
    "copy_file",
    "add_folder",
    "modify_file",
    "rename_item",
    "move_item",
    "delete_item",
    "set_app_roles",
    "register_signin_app",
    "grant_consent",
    "revoke_consent",
    "revoke_tokens",
    "set_fault",
    "clear_faults",
    "list_faults",
    "stats",
    "reset_stats",
    "expire_delta_tokens",
    "configure",
    "list_users",
    "list_items",
    "get_item",
)


class AdminApp(BaseApp):
    def handle(self, h, method):
        path, query = self.parse(h)
        name = path.strip("/")
        try:
            if method == "GET" and name == "info":
                raise Reply(200, self.running.info)
            if name not in ADMIN_METHODS:
                raise Reply(
                    404,
                    {"error": f"no admin method {name!r}; choose from {', '.join(ADMIN_METHODS)}"},
                )
            if method == "GET":
                kwargs = {
                    k: (v.lower() == "true" if v.lower() in ("true", "false") else v)
                    for k, v in query.items()
                }
            elif method == "POST":
                kwargs = self.read_json(h)
                if not isinstance(kwargs, dict):
                    raise Reply(
                        400, {"error": "the body must be a JSON object of keyword arguments"}
                    )
            else:
                raise Reply(405, {"error": "use GET or POST"})
            if "content_b64" in kwargs:
                kwargs["content"] = base64.b64decode(kwargs.pop("content_b64"))
            try:
                result = getattr(self.sim, name)(**kwargs)
            except (KeyError, ValueError, TypeError) as e:
                raise Reply(
                    404 if isinstance(e, KeyError) else 400, {"error": str(e).strip("'\"")}
                ) from e
            raise Reply(200, {"result": result})
        except Reply as reply:
            self.send(h, reply.status, reply.body)
