"""The Simulator: state, generation and the Python API (see m365sim/__init__.py)."""

import base64
import hashlib
import os
import random
import string
import tempfile
import threading
import time
import uuid
from pathlib import Path

from . import model
from .content import POOL_SIZE, get_pool, mix64
from .faults import Faults, Stats
from .model import (
    DELETED,
    FOLDER,
    HARD_DELETED,
    MALWARE,
    PACKAGE,
    SOFT_DELETED,
    App,
    Drive,
    Tenant,
    User,
)
from .quickxor import QuickXorHash, quickxorhash

BACKUP_ROLES = ["User.Read.All", "Files.ReadWrite.All", "Files.Read.All", "Sites.Read.All"]
DEFAULT_APPS = [{"name": "Kodo Backup", "roles": BACKUP_ROLES}]
DEMO_APPS = DEFAULT_APPS + [{"name": "Kodo Backup (no files)", "roles": ["User.Read.All"]}]
DEMO_USER_PASSWORD = "m365sim-demo"

# (weight, smallest, largest) bytes; sizes are log-uniform within a band
SIZE_MIXES = {
    "small": [(0.03, 0, 0), (0.67, 2_000, 400_000), (0.30, 400_000, 4_000_000)],
    "mixed": [
        (0.02, 0, 0),
        (0.78, 1_000, 1_000_000),
        (0.17, 1_000_000, 64_000_000),
        (0.03, 64_000_000, 1_000_000_000),
    ],
    "large": [(1.0, 16_000_000, 2_000_000_000)],
}
DRIVE_ERRORS = [
    (404, "ResourceNotFound", "User's mysite not found."),
    (400, "BadRequest", "Unable to retrieve user's mysite URL."),
    (404, "UnknownError", "404 FILE NOT FOUND"),
]

FIRST_NAMES = (
    "Adele Alex Allan Ben Carla Chen Christie Dana Debra Diego Elena Emily Enrico Farah "
    "Grady Hana Henrietta Isaiah Irvin Jana Joni Kenji Lee Lidia Lynne Megan Miriam Nestor "
    "Olga Patti Pradeep Priya Raul Sofia Tomas Uma Victor Wanda Yuki Zoe"
).split()
LAST_NAMES = (
    "Vance Wilber Brown Cole Gonzalez Lambert Siciliani Fenix Chen Kanter Adams Bowen "
    "Wilkins Gerhart Sato Diaz Novak Haddad Okafor Larsen Moreau Rossi Nakamura Patel "
    "Kowalski Meyer Silva Fischer Jensen Dubois Ivanova Olsen Romero Tanaka Weber"
).split()
JOBS = [
    "Accountant",
    "Sales Manager",
    "Engineer",
    "Designer",
    "Marketing Lead",
    "Lawyer",
    "Support Agent",
    "Analyst",
    None,
]
FOLDER_NAMES = [
    "Documents",
    "Projects",
    "Finance",
    "Photos",
    "Archive",
    "Contracts",
    "Reports",
    "Shared",
    "Templates",
    "Meetings",
    "Invoices",
    "Drafts",
    "Clients",
    "HR",
    "Travel",
]
WORDS = [
    "Budget",
    "Report",
    "Proposal",
    "Minutes",
    "Plan",
    "Summary",
    "Invoice",
    "Contract",
    "Notes",
    "Roadmap",
    "Forecast",
    "Review",
    "Offer",
    "Agenda",
    "Presentation",
    "Draft",
]
EXT_SMALL = [".docx", ".xlsx", ".txt", ".pdf", ".pptx", ".csv", ".md"]
EXT_LARGE = [".mp4", ".zip", ".iso", ".mov", ".psd", ".bak"]
MIME = {
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".txt": "text/plain",
    ".csv": "text/csv",
    ".md": "text/markdown",
    ".pdf": "application/pdf",
    ".mp4": "video/mp4",
    ".mov": "video/quicktime",
    ".zip": "application/zip",
    ".jpg": "image/jpeg",
    ".png": "image/png",
    ".exe": "application/x-msdownload",
}
BASE_TIME = 1_700_000_000
INLINE_BLOB = 1 << 20


def mime_type(name):
    return MIME.get(os.path.splitext(name)[1].lower(), "application/octet-stream")


def _guid(rng):
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _secret(rng):
    alphabet = string.ascii_letters + string.digits + "~_.-"
    return (
        "".join(rng.choice(alphabet) for _ in range(3))
        + "8Q~"
        + "".join(rng.choice(alphabet) for _ in range(34))
    )


def _size_sampler(size_mix):
    bands = SIZE_MIXES[size_mix] if isinstance(size_mix, str) else [tuple(b) for b in size_mix]
    total = sum(b[0] for b in bands)

    def sample(rng):
        x = rng.random() * total
        for weight, low, high in bands:  # noqa: B007 - low, high are read after the break
            x -= weight
            if x <= 0:
                break
        if high <= 0:
            return 0
        low = max(low, 1)
        return int(low * (high / low) ** rng.random())

    return sample


def _split_path(path):
    return [p for p in str(path).replace("\\", "/").split("/") if p]


class Blob:
    """Explicit content (uploads, or bytes given to add_file): in memory when small,
    otherwise in a file."""

    __slots__ = ("data", "path", "size", "quickxorhash")

    def __init__(self, data=None, path=None, size=0, qxh=None):
        self.data, self.path, self.size, self.quickxorhash = data, path, size, qxh

    def chunks(self, start, end, chunk=1 << 20):
        if self.data is not None:
            view = memoryview(self.data)
            for pos in range(start, end, chunk):
                yield view[pos : min(end, pos + chunk)]
            return
        with open(self.path, "rb") as f:
            f.seek(start)
            remaining = end - start
            while remaining > 0:
                block = f.read(min(chunk, remaining))
                if not block:
                    raise OSError("blob file shorter than recorded")
                remaining -= len(block)
                yield block


class PoolWindow:
    """Content that is a window of the shared pool, like generated files (copy_file)."""

    __slots__ = ("pool", "offset", "size", "quickxorhash")

    def __init__(self, pool, offset, size, qxh):
        self.pool, self.offset, self.size, self.quickxorhash = pool, offset, size, qxh

    def chunks(self, start, end):
        return self.pool.chunks(self.offset, start, end)


class Simulator:
    """Microsoft 365 as m365sim keeps it. Thread-safe: every method takes the lock."""

    def __init__(
        self,
        token_lifetime=3599,
        download_url_lifetime=900,
        delta_page_size=200,
        users_delta_page_size=100,
        refuse_replayed_jti=True,
        delta_horizon=None,
        upload_session_lifetime=3600,
        user_password=DEMO_USER_PASSWORD,
        id_token_lifetime=3600,
        code_lifetime=600,
    ):
        self.lock = threading.RLock()
        self.tenants = []
        self.drives = []
        self.drive_by_id = {}
        self.token_lifetime = int(token_lifetime)
        self.download_url_lifetime = float(download_url_lifetime)
        self.delta_page_size = int(delta_page_size)
        self.users_delta_page_size = int(users_delta_page_size)
        self.refuse_replayed_jti = bool(refuse_replayed_jti)
        self.delta_horizon = delta_horizon
        self.upload_session_lifetime = float(upload_session_lifetime)
        # Sign-in (m365sim/oidc.py): every simulated user's password, the lifetimes of id
        # tokens and of authorization codes (Entra's codes live about ten minutes)
        self.user_password = str(user_password)
        self.id_token_lifetime = int(id_token_lifetime)
        self.code_lifetime = float(code_lifetime)
        self.stats_counter = Stats()
        self.faults = Faults(self.stats_counter)
        self.blobs = {}
        self.old_sizes = {}  # (drive num, n, cver) -> size of a superseded content version
        self.blob_dir = None
        self.pool = get_pool()

    # ----- construction -------------------------------------------------------------

    @classmethod
    def generate(
        cls,
        seed=1,
        users=25,
        files_per_user=10,
        size_mix="small",
        domain=None,
        users_without_drive=None,
        quirks=True,
        special_items=True,
        apps=None,
        **settings,
    ):
        sim = cls(**settings)
        sim.add_tenant(
            seed=seed,
            users=users,
            files_per_user=files_per_user,
            size_mix=size_mix,
            domain=domain,
            users_without_drive=users_without_drive,
            quirks=quirks,
            special_items=special_items,
            apps=apps,
        )
        return sim

    @classmethod
    def demo(cls, **settings):
        """About 25 users and a few hundred small files; one user has no OneDrive."""
        return cls.generate(
            seed=2024,
            users=25,
            files_per_user=12,
            size_mix="small",
            domain="contoso.example",
            users_without_drive=1,
            apps=DEMO_APPS,
            **settings,
        )

    @classmethod
    def from_tenant_file(cls, path, **settings):
        """A JSON file: {"settings": {...}, "tenants": [{"seed", "users", "files_per_user",
        "size_mix", "domain", "users_without_drive", "quirks", "special_items",
        "apps": [{"name", "roles", "client_id"?, "client_secret"?, "pfx_password"?}],
        "extra_users": [{"upn", "display_name", "has_drive", "files": [{"path", "size"}]}]}]}"""
        import json

        spec = json.loads(Path(path).read_text())
        sim = cls(**{**spec.get("settings", {}), **settings})
        for t in spec.get("tenants", [{}]):
            extra = t.pop("extra_users", [])
            tenant = sim.add_tenant(**t)
            for u in extra:
                files = u.pop("files", [])
                user = sim.add_user(tenant=tenant.id, **u)
                for f in files:
                    sim.add_file(user["id"], f["path"], size=f.get("size", 1000))
        return sim

    def add_tenant(
        self,
        seed=1,
        users=25,
        files_per_user=10,
        size_mix="small",
        domain=None,
        users_without_drive=None,
        quirks=True,
        special_items=True,
        apps=None,
    ):
        with self.lock:
            rng = random.Random(mix64(seed, 0x7E7A))
            num = len(self.tenants)
            if domain is None:
                domain = ["contoso.example", "fabrikam.example", "northwind.example"][num % 3]
                if num >= 3:
                    domain = f"tenant{num}.example"
            tenant = Tenant(num, _guid(rng), domain, seed)
            tenant.quirks = quirks
            self.tenants.append(tenant)
            for spec in apps or DEFAULT_APPS:
                tenant.apps.append(
                    App(
                        tenant,
                        spec["name"],
                        spec.get("client_id") or _guid(rng),
                        spec.get("client_secret") or _secret(rng),
                        spec.get("pfx_password") or _secret(rng)[:20],
                        spec.get("roles", BACKUP_ROLES),
                    )
                )
            if users_without_drive is None:
                users_without_drive = max(1, users // 50) if users >= 3 else 0
            no_drive = set(range(users - users_without_drive, users))
            sampler = _size_sampler(size_mix)
            for k in range(users):
                urng = random.Random(mix64(seed, k, 0x05E2))
                user = self._new_user(tenant, urng, k)
                if k in no_drive:
                    user.licensed = False
                    user.drive_error = DRIVE_ERRORS[
                        (k - users + users_without_drive) % len(DRIVE_ERRORS)
                    ]
                else:
                    self._new_drive(user, urng)
                    self._fill_drive(
                        user.drive, urng, files_per_user, sampler, quirks, special_items and k == 0
                    )
            return tenant

    def _new_user(self, tenant, rng, k, upn=None, display_name=None, mail=True):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        if upn is None:
            local = f"{first}.{last}".lower()
            upn = f"{local}@{tenant.domain}"
            suffix = 2
            while upn.lower() in tenant.by_upn:
                upn = f"{local}{suffix}@{tenant.domain}"
                suffix += 1
        elif upn.lower() in tenant.by_upn:
            raise ValueError(f"a user with userPrincipalName {upn} already exists")
        if display_name is None:
            display_name = f"{first} {last}"
        user = User(
            tenant,
            len(tenant.users),
            _guid(rng),
            upn,
            display_name,
            first,
            last,
            upn if mail is True else mail,
            rng.choice(JOBS),
        )
        if k % 12 == 11 and mail is True:
            user.mail = None  # no mailbox
        if k % 17 == 16:
            user.enabled = False
        tenant.users.append(user)
        tenant.by_id[user.id] = user
        tenant.by_upn[user.upn.lower()] = user
        tenant.log_user(user)
        return user

    def _new_drive(self, user, rng, created=None):
        num = len(self.drives)
        raw = hashlib.blake2b(f"{user.tenant.id}/{user.id}".encode(), digest_size=48).digest()
        drive_id = "b!" + base64.urlsafe_b64encode(raw).decode().rstrip("=")
        if created is None:
            created = BASE_TIME - 3 * 365 * 86400 + rng.randrange(86400 * 30)
        drive = Drive(num, drive_id, user, created)
        drive.content_seed = mix64(user.tenant.seed, num)
        self.drives.append(drive)
        self.drive_by_id[drive_id] = drive
        user.drive = drive
        return drive

    def _fill_drive(self, drive, rng, files, sampler, quirks, special):
        root = drive.root
        folders = [root]
        depth = {0: 0}
        deferred = []
        n_folders = min(max(1, files // 8), 2000) if files else 0
        t0 = drive.root.ctime
        span = BASE_TIME - t0
        for i in range(n_folders):
            candidates = [f for f in folders if depth[f.n] < 4]
            parent = rng.choice(
                candidates[-20:] if len(candidates) > 20 and rng.random() < 0.5 else candidates
            )
            name = (
                f"{rng.choice(FOLDER_NAMES)} {2015 + i % 10}"
                if i >= len(FOLDER_NAMES)
                else FOLDER_NAMES[i]
            )
            while drive.names().get((parent.n, name.lower())) is not None:
                name += " (2)"
            folder = drive.new_item(
                parent,
                name,
                0,
                FOLDER,
                t0 + rng.randrange(span // 4 + 1),
                log=not (quirks and i % 3 == 1),
            )
            if folder.seq == 0:
                deferred.append(folder)  # logged after its children: children before parents
            depth[folder.n] = depth[parent.n] + 1
            folders.append(folder)
        for i in range(files):
            parent = rng.choice(folders)
            size = sampler(rng)
            ext = rng.choice(EXT_LARGE if size > 64_000_000 else EXT_SMALL)
            name = f"{rng.choice(WORDS)} {i + 1:05d}{ext}"
            item = drive.new_item(parent, name, size, 0, t0 + rng.randrange(span + 1))
            item.mtime = item.ctime + rng.randrange(86400 * 90)
        if special:
            drive.new_item(root, "Invoice (flagged).exe", 73_802, MALWARE, t0 + 86400)
            drive.new_item(root, "Team Notebook", 1_048_576, PACKAGE, t0 + 86400)
        for folder in deferred:
            drive.log_change(folder)
        drive._names = None  # built again on demand; saves memory on big tenants

    # ----- lookups ------------------------------------------------------------------

    def tenant_by_ref(self, ref):
        if ref is None:
            return self.tenants[0]
        for tenant in self.tenants:
            if ref in (tenant.id, tenant.domain) or (
                isinstance(ref, str) and ref.lower() in (tenant.id.lower(), tenant.domain.lower())
            ):
                return tenant
        return None

    def _user(self, ref):
        if isinstance(ref, User):
            return ref
        for tenant in self.tenants:
            user = tenant.find_user(ref)
            if user is not None:
                return user
        raise KeyError(f"no user {ref!r}")

    def _drive(self, user_ref):
        user = self._user(user_ref)
        if user.drive is None:
            raise KeyError(f"user {user.upn} has no OneDrive")
        return user.drive

    def _item(self, drive, ref, allow_deleted=False):
        if isinstance(ref, model.Item):
            return ref
        ref = str(ref)
        if ref.startswith("/") or ref == "":
            item = drive.root
            for part in _split_path(ref):
                item = drive.child(item, part)
                if item is None:
                    raise KeyError(f"no item {ref!r} in the drive of {drive.user.upn}")
            return item
        parsed = model.parse_item_id(ref)
        if parsed is None or parsed[0] != drive.num or parsed[1] >= len(drive.items):
            raise KeyError(f"no item {ref!r} in the drive of {drive.user.upn}")
        item = drive.items[parsed[1]]
        if item.flags & DELETED and not allow_deleted:
            raise KeyError(f"item {ref!r} is deleted")
        return item

    def find_item(self, drive_num, item_ref):
        parsed = model.parse_item_id(item_ref)
        if parsed is None or parsed[0] != drive_num:
            return None
        drive = self.drives[drive_num]
        return drive.items[parsed[1]] if parsed[1] < len(drive.items) else None

    # ----- content ------------------------------------------------------------------

    def content_offset(self, drive, item, cver=None):
        return mix64(drive.content_seed, item.n, item.cver if cver is None else cver) % POOL_SIZE

    def item_hash(self, drive, item):
        blob = self.blobs.get((drive.num, item.n, item.cver))
        if blob is not None:
            return blob.quickxorhash
        return self.pool.quickxorhash(self.content_offset(drive, item), item.size)

    def content_chunks(self, drive, item, cver, start, end):
        blob = self.blobs.get((drive.num, item.n, cver))
        if blob is not None:
            return blob.chunks(start, end)
        return self.pool.chunks(self.content_offset(drive, item, cver), start, end)

    def _blob_dir(self):
        if self.blob_dir is None:
            self.blob_dir = Path(tempfile.mkdtemp(prefix="m365sim-blobs-"))
        return self.blob_dir

    def blob_from_bytes(self, data):
        data = bytes(data)
        if len(data) <= INLINE_BLOB:
            return Blob(data=data, size=len(data), qxh=quickxorhash(data))
        fd, path = tempfile.mkstemp(dir=self._blob_dir())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return Blob(path=path, size=len(data), qxh=quickxorhash(data))

    def blob_from_file(self, path, size):
        """A blob owning the file at path (an upload session's spool)."""
        hasher = QuickXorHash()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                hasher.update(block)
        if size <= INLINE_BLOB:
            data = Path(path).read_bytes()
            os.unlink(path)
            return Blob(data=data, size=size, qxh=hasher.b64digest())
        return Blob(path=str(path), size=size, qxh=hasher.b64digest())

    def new_spool(self):
        fd, path = tempfile.mkstemp(dir=self._blob_dir(), suffix=".upload")
        os.close(fd)
        return path

    # ----- state changes (Python API; the admin API calls the same methods) ------------

    def add_user(
        self,
        upn=None,
        display_name=None,
        tenant=None,
        mail=True,
        has_drive=True,
        licensed=True,
        account_enabled=True,
    ):
        with self.lock:
            t = self.tenant_by_ref(tenant)
            if t is None:
                raise KeyError(f"no tenant {tenant!r}")
            rng = random.Random(mix64(t.seed, len(t.users), 0xADD))
            if upn is not None and "@" not in upn:
                upn = f"{upn}@{t.domain}"
            user = self._new_user(t, rng, 0, upn=upn, display_name=display_name, mail=mail)
            user.licensed = licensed
            user.enabled = account_enabled
            if has_drive:
                self._new_drive(user, rng)
            else:
                user.drive_error = DRIVE_ERRORS[0]
            return self.user_info(user)

    def provision_drive(self, user):
        """Give a user who has none a OneDrive (as when a licence is assigned and the user's
        OneDrive is provisioned later): from now on /users/{id}/drive answers 200."""
        with self.lock:
            u = self._user(user)
            if u.drive is not None:
                raise ValueError(f"user {u.upn} already has a OneDrive")
            self._new_drive(
                u, random.Random(mix64(u.tenant.seed, u.n, 0xD21E)), created=int(time.time())
            )
            u.drive_error = None
            if not u.licensed:
                u.licensed = True
                u.tenant.log_user(u)
            return self.user_info(u)

    def update_user(
        self,
        user,
        display_name=None,
        upn=None,
        mail=None,
        account_enabled=None,
        licensed=None,
        job_title=None,
    ):
        with self.lock:
            u = self._user(user)
            if upn is not None and upn.lower() != u.upn.lower():
                if upn.lower() in u.tenant.by_upn:
                    raise ValueError(f"a user with userPrincipalName {upn} already exists")
                del u.tenant.by_upn[u.upn.lower()]
                u.upn = upn
                u.tenant.by_upn[upn.lower()] = u
            if display_name is not None:
                u.display_name = display_name
            if mail is not None:
                u.mail = mail or None
            if account_enabled is not None:
                u.enabled = bool(account_enabled)
            if licensed is not None:
                u.licensed = bool(licensed)
            if job_title is not None:
                u.job_title = job_title
            u.tenant.log_user(u)
            return self.user_info(u)

    def rename_user(self, user, display_name=None, upn=None):
        return self.update_user(user, display_name=display_name, upn=upn)

    def delete_user(self, user, permanent=False):
        with self.lock:
            u = self._user(user)
            u.deleted = HARD_DELETED if permanent else SOFT_DELETED
            u.tenant.log_user(u)
            return self.user_info(u)

    def restore_user(self, user):
        with self.lock:
            u = self._user(user)
            if u.deleted != SOFT_DELETED:
                raise ValueError(f"user {u.upn} is not soft-deleted")
            u.deleted = 0
            u.tenant.log_user(u)
            return self.user_info(u)

    def _ensure_folder(self, drive, parts, now):
        folder = drive.root
        for part in parts:
            child = drive.child(folder, part)
            if child is None:
                child = drive.new_item(folder, part, 0, FOLDER, now)
                self._touch_parent(drive, folder, now)
            elif not child.flags & FOLDER:
                raise ValueError(f"{part!r} is a file, not a folder")
            folder = child
        return folder

    def _touch_parent(self, drive, folder, now):
        if folder.n:
            folder.mver += 1
            folder.mtime = now
            drive.log_change(folder)

    def add_folder(self, user, path):
        with self.lock:
            drive = self._drive(user)
            return self.item_info(
                drive, self._ensure_folder(drive, _split_path(path), int(time.time()))
            )

    def add_file(
        self, user, path, size=None, content=None, malware=False, package=False, mtime=None
    ):
        """A new file at path (folders are created as needed). Content is generated from
        the size unless `content` (bytes) is given."""
        with self.lock:
            blob = None if content is None else self.blob_from_bytes(content)
            flags = (MALWARE if malware else 0) | (PACKAGE if package else 0)
            return self._new_file(user, path, blob, size, flags, mtime)

    def copy_file(self, user, path, from_user, item):
        """A new file at path holding the same bytes as `item` in from_user's OneDrive (as
        when a user keeps a copy of a colleague's files); nothing is copied in memory."""
        with self.lock:
            source_drive = self._drive(from_user)
            source = self._item(source_drive, item)
            if source.flags & FOLDER:
                raise ValueError("copy_file copies files, not folders")
            blob = self.blobs.get((source_drive.num, source.n, source.cver)) or PoolWindow(
                self.pool,
                self.content_offset(source_drive, source),
                source.size,
                self.item_hash(source_drive, source),
            )
            return self._new_file(user, path, blob, None, 0, None)

    def _new_file(self, user, path, blob, size, flags, mtime):
        drive = self._drive(user)
        parts = _split_path(path)
        if not parts:
            raise ValueError("path must name a file")
        now = int(time.time()) if mtime is None else int(mtime)
        parent = self._ensure_folder(drive, parts[:-1], now)
        if drive.child(parent, parts[-1]) is not None:
            raise ValueError(f"{path} already exists; use modify_file")
        size = blob.size if blob else int(size if size is not None else 1000)
        item = drive.new_item(parent, parts[-1], size, flags, now)
        if blob:
            self.blobs[(drive.num, item.n, item.cver)] = blob
        self._touch_parent(drive, parent, now)
        return self.item_info(drive, item)

    def create_item(self, drive, parent, name, folder=False, blob=None, size=0, fs_times=None):
        """Used by the upload endpoints: a new file or folder under parent; fs_times is
        (created, modified) from the request's fileSystemInfo, either may be None."""
        with self.lock:
            now = int(time.time())
            item = drive.new_item(
                parent,
                name,
                0 if folder else (blob.size if blob else size),
                FOLDER if folder else 0,
                now,
            )
            if blob:
                self.blobs[(drive.num, item.n, item.cver)] = blob
            self.set_fs_times(drive, item, fs_times)
            self._touch_parent(drive, parent, now)
            return item

    def set_fs_times(self, drive, item, fs_times):
        """The client's own created/modified times (fileSystemInfo); the item's createdDateTime
        and lastModifiedDateTime stay the server's."""
        if fs_times is None or fs_times == (None, None):
            return
        created, modified = fs_times
        old_created, old_modified = drive.fs_times.get(item.n, (None, None))
        drive.fs_times[item.n] = (
            old_created if created is None else int(created),
            old_modified if modified is None else int(modified),
        )

    def fs_times_of(self, drive, item):
        """(created, modified) as fileSystemInfo shows them."""
        created, modified = drive.fs_times.get(item.n, (None, None))
        return (
            item.ctime if created is None else created,
            item.mtime if modified is None else modified,
        )

    def replace_content(self, drive, item, blob=None, size=None):
        with self.lock:
            if item.flags & FOLDER:
                raise ValueError("folders have no content")
            new_size = blob.size if blob is not None else (item.size if size is None else int(size))
            # an old download URL must still find the old bytes, at their own length
            self.old_sizes[(drive.num, item.n, item.cver)] = item.size
            created = drive.fs_times.pop(item.n, (None, None))[0]
            if created is not None:
                drive.fs_times[item.n] = (created, None)  # modified follows the server's again
            drive.used += new_size - item.size
            item.size = new_size
            item.cver += 1
            item.mver += 1
            item.mtime = max(int(time.time()), item.mtime + 1)
            if blob is not None:
                self.blobs[(drive.num, item.n, item.cver)] = blob
            drive.log_change(item)
            return item

    def modify_file(self, user, item, size=None, content=None):
        """New content for a file: generated (optionally with a new size) or the given bytes."""
        with self.lock:
            drive = self._drive(user)
            it = self._item(drive, item)
            blob = None if content is None else self.blob_from_bytes(content)
            return self.item_info(drive, self.replace_content(drive, it, blob, size))

    def _reparent(self, drive, item, new_parent, new_name, now):
        names = drive.names()
        if item.n == 0:
            raise ValueError("the root cannot be renamed or moved")
        if drive.child(new_parent, new_name) not in (None, item):
            raise ValueError(f"{new_name!r} already exists in {drive.path_of(new_parent)}")
        walk = new_parent
        while walk.n:
            if walk is item:
                raise ValueError("cannot move a folder into itself")
            walk = drive.items[walk.parent]
        names.pop((item.parent, item.name.lower()), None)
        old_parent = drive.items[item.parent]
        if old_parent is not new_parent:
            old_parent.nchild -= 1
            new_parent.nchild += 1
        item.parent = new_parent.n
        item.name = new_name
        names[(new_parent.n, new_name.lower())] = item.n
        item.mver += 1
        item.mtime = max(now, item.mtime)
        drive.log_change(item)

    def rename_item(self, user, item, new_name):
        with self.lock:
            drive = self._drive(user)
            it = self._item(drive, item)
            self._reparent(drive, it, drive.items[it.parent], new_name, int(time.time()))
            return self.item_info(drive, it)

    def move_item(self, user, item, new_parent, new_name=None):
        with self.lock:
            drive = self._drive(user)
            it = self._item(drive, item)
            parent = self._item(drive, new_parent)
            if not parent.flags & FOLDER:
                raise ValueError("the new parent is not a folder")
            self._reparent(drive, it, parent, new_name or it.name, int(time.time()))
            return self.item_info(drive, it)

    def delete_item(self, user, item):
        with self.lock:
            drive = self._drive(user)
            self._delete(drive, self._item(drive, item))
            return True

    def _delete(self, drive, item):
        if item.n == 0:
            raise ValueError("the root cannot be deleted")
        names = drive.names()
        victims = (drive.live_descendants(item) if item.flags & FOLDER else []) + [item]
        for victim in victims:
            names.pop((victim.parent, victim.name.lower()), None)
            victim.flags |= DELETED
            victim.mver += 1
            if not victim.flags & FOLDER:
                drive.used -= victim.size
            drive.log_change(victim)
        drive.items[item.parent].nchild -= 1

    def expire_delta_tokens(self, user=None, tenant=None):
        """Every delta token issued so far (for one user's drive, or the tenant's users delta
        when `tenant` is given) answers 410 resyncRequired."""
        with self.lock:
            if user is not None:
                self._drive(user).epoch += 1
            else:
                t = self.tenant_by_ref(tenant)
                t.user_epoch += 1
                for u in t.users:
                    if u.drive is not None:
                        u.drive.epoch += 1
            return True

    def _app(self, client_id):
        for tenant in self.tenants:
            for app in tenant.apps:
                if app.client_id == client_id or app.name == client_id:
                    return app
        raise KeyError(f"no app {client_id!r}")

    def register_signin_app(
        self,
        name="Kodo",
        client_id=None,
        client_secret=None,
        redirect_uris=(),
        tenant=None,
        multi_tenant=True,
    ):
        """An app people sign in to (OpenID Connect), registered in `tenant` (default: the
        first) with these reply URLs; multi-tenant unless told. Registering a client id again
        updates its reply URLs and secret. Returns the app's info."""
        with self.lock:
            home = self.tenant_by_ref(tenant)
            if home is None:
                raise KeyError(f"no tenant {tenant!r}")
            app = self.signin_app(client_id) if client_id else None
            if app is None:
                rng = random.Random()
                app = App(
                    home,
                    name,
                    client_id or _guid(rng),
                    client_secret or _secret(rng),
                    _secret(rng)[:20],
                    [],
                )
                home.apps.append(app)
            elif client_secret:
                app.client_secret = client_secret
            app.redirect_uris = [str(uri) for uri in redirect_uris]
            app.sign_in_audience = "AzureADMultipleOrgs" if multi_tenant else "AzureADMyOrg"
            return app.info()

    def signin_app(self, client_id):
        """The app with exactly this client id (any case), or None."""
        with self.lock:
            wanted = str(client_id or "").lower()
            for tenant in self.tenants:
                for app in tenant.apps:
                    if app.client_id.lower() == wanted:
                        return app
            return None

    def grant_consent(self, client_id, tenant=None):
        """Admin consent: every user of `tenant` may sign in to the app without being asked."""
        with self.lock:
            self.tenant_by_ref(tenant).consented_apps.add(self._app(client_id).client_id)
            return True

    def revoke_consent(self, client_id, tenant=None):
        """Remove the tenant's admin consent and its users' own consents to the app."""
        with self.lock:
            t = self.tenant_by_ref(tenant)
            client_id = self._app(client_id).client_id
            t.consented_apps.discard(client_id)
            t.user_consents = {c for c in t.user_consents if c[0] != client_id}
            return True

    def set_app_roles(self, client_id, roles):
        """Grant exactly these application permissions (admin consent) from now on; tokens
        issued before keep their roles until they expire, as in Entra ID."""
        with self.lock:
            self._app(client_id).roles = list(roles)
            return True

    def revoke_tokens(self, client_id=None):
        """Every access token issued so far (to one app, or to all) answers 401."""
        with self.lock:
            apps = (
                [self._app(client_id)] if client_id else [a for t in self.tenants for a in t.apps]
            )
            for app in apps:
                app.generation += 1
            return True

    def configure(
        self,
        token_lifetime=None,
        download_url_lifetime=None,
        delta_page_size=None,
        users_delta_page_size=None,
        refuse_replayed_jti=None,
        quirks=None,
        upload_session_lifetime=None,
        user_password=None,
        id_token_lifetime=None,
        code_lifetime=None,
    ):
        with self.lock:
            if user_password is not None:
                self.user_password = str(user_password)
            if id_token_lifetime is not None:
                self.id_token_lifetime = int(id_token_lifetime)
            if code_lifetime is not None:
                self.code_lifetime = float(code_lifetime)
            if upload_session_lifetime is not None:
                self.upload_session_lifetime = float(upload_session_lifetime)
            if token_lifetime is not None:
                self.token_lifetime = int(token_lifetime)
            if download_url_lifetime is not None:
                self.download_url_lifetime = float(download_url_lifetime)
            if delta_page_size is not None:
                self.delta_page_size = int(delta_page_size)
            if users_delta_page_size is not None:
                self.users_delta_page_size = int(users_delta_page_size)
            if refuse_replayed_jti is not None:
                self.refuse_replayed_jti = bool(refuse_replayed_jti)
            if quirks is not None:
                for t in self.tenants:
                    t.quirks = bool(quirks)
            return True

    def set_fault(self, endpoint, kind, rate=1.0, seed=0, max_count=None, **params):
        """Inject a fault on an endpoint kind. Params: retry_after (int, float or None for
        no header; 429/503/504), after_bytes (where reset/truncate/stall cut the body),
        stall_seconds, corrupt_at. Returns the fault id."""
        return self.faults.set(endpoint, kind, rate=rate, seed=seed, max_count=max_count, **params)

    def clear_faults(self, endpoint=None, fault_id=None):
        self.faults.clear(endpoint, fault_id)
        return True

    def list_faults(self):
        return self.faults.list()

    def stats(self):
        return self.stats_counter.snapshot()

    def reset_stats(self):
        self.stats_counter.reset()
        return True

    # ----- views for tests and the admin API -----------------------------------------

    def user_info(self, user):
        u = self._user(user)
        return {
            "id": u.id,
            "userPrincipalName": u.upn,
            "displayName": u.display_name,
            "mail": u.mail,
            "accountEnabled": u.enabled,
            "licensed": u.licensed,
            "deleted": {0: None, SOFT_DELETED: "soft", HARD_DELETED: "permanent"}[u.deleted],
            "drive_id": u.drive.id if u.drive else None,
            "tenant_id": u.tenant.id,
        }

    def list_users(self, tenant=None, include_deleted=False):
        with self.lock:
            t = self.tenant_by_ref(tenant)
            return [self.user_info(u) for u in t.users if include_deleted or not u.deleted]

    def item_info(self, drive, item):
        info = {
            "id": model.item_id(drive.num, item.n),
            "name": item.name,
            "path": drive.path_of(item) if not item.flags & DELETED else None,
            "parent_id": model.item_id(drive.num, item.parent) if item.n else None,
            "folder": bool(item.flags & FOLDER),
            "size": item.size,
            "deleted": bool(item.flags & DELETED),
            "malware": bool(item.flags & MALWARE),
            "package": bool(item.flags & PACKAGE),
            "version": item.cver,
            "drive_id": drive.id,
        }
        if not item.flags & (FOLDER | DELETED | PACKAGE):
            info["quickXorHash"] = self.item_hash(drive, item)
        return info

    def list_items(self, user, include_deleted=False):
        with self.lock:
            drive = self._drive(user)
            return [
                self.item_info(drive, it)
                for it in drive.items[1:]
                if include_deleted or not it.flags & DELETED
            ]

    def get_item(self, user, item):
        with self.lock:
            drive = self._drive(user)
            return self.item_info(drive, self._item(drive, item, allow_deleted=True))

    def file_bytes(self, user, item):
        """The current bytes of a file (meant for small files in tests)."""
        with self.lock:
            drive = self._drive(user)
            it = self._item(drive, item)
            return b"".join(bytes(c) for c in self.content_chunks(drive, it, it.cver, 0, it.size))

    def serve(
        self,
        host="127.0.0.1",
        port=0,
        download_port=0,
        admin_port=0,
        state_dir=None,
        info_file=None,
        kodo_settings=None,
    ):
        """Start the HTTPS servers in background threads; returns a Running."""
        from .server import Running

        return Running.start(
            self,
            host=host,
            port=port,
            download_port=download_port,
            admin_port=admin_port,
            state_dir=state_dir,
            info_file=info_file,
            kodo_settings=kodo_settings,
        )
