"""IMPORT USERS and SYNCHRONIZE USERS at scale, against m365sim over HTTPS (Issue 5, item 8).

Run: .venv/bin/python bench/bench_import_users.py [--users 100000] [--page-size 100]
         [--database-url postgres://postgres@127.0.0.1:5432/kodo_bench]

Targets on the 2-core machine: import of 100,000 users under 60 s, a synchronization with no
changes under 5 s, peak worker memory under 300 MB.

The simulator runs in a subprocess (python -m m365sim), so the peak RSS printed is the worker's
alone. Its users delta pages hold --page-size users (default 100, Graph's usual page). The
worker's code path runs in this process: do_run_directory_job on a DirectoryJob row. The
database is its own, created fresh: an SQLite file under var/bench, or the PostgreSQL database
named in --database-url (dropped and created again; trust auth as postgres on 127.0.0.1).

1. Baseline: page through /users/delta with the Graph client, touching no database.
2. IMPORT USERS of every user: wall time, users/s, SQL queries per Graph page, time per phase
   (mirror refresh, account creation, OneDrive checks: GET /users/{id}/drive in JSON batches of
   20), peak RSS.
3. SYNCHRONIZE USERS with no change in the tenant (one delta request): wall time, queries.
Then a ratio: the import's mirror refresh and the whole import, against the raw Graph read.
"""

import argparse
import json
import os
import resource
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument(
        "--page-size",
        type=int,
        default=100,
        help="users per /users/delta page (Graph sends 100 to 200)",
    )
    parser.add_argument(
        "--database-url",
        default="",
        help="a PostgreSQL URL; its database is dropped and created again",
    )
    parser.add_argument(
        "--include-unlicensed",
        action="store_true",
        help="import unlicensed users too (m365sim's users without a OneDrive)",
    )
    parser.add_argument(
        "--drive-threads", type=int, help="override o365.directory.DRIVE_CHECK_THREADS for this run"
    )
    parser.add_argument(
        "--profile", metavar="FILE", help="write a cProfile of the import to FILE (slows it down)"
    )
    return parser.parse_args()


def prepare_environment(args) -> str:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kodo.settings")
    os.environ.setdefault("DEBUG", "1")  # development keys; query logging is turned off below
    os.environ.setdefault("KODO_VAR_DIR", "var/bench")
    var = Path(os.environ["KODO_VAR_DIR"])
    var = var if var.is_absolute() else ROOT / var
    var.mkdir(parents=True, exist_ok=True)
    if args.database_url:
        recreate_postgres(args.database_url)
        os.environ["DATABASE_URL"] = args.database_url
        return f"PostgreSQL ({urlsplit(args.database_url).path.lstrip('/')})"
    path = var / "bench.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    os.environ["DATABASE_URL"] = f"sqlite:///{path}"
    return f"SQLite ({path.relative_to(ROOT) if path.is_relative_to(ROOT) else path})"


def recreate_postgres(url, create=True):
    """Drop the URL's database (and create it again), connected to the postgres database."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = sql.Identifier(parts.path.lstrip("/"))
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        if create:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(name))


# ----- the simulator, in its own process ------------------------------------------------------


@contextmanager
def simulator(users, page_size, state_dir):
    info_file = Path(state_dir) / "m365sim.json"
    command = [
        sys.executable,
        "-m",
        "m365sim",
        "--seed",
        "1",
        "--users",
        str(users),
        "--files-per-user",
        "0",
        "--state-dir",
        str(state_dir),
        "--info-file",
        str(info_file),
    ]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 600
        while not info_file.exists():
            if process.poll() is not None:
                raise SystemExit(f"m365sim exited with {process.returncode}")
            if time.monotonic() > deadline:
                raise SystemExit("m365sim did not start within 10 minutes")
            time.sleep(0.2)
        info = json.loads(info_file.read_text())
        running = SimpleNamespace(
            info=info, pid=process.pid, ready_seconds=time.perf_counter() - started
        )
        running.admin = AdminApi(info)
        running.admin.post("configure", users_delta_page_size=page_size)
        yield running
    finally:
        process.terminate()
        process.wait(30)


class AdminApi:
    def __init__(self, info):
        self.base = info["admin_base"]
        self.context = ssl.create_default_context(cafile=info["ca_file"])

    def _call(self, request):
        with urllib.request.urlopen(request, context=self.context) as response:
            return json.load(response)["result"]

    def get(self, method):
        return self._call(urllib.request.Request(f"{self.base}/{method}"))

    def post(self, method, **kwargs):
        return self._call(
            urllib.request.Request(
                f"{self.base}/{method}",
                data=json.dumps(kwargs).encode(),
                headers={"Content-Type": "application/json"},
            )
        )


# ----- measuring -------------------------------------------------------------------------------


class QueryCounter:
    """Counts the SQL queries sent on the default connection; an executemany counts once (one
    call, one statement prepared), its rows are counted apart."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.count = self.many = self.many_rows = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        if many:
            params = list(params)
            self.many += 1
            self.many_rows += len(params)
        return execute(sql, params, many, context)


def process_cpu_seconds(pid) -> float:
    """User + system CPU time of a process, from /proc (Linux)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class PhaseTimer:
    """Wall time and CPU time (this worker's; the simulator's) of each DirectorySync step, by
    wrapping the class's methods."""

    PHASES = ("refresh_mirror", "import_accounts", "synchronize_accounts", "check_onedrives")

    def __init__(self):
        self.seconds = {}
        self.cpu = {}
        self.sim_pid = None

    def install(self):
        from o365.directory import DirectorySync

        for name in self.PHASES:
            original = getattr(DirectorySync, name)

            def timed(sync, *args, _original=original, _name=name, **kwargs):
                start, cpu = time.perf_counter(), time.process_time()
                sim_cpu = process_cpu_seconds(self.sim_pid) if self.sim_pid else 0
                try:
                    return _original(sync, *args, **kwargs)
                finally:
                    self.seconds[_name] = time.perf_counter() - start
                    self.cpu[_name] = (
                        time.process_time() - cpu,
                        process_cpu_seconds(self.sim_pid) - sim_cpu if self.sim_pid else 0,
                    )

            setattr(DirectorySync, name, timed)

    def reset(self):
        self.seconds = {}
        self.cpu = {}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def raw_graph_read(configuration):
    """Page through /users/delta as the import does, without any database work."""
    from o365.directory import SELECT

    client = configuration.graph_client()
    try:
        client.token()
        start = time.perf_counter()
        pages = users = 0
        for page in client.iter_pages("/users/delta", params={"$select": SELECT}):
            pages += 1
            users += len(page.get("value", []))
        return SimpleNamespace(seconds=time.perf_counter() - start, pages=pages, users=users)
    finally:
        client.close()


def run_job(configuration, kind, counter, phases, options=None, profile=None):
    from o365.actions import do_run_directory_job
    from o365.models import DirectoryJob

    job = DirectoryJob.objects.create(configuration=configuration, kind=kind, options=options or {})
    phases.reset()
    counter.reset()
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    start = time.perf_counter()
    do_run_directory_job(job.pk)
    seconds = time.perf_counter() - start
    if profiler:
        profiler.disable()
        profiler.dump_stats(profile)
    queries = SimpleNamespace(count=counter.count, many=counter.many, many_rows=counter.many_rows)
    job.refresh_from_db()
    assert job.status == DirectoryJob.Status.SUCCEEDED, job.error
    return SimpleNamespace(
        job=job, seconds=seconds, queries=queries, phases=dict(phases.seconds), cpu=dict(phases.cpu)
    )


def requests_between(before, after) -> str:
    """m365sim's request counts by endpoint kind between two stats() snapshots."""
    counts = {kind: n - before["requests"].get(kind, 0) for kind, n in after["requests"].items()}
    return ", ".join(f"{kind} {n:,}" for kind, n in sorted(counts.items()) if n)


# ----- the benchmark ---------------------------------------------------------------------------


def main():
    args = parse_args()
    database = prepare_environment(args)

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    # A worker runs with DEBUG off: no query log (its SQL text costs time and memory).
    settings.DEBUG = False
    call_command("migrate", verbosity=0)

    from django.contrib.auth import get_user_model

    from o365.models import DirectoryUser
    from organizations.models import Organization
    from tests.factories import sim_configuration

    if args.drive_threads:
        import o365.directory

        o365.directory.DRIVE_CHECK_THREADS = args.drive_threads
    counter = QueryCounter()
    phases = PhaseTimer()
    phases.install()
    with (
        tempfile.TemporaryDirectory(prefix="bench-m365sim-") as state_dir,
        simulator(args.users, args.page_size, state_dir) as running,
        connection.execute_wrapper(counter),
    ):
        organization = Organization.objects.create(name="Bench University", services_enabled=True)
        configuration = sim_configuration(organization, running)
        phases.sim_pid = running.pid
        rss_before = current_rss_mb()

        raw = raw_graph_read(configuration)
        stats_before = running.admin.get("stats")
        options = {"include_unlicensed": True} if args.include_unlicensed else {}
        imported = run_job(configuration, "import", counter, phases, options, profile=args.profile)
        stats_after = running.admin.get("stats")
        peak_import = peak_rss_mb()
        synced = run_job(configuration, "sync", counter, phases)
        stats_sync = running.admin.get("stats")
        peak_all = peak_rss_mb()

        rows = DirectoryUser.objects.filter(configuration=configuration)
        linked = rows.filter(account__isnull=False).count()
        onedrive = dict(
            rows.filter(account__isnull=False)
            .values_list("onedrive")
            .annotate(n=django.db.models.Count("id"))
            .order_by()
        )
        accounts = get_user_model().objects.filter(memberships__organization=organization).count()
        total_rows = rows.count()
    connection.close()
    if args.database_url:
        recreate_postgres(args.database_url, create=False)

    job = imported.job
    assert job.users_seen == args.users, (job.users_seen, args.users)
    assert total_rows == args.users and accounts == job.created == linked
    assert onedrive.get("unknown", 0) == 0, onedrive

    print(
        f"IMPORT USERS of {args.users:,} users, {database}, users delta pages of "
        f"{args.page_size} ({job.pages_read} pages); m365sim in a subprocess "
        f"(ready in {running.ready_seconds:.0f} s)"
    )
    print(
        f"  accounts created {job.created:,}, skipped {job.skipped:,} (disabled"
        f"{'' if args.include_unlicensed else ' or unlicensed'}); "
        f"OneDrive yes {onedrive.get('yes', 0):,}, no {onedrive.get('no', 0):,}"
    )
    print()
    width = 44
    print(
        f"{'baseline: raw Graph read of /users/delta':{width}} {raw.seconds:8.1f} s  "
        f"{raw.users / raw.seconds:9,.0f} users/s  ({raw.pages} pages)"
    )
    print(
        f"{'IMPORT USERS (do_run_directory_job)':{width}} {imported.seconds:8.1f} s  "
        f"{args.users / imported.seconds:9,.0f} users/s   target < 60 s"
    )
    for name, label in (
        ("refresh_mirror", "mirror refresh (/users/delta + upserts)"),
        ("import_accounts", "account creation"),
        ("check_onedrives", "OneDrive checks ($batch of 20 drives)"),
    ):
        seconds = imported.phases.get(name, 0)
        worker_cpu, sim_cpu = imported.cpu.get(name, (0, 0))
        print(
            f"  {label:{width - 2}} {seconds:8.1f} s  {seconds / imported.seconds:9.0%} of import"
            f"   CPU s: worker {worker_cpu:5.1f}, m365sim {sim_cpu:5.1f}"
        )
    print(
        f"{'  SQL queries / Graph page':{width}} {imported.queries.count / job.pages_read:8.1f}"
        f"     ({imported.queries.count:,} queries, {job.pages_read} pages; of them "
        f"{imported.queries.many} executemany of {imported.queries.many_rows:,} rows)"
    )
    print(f"{'SYNCHRONIZE USERS, no change':{width}} {synced.seconds:8.1f} s{'':22}target < 5 s")
    print(
        f"{'  SQL queries / Graph page':{width}} "
        f"{synced.queries.count / synced.job.pages_read:8.1f}"
        f"     ({synced.queries.count:,} queries, {synced.job.pages_read} pages)"
    )
    print(
        f"{'peak worker RSS after import / after sync':{width}} {peak_import:6.0f} / "
        f"{peak_all:.0f} MB  (at start {rss_before:.0f} MB)   target < 300 MB"
    )
    print()
    print(
        f"ratio mirror refresh / raw Graph read:     "
        f"{imported.phases['refresh_mirror'] / raw.seconds:6.2f}"
    )
    print(f"ratio IMPORT USERS / raw Graph read:       {imported.seconds / raw.seconds:6.2f}")
    print(
        "m365sim requests during import: "
        + requests_between(stats_before, stats_after)
        + "; during sync: "
        + requests_between(stats_after, stats_sync)
    )
    if args.profile:
        print(f"cProfile of the import written to {args.profile}")


if __name__ == "__main__":
    main()
