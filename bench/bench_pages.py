"""The portal's pages at a service provider's size (issue 14, item 8).

Run: .venv/bin/python bench/bench_pages.py [--database sqlite|postgresql] [--users 100000]
         [--versions 1000000] [--organizations 4] [--requests 30] [--reuse] [--explain]

Target: every page answers in p95 < 100 ms, in a number of queries that does not grow with the
data, on SQLite and PostgreSQL.

Rows are made directly in the database (bulk inserts, no backups run): --organizations
organizations, the first holding half the users (the pages are measured as its admin: the
worst case); --users Microsoft 365 users with their Kodo accounts, two configurations each (one
whose TEST CONNECTION failed, one whose certificate expires in 10 days); --runs-per-user backup
runs each, on the last days, the last one of each user mostly succeeded and some failed, a few
users last backed up five days ago, 50 backups running; --versions file versions spread over the
users' drives, a tenth of them replaced or deleted; import and synchronization jobs, a
verification, 60 days of usage samples.

Then each page is requested --requests times (after two warm-up requests) through Django's test
client, logged in as the organization's admin (the overview and the usage CSV as the server
administrator), with DEBUG off as in production. Printed for each: median and p95 of the
response time, p95 of this process's CPU time (on SQLite, the whole work: the figure to read on
a busy machine; on PostgreSQL the server's share is not in it), and the number of SQL queries.
With --explain, the three slowest queries of each page over the target are printed with their
query plans.

The database is its own: an SQLite file under var/bench-pages, or the PostgreSQL database
kodo_bench_pages (dropped and created again; trust auth as postgres on 127.0.0.1, or
--database-url). --reuse keeps the database of a previous run with the same sizes.
"""

import argparse
import datetime as dt
import hashlib
import os
import random
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_MS = 100.0
BATCH = 5000


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/kodo_bench_pages"
    )
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--versions", type=int, default=1_000_000)
    parser.add_argument("--organizations", type=int, default=4)
    parser.add_argument("--runs-per-user", type=int, default=3)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--reuse", action="store_true", help="keep a database of the same sizes")
    parser.add_argument("--explain", action="store_true", help="plans of the slow pages' queries")
    parser.add_argument("--only", help="comma-separated page names to measure")
    return parser.parse_args()


def sizes_tag(args) -> str:
    return (
        f"u{args.users}-v{args.versions}-o{args.organizations}-r{args.runs_per_user}"
        f"-{args.database}"
    )


def prepare_environment(args) -> tuple[str, bool]:
    """Point Django at the bench database; (its description, whether it must be built)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kodo.settings")
    os.environ.setdefault("DEBUG", "1")  # development keys; DEBUG itself is turned off below
    os.environ.setdefault("KODO_VAR_DIR", "var/bench-pages")
    var = Path(os.environ["KODO_VAR_DIR"])
    var = var if var.is_absolute() else ROOT / var
    var.mkdir(parents=True, exist_ok=True)
    marker = var / f"built-{args.database}.txt"
    reuse = args.reuse and marker.exists() and marker.read_text() == sizes_tag(args)
    if not reuse:
        marker.unlink(missing_ok=True)
    if args.database == "postgresql":
        if not reuse:
            recreate_postgres(args.database_url)
        os.environ["DATABASE_URL"] = args.database_url
        description = f"PostgreSQL ({urlsplit(args.database_url).path.lstrip('/')})"
    else:
        path = var / "pages.sqlite3"
        if not reuse:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        os.environ["DATABASE_URL"] = f"sqlite:///{path}"
        description = f"SQLite ({path.relative_to(ROOT) if path.is_relative_to(ROOT) else path})"
    return description, not reuse


def recreate_postgres(url):
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = sql.Identifier(parts.path.lstrip("/"))
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(name))


# ----- the rows --------------------------------------------------------------------------------


class Builder:
    """Bulk inserts of a service provider's rows; created_at values in the past (auto_now_add
    is turned off for the build)."""

    def __init__(self, args, now):
        self.args = args
        self.now = now
        self.random = random.Random(14)

    def build(self):
        from backups.models import BackupRun, DriveState, FileVersion, Verification
        from o365.models import DirectoryJob

        for model in (BackupRun, Verification, DirectoryJob):
            model._meta.get_field("created_at").auto_now_add = False
        # A drive's updated_at is when its last completed backup finished (set by the engine).
        DriveState._meta.get_field("updated_at").auto_now = False
        started = time.perf_counter()
        self.organizations()
        self.users()
        self.runs()
        self.versions(FileVersion)
        self.jobs()
        self.samples()
        print(f"Built in {time.perf_counter() - started:.0f} s")

    def step(self, text):
        print(f"  {text}", flush=True)

    def organizations(self):
        from django.contrib.auth import get_user_model

        from organizations.models import Membership, Organization

        self.step(f"{self.args.organizations} organizations, their admins")
        User = get_user_model()
        self.orgs = [
            Organization.objects.create(
                name=f"Customer {i:02d}", services_enabled=True, time_zone="Europe/Warsaw"
            )
            for i in range(self.args.organizations)
        ]
        for i, org in enumerate(self.orgs):
            admin = User.objects.create_user(
                username=f"admin{i}@customer{i}.example", email=f"admin{i}@customer{i}.example"
            )
            Membership.objects.create(user=admin, organization=org, role=Membership.Role.ADMIN)
        User.objects.create_superuser(username="root@kodo.example", email="root@kodo.example")

    def users(self):
        from django.contrib.auth import get_user_model

        from o365.models import Configuration, DirectoryUser
        from organizations.models import Membership

        User = get_user_model()
        total = self.args.users
        first = total // 2
        rest = len(self.orgs) - 1
        counts = [first] + [
            (total - first) // rest + (1 if i < (total - first) % rest else 0) for i in range(rest)
        ]
        self.step(f"{total} users with their accounts and memberships ({counts})")
        self.configurations = []
        soon = self.now + dt.timedelta(days=10)
        for i, org in enumerate(self.orgs):
            for j in range(2):
                configuration = Configuration(
                    organization=org,
                    name=f"Tenant {i}-{j}",
                    tenant_id=f"00000000-0000-4000-8000-{i:06d}{j:06d}",
                    client_id=f"00000000-0000-4000-9000-{i:06d}{j:06d}",
                )
                configuration.set_client_secret("bench-secret")
                if j == 0:
                    configuration.last_test_at = self.now - dt.timedelta(hours=3)
                    configuration.last_test_ok = False
                    configuration.last_test_message = "The client secret is wrong."
                else:
                    configuration.certificate_not_after = soon
                    configuration.certificate_thumbprint = "AB" * 20
                configuration.save()
                self.configurations.append(configuration)
        self.user_ids = []  # (organization, configuration, directory user id)
        n = 0
        for i, (org, count) in enumerate(zip(self.orgs, counts, strict=True)):
            configurations = self.configurations[2 * i : 2 * i + 2]
            for start in range(0, count, BATCH):
                size = min(BATCH, count - start)
                numbers = range(n + start, n + start + size)
                accounts = User.objects.bulk_create(
                    User(
                        username=f"user{k}@customer{i}.example",
                        email=f"user{k}@customer{i}.example",
                        first_name=f"First{k}",
                        last_name=f"Last{k}",
                        password="!",
                    )
                    for k in numbers
                )
                Membership.objects.bulk_create(
                    Membership(user=a, organization=org, role=Membership.Role.USER)
                    for a in accounts
                )
                directory = DirectoryUser.objects.bulk_create(
                    DirectoryUser(
                        configuration=configurations[k % 2],
                        graph_id=f"00000000-0000-4000-a000-{k:012d}",
                        user_principal_name=f"user{k}@customer{i}.example",
                        mail=f"user{k}@customer{i}.example",
                        display_name=f"First{k} Last{k}",
                        licensed=True,
                        onedrive=DirectoryUser.OneDrive.PROVISIONED,
                        drive_id=f"b!drive{k}",
                        account=a,
                    )
                    for k, a in zip(numbers, accounts, strict=True)
                )
                self.user_ids += [
                    (org, configurations[k % 2], d.pk)
                    for k, d in zip(numbers, directory, strict=True)
                ]
            n += count

    def runs(self):
        from backups.models import BackupRun, DriveState

        per_user = self.args.runs_per_user
        self.step(f"{per_user * len(self.user_ids)} backup runs, a drive per user")
        statuses = [BackupRun.Status.SUCCEEDED] * 90 + [BackupRun.Status.PARTIAL] * 5
        statuses += [BackupRun.Status.FAILED] * 3 + [BackupRun.Status.SKIPPED] * 2
        self.runs_of = {}  # directory user id -> [run ids]
        completed = {}  # directory user id -> its last completed run
        running_left = 50
        for start in range(0, len(self.user_ids), BATCH // per_user):
            chunk = self.user_ids[start : start + BATCH // per_user]
            runs = []
            for org, configuration, user_id in chunk:
                late = self.random.random() < 0.01
                for r in range(per_user):
                    days_ago = per_user - 1 - r + (5 if late else 0)
                    created = self.now - dt.timedelta(
                        days=days_ago, minutes=self.random.randint(30, 600)
                    )
                    last = r == per_user - 1
                    status = self.random.choice(statuses) if last else BackupRun.Status.SUCCEEDED
                    active = last and org is self.orgs[0] and running_left > 0
                    if active:
                        running_left -= 1
                        status = BackupRun.Status.RUNNING
                    runs.append(
                        BackupRun(
                            organization=org,
                            configuration=configuration,
                            directory_user_id=user_id,
                            active_user_id=user_id if active else None,
                            status=status,
                            trigger=BackupRun.Trigger.SCHEDULE,
                            created_at=created,
                            started_at=created,
                            finished_at=None if active else created + dt.timedelta(minutes=7),
                            files_seen=20,
                            files_downloaded=10 if r == 0 else 2,
                            bytes_downloaded=(50 if r == 0 else 2) * 1_000_000,
                            bytes_stored=(30 if r == 0 else 1) * 1_000_000,
                            error="Download failed" if status == BackupRun.Status.FAILED else "",
                        )
                    )
            created = BackupRun.objects.bulk_create(runs)
            for run in created:
                self.runs_of.setdefault(run.directory_user_id, []).append(run.pk)
                if run.status in (BackupRun.Status.SUCCEEDED, BackupRun.Status.PARTIAL):
                    completed[run.directory_user_id] = run
            DriveState.objects.bulk_create(
                DriveState(
                    organization=org,
                    directory_user_id=user_id,
                    drive_id=f"b!drive{user_id}",
                    root_item_id="root",
                    delta_link="https://graph.example/delta?token=x",
                    last_run=completed[user_id],
                    updated_at=completed[user_id].finished_at,
                )
                for org, _, user_id in chunk
            )
        self.drives = dict(DriveState.objects.values_list("directory_user_id", "pk"))

    def versions(self, FileVersion):
        total = self.args.versions
        self.step(f"{total} file versions")
        per_user = max(1, total // len(self.user_ids))
        made = 0
        batch = []
        for org, _, user_id in self.user_ids:
            if made >= total:
                break
            runs = self.runs_of[user_id]
            drive = self.drives[user_id]
            for v in range(min(per_user, total - made)):
                folder = v == 0
                ended = not folder and v % 10 == 9 and len(runs) > 1
                name = "Documents" if folder else f"Report {v} of {user_id}.docx"
                digest = hashlib.sha256(f"{user_id}/{v}".encode()).hexdigest()
                batch.append(
                    FileVersion(
                        organization=org,
                        drive_id=drive,
                        item_id=f"item-{v}",
                        parent_id="root" if folder else "item-0",
                        path="/Documents" if folder else f"/Documents/{name}",
                        name=name,
                        is_folder=folder,
                        size=0 if folder else 200_000 + v,
                        quickxorhash=digest[:28],
                        first_run_id=runs[0],
                        end_run_id=runs[1] if ended else None,
                        deleted=ended and v % 20 == 19,
                        chunks=[] if folder else [[digest, 200_000 + v]],
                    )
                )
                made += 1
                if len(batch) >= BATCH:
                    FileVersion.objects.bulk_create(batch)
                    batch = []
        if batch:
            FileVersion.objects.bulk_create(batch)

    def jobs(self):
        from backups.models import Verification
        from o365.models import DirectoryJob

        self.step("directory jobs, verifications")
        for k, configuration in enumerate(self.configurations):
            DirectoryJob.objects.bulk_create(
                DirectoryJob(
                    configuration=configuration,
                    kind=DirectoryJob.Kind.SYNC if d else DirectoryJob.Kind.IMPORT,
                    status=DirectoryJob.Status.FAILED
                    if (k % 2 == 0 and d == 29)
                    else DirectoryJob.Status.SUCCEEDED,
                    created_at=self.now - dt.timedelta(days=30 - d),
                    finished_at=self.now - dt.timedelta(days=30 - d, minutes=-2),
                    users_seen=1000,
                )
                for d in range(30)
            )
        for org in self.orgs:
            Verification.objects.create(
                organization=org,
                status=Verification.Status.SOUND,
                created_at=self.now - dt.timedelta(hours=20),
                finished_at=self.now - dt.timedelta(hours=19),
                sample=0.05,
            )

    def samples(self):
        from backups.models import UsageSample

        self.step("60 days of usage samples")
        today = self.now.date()
        UsageSample.objects.bulk_create(
            UsageSample(
                organization=org,
                day=today - dt.timedelta(days=d),
                protected_users=1000 + d,
                stored_bytes=10**9 - d,
            )
            for org in self.orgs
            for d in range(1, 61)
        )


# ----- measuring -------------------------------------------------------------------------------


class QueryLog:
    """The SQL of the queries sent on the default connection, with their duration."""

    def __init__(self):
        self.queries = []

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.queries.append((time.perf_counter() - started, sql, params))


def pages():
    """(name, url, user kind) of each page measured."""
    from django.urls import reverse

    from organizations.models import Organization

    org = Organization.objects.order_by("name").first()
    code = org.code
    month = dt.datetime.now(dt.UTC).strftime("%Y-%m")
    return org, [
        ("dashboard", reverse("backups:dashboard", args=[code]), "admin"),
        ("backups", reverse("backups:backups", args=[code]), "admin"),
        ("users search", reverse("o365:organization-users", args=[code]) + "?q=user4242", "admin"),
        ("tasks", reverse("backups:tasks", args=[code]), "admin"),
        ("tasks, user filter", reverse("backups:tasks", args=[code]) + "?user=user4242", "admin"),
        ("overview", reverse("backups:server-overview"), "server"),
        ("overview, by stale", reverse("backups:server-overview") + "?sort=-stale", "server"),
        ("usage CSV", reverse("backups:server-usage") + f"?month={month}", "server"),
    ]


def percentile(values, fraction):
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def measure(args):
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from organizations.models import Membership

    org, measured = pages()
    admin = Membership.objects.get(organization=org, role=Membership.Role.ADMIN).user
    root = get_user_model().objects.get(username="root@kodo.example")
    clients = {"admin": Client(), "server": Client()}
    clients["admin"].force_login(admin)
    clients["server"].force_login(root)
    only = set(args.only.split(",")) if args.only else None
    results = []
    print(f"\n{'page':<20} {'median ms':>10} {'p95 ms':>8} {'CPU p95':>8} {'queries':>8}")
    for name, url, who in measured:
        if only and name not in only:
            continue
        client = clients[who]
        for _ in range(2):
            response = client.get(url)
            assert response.status_code == 200, (name, response.status_code)
        times, cpu = [], []
        for _ in range(args.requests):
            log = QueryLog()
            with connection.execute_wrapper(log):
                started, started_cpu = time.perf_counter(), time.process_time()
                response = client.get(url)
                if getattr(response, "streaming", False):
                    b"".join(response.streaming_content)
                times.append((time.perf_counter() - started) * 1000)
                cpu.append((time.process_time() - started_cpu) * 1000)
            assert response.status_code == 200, (name, response.status_code)
        median, p95 = statistics.median(times), percentile(times, 0.95)
        flag = "" if p95 < TARGET_MS else "  over target"
        print(
            f"{name:<20} {median:>10.1f} {p95:>8.1f} {percentile(cpu, 0.95):>8.1f} "
            f"{len(log.queries):>8}{flag}",
            flush=True,
        )
        results.append((name, median, p95, log))
    return results


def explain(results):
    from django.db import connection

    prefix = "EXPLAIN QUERY PLAN " if connection.vendor == "sqlite" else "EXPLAIN "
    for name, _, p95, log in results:
        if p95 < TARGET_MS:
            continue
        print(f"\n== {name} (p95 {p95:.1f} ms): its slowest queries")
        for seconds, sql, params in sorted(log.queries, key=lambda q: q[0], reverse=True)[:3]:
            print(f"\n{seconds * 1000:.1f} ms: {sql[:500]}")
            with connection.cursor() as cursor:
                cursor.execute(prefix + sql, params)
                for row in cursor.fetchall():
                    print("   ", " ".join(str(part) for part in row))


def main():
    args = parse_args()
    database, build = prepare_environment(args)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["testserver"]
    print(f"Database: {database}")
    if build:
        call_command("migrate", verbosity=0)
        if connection.vendor == "sqlite":
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA synchronous=OFF")
        print(
            f"Building {args.users} users, {args.versions} file versions, "
            f"{args.organizations} organizations"
        )
        Builder(args, timezone.now()).build()
        with connection.cursor() as cursor:
            # PostgreSQL: VACUUM too, so that index-only scans need not visit the table (as
            # autovacuum does in a live database).
            cursor.execute("ANALYZE" if connection.vendor == "sqlite" else "VACUUM ANALYZE")
        marker = Path(settings.VAR_DIR) / f"built-{args.database}.txt"
        marker.write_text(sizes_tag(args))
    results = measure(args)
    if args.explain and results:
        explain(results)
    over = [name for name, _, p95, _ in results if p95 >= TARGET_MS]
    print(f"\nTarget p95 < {TARGET_MS:.0f} ms: " + ("met" if not over else f"missed by {over}"))


if __name__ == "__main__":
    main()
