"""Graph's users endpoints: the users list, users delta and one user."""

import json
from urllib.parse import quote

from .http_base import _opaque, _unopaque, graph_error
from .model import HARD_DELETED

USER_DEFAULT_SELECT = [
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
]
USER_PROPERTIES = set(USER_DEFAULT_SELECT) | {
    "accountEnabled",
    "assignedLicenses",
    "usageLocation",
    "createdDateTime",
    "userType",
    "onPremisesSyncEnabled",
}
LICENSE = {"disabledPlans": [], "skuId": "c7df2760-2c81-4ef7-b578-5b5392b571df"}


class UsersMixin:
    """GraphApp's /users, /users/delta and /users/{id}. Mixed into GraphApp; uses BaseApp's
    self.sim, self.running and helpers."""

    def _select(self, query):
        raw = query.get("$select")
        if not raw:
            return None
        fields = [f.strip() for f in raw.split(",") if f.strip()]
        for f in fields:
            if f not in USER_PROPERTIES:
                raise graph_error(
                    400,
                    "BadRequest",
                    f"Parsing OData Select and Expand failed: Could not find "
                    f"a property named '{f}' on type 'microsoft.graph.user'.",
                )
        return fields

    @staticmethod
    def render_user(u, fields):
        full = {
            "id": u.id,
            "displayName": u.display_name,
            "givenName": u.given_name,
            "surname": u.surname,
            "jobTitle": u.job_title,
            "mail": u.mail,
            "userPrincipalName": u.upn,
            "businessPhones": [],
            "mobilePhone": None,
            "officeLocation": None,
            "preferredLanguage": "en-US",
            "accountEnabled": u.enabled,
            "assignedLicenses": [dict(LICENSE)] if u.licensed else [],
            "usageLocation": "US",
            "createdDateTime": "2021-03-04T05:06:07Z",
            "userType": "Member",
            "onPremisesSyncEnabled": None,
        }
        out = {f: full[f] for f in (fields or USER_DEFAULT_SELECT)}
        out.setdefault("id", u.id)
        return out

    def _context(self, entity, fields):
        return f"{self.running.graph_base}/$metadata#{entity}" + (
            f"({','.join(fields)})" if fields else ""
        )

    def users_list(self, h, tenant, app, query):
        fields = self._select(query)
        top = query.get("$top", "100")
        if not top.isdigit() or not 1 <= int(top) <= 999:
            raise graph_error(
                400,
                "Request_UnsupportedQuery",
                f"Invalid page size specified: '{top}'. Must be between 1 and 999 inclusive.",
            )
        top = int(top)
        position = 0
        if "$skiptoken" in query:
            decoded = _unopaque(query["$skiptoken"]) or ""
            if not decoded.startswith("u:"):
                raise graph_error(
                    400,
                    "Directory_ExpiredPageToken",
                    "The specified page token value has expired "
                    "and can no longer be included in your request.",
                )
            position = int(decoded[2:])
        page = []
        users = tenant.users
        while position < len(users) and len(page) < top:
            u = users[position]
            position += 1
            if not u.deleted:
                page.append(self.render_user(u, fields))
        self.stats.count("users_pages")
        body = {"@odata.context": self._context("users", fields), "value": page}
        if (
            any(not u.deleted for u in users[position : position + 1])
            or position < len(users)
            and any(not u.deleted for u in users[position:])
        ):
            params = []
            if "$select" in query:
                params.append("$select=" + quote(query["$select"], safe=","))
            params.append(f"$top={top}")
            params.append("$skiptoken=" + _opaque(f"u:{position}"))
            body["@odata.nextLink"] = f"{self.running.graph_base}/users?" + "&".join(params)
        return body

    def users_delta(self, h, tenant, app, query):
        if "$deltatoken" in query or "$skiptoken" in query:
            decoded = _unopaque(query.get("$deltatoken") or query.get("$skiptoken")) or ""
            try:
                state = json.loads(decoded)
                position, end, full, fields = state["p"], state["e"], state["f"], state["s"]
                epoch = state["x"]
            except (ValueError, KeyError, TypeError) as err:
                raise graph_error(400, "BadRequest", "Invalid delta token.") from err
            if "$deltatoken" in query:
                if epoch != tenant.user_epoch or position > len(tenant.user_log):
                    raise self.resync_error()
                end, full = len(tenant.user_log), False
        else:
            fields = self._select(query)
            position, end, full = 0, len(tenant.user_log), True
        page = []
        log = tenant.user_log
        size = self.sim.users_delta_page_size
        while position < end and len(page) < size:
            u = tenant.users[log[position]]
            position += 1
            if u.seq != position:
                continue
            if u.deleted:
                if not full:
                    page.append(
                        {
                            "id": u.id,
                            "@removed": {
                                "reason": "deleted" if u.deleted == HARD_DELETED else "changed"
                            },
                        }
                    )
                continue
            page.append(self.render_user(u, fields))
        self.stats.count("users_delta_pages")
        body = {"@odata.context": self._context("users", fields), "value": page}
        if position < end:
            token = _opaque(
                json.dumps(
                    {"p": position, "e": end, "f": full, "s": fields, "x": tenant.user_epoch}
                )
            )
            body["@odata.nextLink"] = f"{self.running.graph_base}/users/delta?$skiptoken={token}"
        else:
            token = _opaque(
                json.dumps({"p": end, "e": end, "f": False, "s": fields, "x": tenant.user_epoch})
            )
            body["@odata.deltaLink"] = f"{self.running.graph_base}/users/delta?$deltatoken={token}"
        return body

    def _user_or_404(self, tenant, ref):
        u = tenant.find_user(ref)
        if u is None or u.deleted:
            raise graph_error(
                404,
                "Request_ResourceNotFound",
                f"Resource '{ref}' does not exist or one of its queried reference-property "
                f"objects are not present.",
            )
        return u

    def user_get(self, h, tenant, app, query, ref):
        fields = self._select(query)
        body = self.render_user(self._user_or_404(tenant, ref), fields)
        body["@odata.context"] = self._context("users/$entity", fields)
        return body
