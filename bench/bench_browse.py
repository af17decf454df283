"""Browse and search over 1,000,000 versions on PostgreSQL, beside a user with 100 (issue 13 §5).

    .venv/bin/python bench/bench_browse.py                       # 1,000,000 versions, 200 timings
    .venv/bin/python bench/bench_browse.py --versions 100000 --repeat 50     # a quick run
    .venv/bin/python bench/bench_browse.py --database kodo_bench_browse --keep  # keep the rows

The database (default kodo_bench_browse on 127.0.0.1:5432, trust auth as postgres) is dropped,
created and migrated, and dropped again at the end unless --keep. Rows are made directly in the
database (COPY), as the backup engine would have recorded them:

- one user ("big") with --runs daily restore points and a tree of 1,010 folders (10 at the top,
  10 in each, 9 in each of those), files spread over the deepest 900; each file has 1 to 7
  versions (edits, and now and then a rename) ending where the next begins, and 5% of the files
  are deleted at a later run; about --versions versions in all;
- one user ("small") of the same organization with 100 versions: the baseline.

Then each of these is timed --repeat times, p50 and p95 in ms, big and small and their ratio:

  page    backups.browse.folder_page: a random folder at a random restore point, first page
          (the path walked from the root, the count, the rows, the versions kept per row)
  view    the same folder page through Django (test client: access checks, timeline, template)
  search  backups.browse.search_page within the user's backups: a word or part of a word of a
          random name (3 to 8 characters: thousands of matches), first page with its count
  name    the same with a whole file name (a few matches)
  org     the same search across the organization

and EXPLAIN ANALYZE of one folder query and two searches, to show the indexes they use
(versions_in_folder; for a search, the primary key walked backwards while many names match, the
trigram index on UPPER(name) when few do). Targets: p95 < 200 ms for a page,
< 500 ms for a search.
"""

import argparse
import base64
import datetime as dt
import io
import os
import random
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORDS = (
    "budget report invoice contract minutes agenda proposal summary review plan draft final "
    "notes meeting project roadmap design spec survey results analysis forecast payroll "
    "holiday photo scan receipt letter memo policy handbook training slides quarterly annual "
    "sales marketing customer vendor order quote statement tax audit backup archive export "
    "presentation lecture thesis chapter syllabus grades schedule timesheet expenses travel"
).split()
EXTENSIONS = ["docx", "xlsx", "pdf", "pptx", "jpg", "png", "txt", "csv", "zip", "mp4", "msg"]
TOP, MIDDLE, LEAF = 10, 10, 9  # folders: 10 + 100 + 900 = 1,010
COPY_COLUMNS = (
    "organization_id, drive_id, item_id, parent_id, path, name, is_folder, size, quickxorhash, "
    "mime_type, created_datetime, modified_datetime, etag, ctag, chunks, first_run_id, "
    "end_run_id, deleted, damage"
)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", default="kodo_bench_browse")
    parser.add_argument("--host", default="127.0.0.1:5432")
    parser.add_argument("--versions", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--keep", action="store_true", help="do not drop the database at the end")
    parser.add_argument(
        "--only",
        type=lambda text: text.split(","),
        default=["page", "view", "search", "name", "org"],
        help="what to time, e.g. search,org",
    )
    parser.add_argument(
        "--reuse", action="store_true", help="time the rows a --keep run left (make none)"
    )
    return parser.parse_args()


# ----- the database ------------------------------------------------------------------------


def recreate_database(admin_url, name, create=True):
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        if create:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def setup_django(database_url, workdir):
    os.environ.update(
        {
            "DEBUG": "0",
            "DATABASE_URL": database_url,
            "KODO_VAR_DIR": str(workdir),
            "LOG_LEVEL": "WARNING",
            "ALLOWED_HOSTS": "testserver",
        }
    )
    os.environ.setdefault("SECRET_KEY", base64.urlsafe_b64encode(os.urandom(40)).decode())
    os.environ.setdefault("KODO_ENCRYPTION_KEYS", base64.urlsafe_b64encode(os.urandom(32)).decode())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kodo.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


# ----- rows --------------------------------------------------------------------------------


class Tree:
    """A user's drive: its runs, folders (path -> item id) and the COPY text of its versions."""

    def __init__(self, org, user, runs, rng):
        from backups.models import DriveState

        self.org, self.user, self.runs, self.rng = org, user, runs, rng
        self.drive = DriveState.objects.create(
            organization=org,
            directory_user=user,
            drive_id=f"b!{uuid.uuid4().hex}",
            root_item_id=self.new_id(),
        )
        self.folders: dict[str, str] = {"": self.drive.root_item_id}
        self.buffer = io.StringIO()
        self.count = 0

    def new_id(self):
        return "01" + "".join(
            self.rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(32)
        )

    def row(self, *, item_id, parent, path, name, folder, size, first, end, deleted, when):
        fields = [
            self.org.pk,
            self.drive.pk,
            item_id,
            parent,
            path,
            name,
            "t" if folder else "f",
            size,
            "" if folder else base64.b64encode(self.rng.randbytes(20)).decode(),
            "" if folder else "application/octet-stream",
            when.isoformat(),
            when.isoformat(),
            "",
            "",
            "[]" if folder else f'[["{self.rng.randbytes(32).hex()}", {size}]]',
            first.pk,
            end.pk if end is not None else "\\N",
            "t" if deleted else "f",
            "",
        ]
        self.buffer.write("\t".join(_escape(str(f)) if f != "\\N" else f for f in fields) + "\n")
        self.count += 1

    def add_folder(self, parent_path, name):
        path = f"{parent_path}/{name}"
        item_id = self.new_id()
        self.row(
            item_id=item_id,
            parent=self.folders[parent_path],
            path=path,
            name=name,
            folder=True,
            size=0,
            first=self.runs[0],
            end=None,
            deleted=False,
            when=self.runs[0].finished_at,
        )
        self.folders[path] = item_id
        return path

    def add_file(self, folder_path):
        """One file and its versions (1 to 7, a rename now and then, deleted sometimes)."""
        rng, runs = self.rng, self.runs
        item_id = self.new_id()
        name = random_name(rng)
        count = min(len(runs), rng.choice([1, 1, 2, 3, 4, 5, 6, 7, 7]))
        starts = sorted(rng.sample(range(len(runs)), count))
        deleted_at = None
        if rng.random() < 0.05 and starts[-1] + 1 < len(runs):
            deleted_at = rng.randrange(starts[-1] + 1, len(runs))
        size = rng.randint(1_000, 5_000_000)
        for index, start in enumerate(starts):
            if index and rng.random() < 0.1:
                name = random_name(rng)
            last = index == len(starts) - 1
            end = (
                runs[starts[index + 1]] if not last else (runs[deleted_at] if deleted_at else None)
            )
            self.row(
                item_id=item_id,
                parent=self.folders[folder_path],
                path=f"{folder_path}/{name}",
                name=name,
                folder=False,
                size=size + index * 1000,
                first=runs[start],
                end=end,
                deleted=last and deleted_at is not None,
                when=runs[start].finished_at - dt.timedelta(hours=2),
            )
        return count

    def copy(self, connection):
        """COPY the rows into backups_fileversion."""
        connection.ensure_connection()
        with connection.connection.cursor() as cursor:
            with cursor.copy(f"COPY backups_fileversion ({COPY_COLUMNS}) FROM STDIN") as copy:
                self.buffer.seek(0)
                while block := self.buffer.read(1 << 20):
                    copy.write(block)
        self.buffer = io.StringIO()


def _escape(text):
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def random_name(rng):
    words = rng.sample(WORDS, rng.choice([1, 2, 2, 3]))
    stem = " ".join(w.capitalize() if rng.random() < 0.5 else w for w in words)
    if rng.random() < 0.6:
        stem += f" {rng.randint(1, 2026)}"
    return f"{stem}.{rng.choice(EXTENSIONS)}"


def make_runs(org, configuration, user, count):
    from backups.models import BackupRun

    start = dt.datetime(2026, 1, 1, 22, tzinfo=dt.UTC)
    return BackupRun.objects.bulk_create(
        BackupRun(
            organization=org,
            configuration=configuration,
            directory_user=user,
            status=BackupRun.Status.SUCCEEDED,
            started_at=start + dt.timedelta(days=i),
            finished_at=start + dt.timedelta(days=i, minutes=20),
        )
        for i in range(count)
    )


def make_world(args, rng):
    from django.contrib.auth import get_user_model
    from django.db import connection

    from o365.models import Configuration, DirectoryUser
    from organizations.models import Membership, Organization

    org = Organization.objects.create(
        name="Bench browse", services_enabled=True, time_zone="Europe/Warsaw"
    )
    configuration = Configuration(
        organization=org, name="Bench", tenant_id=uuid.uuid4(), client_id=uuid.uuid4()
    )
    configuration.set_client_secret("bench-secret-not-used")
    configuration.save()
    admin = get_user_model().objects.create_user(username="admin@bench.example", password="x")
    Membership.objects.create(user=admin, organization=org, role=Membership.Role.ADMIN)
    big, small = (
        DirectoryUser.objects.create(
            configuration=configuration,
            graph_id=str(uuid.uuid4()),
            user_principal_name=f"{name}@bench.example",
            display_name=name.capitalize(),
            onedrive="yes",
        )
        for name in ("big", "small")
    )

    started = time.perf_counter()
    big_tree = Tree(org, big, make_runs(org, configuration, big, args.runs), rng)
    leaves = []
    for t in range(TOP):
        top = big_tree.add_folder("", f"{rng.choice(WORDS).capitalize()} {t}")
        for m in range(MIDDLE):
            middle = big_tree.add_folder(top, f"{rng.choice(WORDS).capitalize()} {t}.{m}")
            for leaf in range(LEAF):
                leaves.append(big_tree.add_folder(middle, f"{rng.choice(WORDS)} {t}.{m}.{leaf}"))
    while big_tree.count < args.versions:
        big_tree.add_file(rng.choice(leaves))
        if big_tree.buffer.tell() > 64 << 20:
            big_tree.copy(connection)
    total = big_tree.count
    big_tree.copy(connection)

    small_tree = Tree(org, small, make_runs(org, configuration, small, 10), rng)
    small_leaves = [small_tree.add_folder("", f"{w.capitalize()}") for w in WORDS[:5]]
    while small_tree.count < 100:
        small_tree.add_file(rng.choice(small_leaves))
    small_tree.copy(connection)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(
        f"made {total:,} versions for the big user ({len(big_tree.folders) - 1:,} folders, "
        f"{args.runs} restore points) and {small_tree.count} for the small one in "
        f"{time.perf_counter() - started:.0f} s"
    )


@dataclass
class Who:
    """A user to time, its deepest folders and a sample of its file names."""

    user: object
    leaves: list
    names: list


def load_world():
    """The organization, its admin and both users, from the database (made now or kept)."""
    from django.contrib.auth import get_user_model

    from backups.models import FileVersion
    from o365.models import DirectoryUser
    from organizations.models import Organization

    org = Organization.objects.get(name="Bench browse")
    admin = get_user_model().objects.get(username="admin@bench.example")
    users = {}
    for label in ("big", "small"):
        user = DirectoryUser.objects.get(user_principal_name=f"{label}@bench.example")
        versions = FileVersion.objects.filter(drive__directory_user=user)
        folders = list(versions.filter(is_folder=True).values_list("path", flat=True))
        deepest = max(path.count("/") for path in folders)
        users[label] = Who(
            user=user,
            leaves=sorted(path for path in folders if path.count("/") == deepest),
            names=list(
                versions.filter(is_folder=False).order_by("?").values_list("name", flat=True)[:5000]
            ),
        )
    return org, admin, users


# ----- timings -----------------------------------------------------------------------------


def timed(repeat, call) -> list[float]:
    call()  # warm the caches (the plans, the pages) once
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def p50_p95(times):
    cuts = statistics.quantiles(times, n=20)
    return statistics.median(times), cuts[18]


def search_word(rng, names):
    """A word of a random name, or part of one (3 to 8 characters), as a person types it."""
    word = rng.choice(rng.choice(names).rsplit(".", 1)[0].split(" "))
    if len(word) <= 3:
        return word
    length = rng.randint(3, min(8, len(word)))
    start = rng.randint(0, len(word) - length)
    return word[start : start + length].lower()


def measure(args, org, admin, who, rng):
    from django.test import Client
    from django.urls import reverse

    from backups import browse
    from backups.selection import restore_points

    user, leaves, names = who.user, who.leaves, who.names
    points = list(restore_points(user))
    client = Client()
    client.force_login(admin)
    browse_url = reverse("backups:browse", args=[org.code, user.configuration.code, user.graph_id])

    def page():
        run = rng.choice(points)
        folder = browse.folder_page(run, rng.choice(leaves))
        assert folder.page.paginator.count >= 0

    def view():
        response = client.get(
            browse_url, {"at": str(rng.choice(points).code), "path": rng.choice(leaves)}
        )
        assert response.status_code == 200

    def user_search():
        filters = browse.SearchFilters(text=search_word(rng, names))
        found = browse.search_page(org, filters, directory_user=user)
        assert found.object_list

    def name_search():
        filters = browse.SearchFilters(text=rng.choice(names))
        found = browse.search_page(org, filters, directory_user=user)
        assert found.object_list

    def org_search():
        filters = browse.SearchFilters(text=search_word(rng, names))
        found = browse.search_page(org, filters)
        assert found.object_list

    calls = {
        "page": page,
        "view": view,
        "search": user_search,
        "name": name_search,
        "org": org_search,
    }
    return {kind: timed(args.repeat, calls[kind]) for kind in args.only}


def explain(org, who, rng):
    from django.db import connection

    from backups import browse
    from backups.selection import restore_points

    user, leaves = who.user, who.leaves
    points = list(restore_points(user))
    run = points[len(points) // 2]
    folder = browse.folder_items(run, rng.choice(leaves))[: browse.FOLDER_PAGE_SIZE]
    rare = next(name for name in who.names if any(ch.isdigit() for ch in name))

    def found(text):
        filters = browse.SearchFilters(text=text)
        return browse.search(org, filters, directory_user=user)[: browse.SEARCH_PAGE_SIZE + 1]

    plans = {}
    for name, queryset in (
        ("folder page", folder),
        ("search of a common word, 'budg'", found("budg")),
        (f"search of a whole name, {rare!r}", found(rare)),
    ):
        sql, params = queryset.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + sql, params)
            plans[name] = [line for (line,) in cursor.fetchall()]
    return plans


def main():
    args = parse_args()
    rng = random.Random(args.seed)
    admin_url = f"postgresql://postgres@{args.host}/postgres"
    database_url = f"postgres://postgres@{args.host}/{args.database}"
    import tempfile

    workdir = Path(tempfile.mkdtemp(prefix="kodo-bench-browse-"))
    if not args.reuse:
        recreate_database(admin_url, args.database)
    try:
        setup_django(database_url, workdir)
        from django.db import connection

        connection.ensure_connection()
        version = connection.pg_version
        print(
            f"PostgreSQL {version // 10000}.{version % 10000}, {os.cpu_count()} CPUs; "
            f"{args.repeat} timings each (ms)"
        )
        if not args.reuse:
            make_world(args, rng)
        org, admin, users = load_world()
        results = {name: measure(args, org, admin, users[name], rng) for name in ("big", "small")}
        targets = {"page": 200, "view": 200, "search": 500, "name": 500, "org": 500}
        print(f"{'':8}{'big p50':>9}{'p95':>8}{'small p50':>11}{'p95':>8}{'ratio p95':>11}  target")
        for kind, target in targets.items():
            if kind not in args.only:
                continue
            big50, big95 = p50_p95(results["big"][kind])
            small50, small95 = p50_p95(results["small"][kind])
            verdict = "ok" if big95 < target else "MISSED"
            print(
                f"{kind:8}{big50:9.1f}{big95:8.1f}{small50:11.1f}{small95:8.1f}"
                f"{big95 / small95:11.2f}  p95 < {target} ms {verdict}"
            )
        for name, plan in explain(org, users["big"], rng).items():
            print(f"\nEXPLAIN ANALYZE, {name} (big user):")
            print("\n".join("  " + line for line in plan))
    finally:
        from django.db import connections

        connections.close_all()
        if not (args.keep or args.reuse):
            recreate_database(admin_url, args.database, create=False)


if __name__ == "__main__":
    main()
