"""Tenants, apps, users, drives and items, kept compact enough for 100,000 users and
1,000,000 items. Every change appends to a per-drive (or per-tenant, for users) change log;
an object's `seq` is the position of its latest entry plus one, so a delta from sequence T
is the log entries after T that are still current."""

import base64
import hashlib
import struct
import uuid
from array import array

FOLDER, DELETED, MALWARE, PACKAGE = 1, 2, 4, 8
SOFT_DELETED, HARD_DELETED = 1, 2
_ID_KEY = b"m365sim-item-ids"


def _mask(tag):
    return hashlib.blake2b(tag, digest_size=8).digest()


def item_id(drive_num, n):
    """A 34-character id in OneDrive for Business style that encodes (drive, item number)."""
    raw = struct.pack(">II", drive_num, n)
    tag = hashlib.blake2b(raw, key=_ID_KEY, digest_size=12).digest()
    hidden = bytes(a ^ b for a, b in zip(raw, _mask(tag), strict=False))
    return "01" + base64.b32encode(tag + hidden).decode("ascii")


def parse_item_id(text):
    """(drive_num, n) or None."""
    if len(text) != 34 or not text.startswith("01"):
        return None
    try:
        data = base64.b32decode(text[2:])
    except (ValueError, TypeError):
        return None
    tag = data[:12]
    raw = bytes(a ^ b for a, b in zip(data[12:], _mask(tag), strict=False))
    if hashlib.blake2b(raw, key=_ID_KEY, digest_size=12).digest() != tag:
        return None
    return struct.unpack(">II", raw)


def item_guid(drive_num, n):
    digest = hashlib.blake2b(struct.pack(">II", drive_num, n), digest_size=16).digest()
    return str(uuid.UUID(bytes=digest)).upper()


class Item:
    __slots__ = (
        "n",
        "parent",
        "name",
        "size",
        "flags",
        "mver",
        "cver",
        "ctime",
        "mtime",
        "seq",
        "nchild",
    )

    def __init__(self, n, parent, name, size, flags, ctime):
        self.n = n
        self.parent = parent
        self.name = name
        self.size = size
        self.flags = flags
        self.mver = 1
        self.cver = 1
        self.ctime = ctime
        self.mtime = ctime
        self.seq = 0
        self.nchild = 0

    @property
    def is_folder(self):
        return bool(self.flags & FOLDER)

    @property
    def deleted(self):
        return bool(self.flags & DELETED)


class Drive:
    def __init__(self, num, drive_id, user, created):
        self.num = num
        self.id = drive_id
        self.user = user
        self.items = []
        self.log = array("l")
        self.epoch = 0
        self.used = 0
        self.blobs = {}
        self.content_seed = 0
        self.fs_times = {}  # n -> (created, modified) given by a client (fileSystemInfo)
        self._names = None
        root = Item(0, -1, "root", 0, FOLDER, created)
        self.items.append(root)
        self.log_change(root)

    @property
    def root(self):
        return self.items[0]

    def log_change(self, item):
        self.log.append(item.n)
        item.seq = len(self.log)

    def new_item(self, parent, name, size, flags, ctime, log=True):
        item = Item(len(self.items), parent.n, name, size, flags, ctime)
        self.items.append(item)
        parent.nchild += 1
        if not flags & FOLDER:
            self.used += size
        if self._names is not None:
            self._names[(parent.n, name.lower())] = item.n
        if log:
            self.log_change(item)
        return item

    def names(self):
        """(parent n, lower-case name) -> n for live items, built on first use."""
        if self._names is None:
            names = {}
            for item in self.items:
                if item.n and not item.flags & DELETED:
                    names[(item.parent, item.name.lower())] = item.n
            self._names = names
        return self._names

    def child(self, parent, name):
        n = self.names().get((parent.n, name.lower()))
        return None if n is None else self.items[n]

    def path_of(self, item):
        parts = []
        while item.n:
            parts.append(item.name)
            item = self.items[item.parent]
        return "/" + "/".join(reversed(parts))

    def live_descendants(self, folder):
        """Live items under folder, deepest first."""
        wanted = {folder.n}
        found = []
        for item in self.items:  # parents always have lower numbers than their children
            if item.parent in wanted and not item.flags & DELETED:
                found.append(item)
                if item.flags & FOLDER:
                    wanted.add(item.n)
        return list(reversed(found))


class User:
    __slots__ = (
        "n",
        "id",
        "upn",
        "display_name",
        "given_name",
        "surname",
        "mail",
        "job_title",
        "enabled",
        "licensed",
        "drive",
        "drive_error",
        "deleted",
        "seq",
        "tenant",
    )

    def __init__(self, tenant, n, user_id, upn, display_name, given_name, surname, mail, job_title):
        self.tenant = tenant
        self.n = n
        self.id = user_id
        self.upn = upn
        self.display_name = display_name
        self.given_name = given_name
        self.surname = surname
        self.mail = mail
        self.job_title = job_title
        self.enabled = True
        self.licensed = True
        self.drive = None
        self.drive_error = None
        self.deleted = 0
        self.seq = 0


class App:
    def __init__(self, tenant, name, client_id, client_secret, pfx_password, roles):
        self.tenant = tenant
        self.name = name
        self.client_id = client_id
        self.client_secret = client_secret
        self.pfx_password = pfx_password
        self.roles = list(roles)
        self.object_id = str(uuid.uuid5(uuid.NAMESPACE_URL, "sp:" + client_id))
        # Sign-in (OpenID Connect): the registered reply URLs and who may sign in
        # ("AzureADMyOrg": the home tenant only; "AzureADMultipleOrgs": any tenant).
        self.redirect_uris = []
        self.sign_in_audience = "AzureADMyOrg"
        self.generation = 0
        self.pfx_path = None
        self.cert = None
        self.sha1 = None
        self.sha256 = None

    @property
    def thumbprint(self):
        return self.sha1.hex().upper() if self.sha1 else None

    def set_certificate(self, cert, pfx_path):
        from cryptography.hazmat.primitives import hashes, serialization

        der = cert.public_bytes(serialization.Encoding.DER)
        self.cert = cert
        self.pfx_path = str(pfx_path)
        self.sha1 = hashlib.sha1(der, usedforsecurity=False).digest()
        self.sha256 = hashlib.sha256(der).digest()
        # x5t is the certificate's SHA-1 thumbprint, fixed by the protocol (JWS / Entra ID)
        assert cert.fingerprint(hashes.SHA1()) == self.sha1  # noqa: S303

    def info(self):
        return {
            "name": self.name,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "pfx_path": self.pfx_path,
            "pfx_password": self.pfx_password,
            "thumbprint": self.thumbprint,
            "roles": list(self.roles),
            "redirect_uris": list(self.redirect_uris),
            "sign_in_audience": self.sign_in_audience,
        }


class Tenant:
    def __init__(self, num, tenant_id, domain, seed):
        self.num = num
        self.id = tenant_id
        self.domain = domain
        self.seed = seed
        self.users = []
        self.user_log = array("l")
        self.user_epoch = 0
        self.by_id = {}
        self.by_upn = {}
        self.apps = []
        self.quirks = True
        self.consented_apps = set()  # client ids an administrator consented to for the tenant
        self.user_consents = set()  # (client id, user id) a user consented to for themselves

    def log_user(self, user):
        self.user_log.append(user.n)
        user.seq = len(self.user_log)

    def find_user(self, key):
        key = str(key)
        user = self.by_id.get(key.lower()) or self.by_upn.get(key.lower())
        return user

    @property
    def administrator(self):
        """The simulated Global Administrator: the tenant's first user."""
        return self.users[0] if self.users else None

    def info(self):
        return {"tenant_id": self.id, "domain": self.domain, "apps": [a.info() for a in self.apps]}
