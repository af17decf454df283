"""Kodo's restore to OneDrive against m365sim, beside a plain uploader and reading the store.

    .venv/bin/python bench/bench_restore.py                          # 20 users, 10,000 files, ~5 GB
    .venv/bin/python bench/bench_restore.py --files 2000 --scale 0.2  # a quick ~200 MB run
    .venv/bin/python bench/bench_restore.py --database-url postgres://postgres@127.0.0.1:5432/kodo_bench_restore

The tenant is the backup benchmark's (bench/bench_backup.py: same sizes, m365sim in its own
process, Kodo here on a fresh SQLite database or the PostgreSQL one named, DEBUG off). Every
OneDrive is backed up first, then:

  a. restore: each user's whole OneDrive to a new folder of that OneDrive, `--parallel` restores
     at once, each with KODO_RESTORE_UPLOAD_THREADS (--threads) uploads: MB/s and files/s.
     Everything Kodo does is in it: the plan, the folders, reading and decrypting the store,
     upload sessions in fragments, verifying Microsoft's quickXorHash, recording every file.
  b. the baseline, in the same run: the same files (same sizes, same users, same threads and
     parallel users) uploaded by a plain uploader with the same session rules (one
     createUploadSession per file, fragments of the same size, no Authorization header on the
     upload URL) and bytes from memory, nothing recorded; ratio a/b (target >= 0.8, goal 1.0).
     The load of a shared machine drifts: the baseline runs before and after each restore
     (--rounds of them), and the ratio compares the best rounds (and the means).
  c. reading the same versions from the store to nowhere (same parallelism): MB/s.
  d. a restore whose worker is SIGKILLed mid-upload (a `manage.py restore --wait` process, with
     2.5 MiB fragments so that files are part-way), then taken over here: bytes uploaded again
     (fragment bytes m365sim received - the restore's bytes) beside the uploads in flight.

MB = 10^6 bytes. The machine's other work skews rates: the load average is printed. Disk: the
store plus m365sim's copy of every upload (about 5 GB per round of each side at full size),
removed at the end.
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_backup import (  # noqa: E402
    MB,
    SIZE_MIX,
    Sim,
    backup_all,
    make_tenant,
    recreate_postgres,
    setup_django,
)

ROOT = HERE.parent


# ----- a. Kodo's restore ----------------------------------------------------------------------


def restore_all(users, threads, parallel, fragment):
    """Restore every user's whole OneDrive to a new folder, `parallel` at once; (jobs, s)."""
    from django.db import connection

    from backups.actions import do_run_restore, do_start_restore
    from backups.models import RestoreJob

    def one(user):
        try:
            job = do_start_restore(
                source_user=user, run=None, what=RestoreJob.What.DRIVE, enqueue=False
            )
            do_run_restore(job.pk, job.organization_id, threads=threads, fragment_size=fragment)
            job.refresh_from_db()
            return job
        finally:
            connection.close()

    started = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        jobs = list(pool.map(one, users))
    seconds = time.perf_counter() - started
    bad = [j for j in jobs if j.status != RestoreJob.Status.SUCCEEDED]
    if bad:
        print(f"  WARNING: {len(bad)} restores did not succeed: {bad[0].status} {bad[0].error}")
    return jobs, seconds


# ----- b. the plain uploader ------------------------------------------------------------------


def plain_upload_all(configuration, users, threads, parallel, fragment):
    """The same files (sizes) uploaded with upload sessions from memory; (files, bytes, s)."""
    import requests

    from backups.models import FileVersion
    from o365.onedrive import user_drive_id

    client = configuration.graph_client()
    token = client.token()
    graph = client.endpoints.graph_base
    ca = client.session.verify
    work = []
    for user in users:
        drive = user_drive_id(client, user.graph_id)
        sizes = list(
            FileVersion.objects.current()
            .filter(drive__directory_user=user, is_folder=False)
            .values_list("path", "size")
        )
        work.append((drive, sizes))
    client.close()
    biggest = max((size for _, sizes in work for _, size in sizes), default=0)
    source = memoryview(os.urandom(min(biggest, 64 << 20) or 1))
    local = threading.local()

    def session():
        if not hasattr(local, "session"):
            local.session = requests.Session()
            local.session.trust_env = False
            local.session.verify = ca
        return local.session

    def upload(drive, path, size):
        s = session()
        url = f"{graph}/drives/{drive}/root:/Baseline{quote(path)}:/createUploadSession"
        answer = s.post(
            url,
            json={"item": {"@microsoft.graph.conflictBehavior": "replace"}},
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        answer.raise_for_status()
        upload_url = answer.json()["uploadUrl"]
        offset = 0
        while offset < size:
            length = min(fragment, size - offset)
            start = offset % len(source)
            data = bytes(source[start : start + length])
            if len(data) < length:  # wrap around the buffer
                data += bytes(source[: length - len(data)])
            put = s.put(
                upload_url,
                data=data,
                headers={"Content-Range": f"bytes {offset}-{offset + length - 1}/{size}"},
                timeout=60,
            )
            put.raise_for_status()
            offset += length

    def one_user(job):
        drive, sizes = job
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda entry: upload(drive, *entry), [e for e in sizes if e[1]]))

    started = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(one_user, work))
    seconds = time.perf_counter() - started
    files = sum(1 for _, sizes in work for _, size in sizes if size)
    size = sum(size for _, sizes in work for _, size in sizes)
    return files, size, seconds


# ----- c. the store to nowhere ------------------------------------------------------------------


def read_store(org, users, threads, parallel):
    from backups.models import FileVersion
    from backups.storage import store_for

    store = store_for(org)
    versions = list(
        FileVersion.objects.current()
        .filter(drive__directory_user__in=users, is_folder=False)
        .values_list("chunks", flat=True)
    )

    def read(chunks):
        return sum(len(block) for block in store.read_stream(c for c, _ in chunks))

    started = time.perf_counter()
    with ThreadPoolExecutor(threads * parallel) as pool:
        total = sum(pool.map(read, versions))
    return len(versions), total, time.perf_counter() - started


# ----- d. a restore whose worker is killed ------------------------------------------------------


def killed_restore(sim, user, fragment, threads):
    from backups.actions import do_run_restore
    from backups.models import RestoreItem, RestoreJob

    sim.call("reset_stats")
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "restore",
            "--organization",
            str(user.configuration.organization.code),
            "--user",
            user.email,
            "--to",
            "/Killed restore",
            "--wait",
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "KODO_RESTORE_UPLOAD_THREADS": str(threads),
            "KODO_RESTORE_FRAGMENT_BYTES": str(fragment),
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 600
    job = None
    while time.monotonic() < deadline and process.poll() is None:
        job = RestoreJob.objects.filter(source_user=user, folder="/Killed restore").first()
        if (
            job
            and job.bytes_total
            and job.bytes_finished >= 0.3 * job.bytes_total
            and job.items.filter(status=RestoreItem.Status.PENDING, bytes_done__gt=0).exists()
        ):
            break  # a third done, and a file part-way in OneDrive
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    if job is None:
        print("d. the killed restore never started")
        return
    job.refresh_from_db()
    killed_at = job.bytes_finished / max(1, job.bytes_total)
    in_flight = list(
        job.items.filter(status=RestoreItem.Status.PENDING)
        .exclude(upload_session=None)
        .values_list("bytes_done", "size")
    )
    received_before = sim.call("stats")["fragment_bytes_received"]
    RestoreJob.objects.filter(pk=job.pk).update(heartbeat_at=None)  # the worker is gone
    started = time.perf_counter()
    do_run_restore(job.pk, job.organization_id, threads=threads, fragment_size=fragment)
    seconds = time.perf_counter() - started
    job.refresh_from_db()
    received = sim.call("stats")["fragment_bytes_received"]
    again = received - job.bytes_total
    within = again < fragment * max(1, len(in_flight))
    verdict = f"{'<' if within else 'MORE than'} 1 fragment per file in flight"
    print(
        f"d. killed at {100 * killed_at:.0f}% of "
        f"{job.bytes_total / MB:.0f} MB: {len(in_flight)} uploads in flight (sessions saved, "
        f"{sum(done for done, _ in in_flight) / MB:.1f} MB of them in OneDrive); the takeover "
        f"took {seconds:.1f} s and ended {job.status}; bytes uploaded again: {again / 1e3:.0f} kB "
        f"({again / max(1, fragment):.2f} fragments of {fragment / 2**20:g} MiB; "
        f"{received_before / MB:.0f} MB received before the kill) — "
        f"{verdict}"
    )


def kodo_round(sim, users, args, fragment) -> dict:
    sim.call("reset_stats")
    sim_cpu, cpu, load = sim.cpu_seconds(), os.times(), os.getloadavg()[0]
    jobs, seconds = restore_all(users, args.threads, args.parallel, fragment)
    after = os.times()
    restored = sum(j.bytes_restored for j in jobs)
    return {
        "jobs": jobs,
        "files": sum(j.files_restored for j in jobs),
        "bytes": restored,
        "seconds": seconds,
        "rate": restored / seconds / MB,
        "failed": sum(j.files_failed for j in jobs),
        "cpu": (after.user - cpu.user) + (after.system - cpu.system),
        "sim_cpu": sim.cpu_seconds() - sim_cpu,
        "load": max(load, os.getloadavg()[0]),
    }


def plain_round(sim, configuration, users, args, fragment) -> dict:
    sim_cpu, cpu, load = sim.cpu_seconds(), os.times(), os.getloadavg()[0]
    files, size, seconds = plain_upload_all(
        configuration, users, args.threads, args.parallel, fragment
    )
    after = os.times()
    return {
        "files": files,
        "bytes": size,
        "seconds": seconds,
        "rate": size / seconds / MB,
        "cpu": (after.user - cpu.user) + (after.system - cpu.system),
        "sim_cpu": sim.cpu_seconds() - sim_cpu,
        "load": max(load, os.getloadavg()[0]),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--files", type=int, default=10_000, help="files in the whole tenant")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiplies every file size bound (1 KB-100 MB)"
    )
    parser.add_argument("--size", type=float, help="about this many MB in all (sets --scale)")
    parser.add_argument("--threads", type=int, default=4, help="uploads per restore")
    parser.add_argument("--parallel", type=int, default=2, help="restores at once")
    parser.add_argument("--backup-threads", type=int, default=8)
    parser.add_argument(
        "--fragment-mib", type=float, default=10, help="fragment size (a multiple of 0.3125)"
    )
    parser.add_argument(
        "--kill-fragment-kib",
        type=int,
        default=2560,
        help="phase d's fragment size (a multiple of 320): small, so files are part-way",
    )
    parser.add_argument("--skip-kill", action="store_true", help="skip phase d")
    parser.add_argument(
        "--rounds", type=int, default=1, help="rounds of (baseline, restore), then a baseline"
    )
    parser.add_argument("--database-url", default="", help="postgres://... (dropped, created)")
    args = parser.parse_args()
    if args.size:
        args.scale = args.size * MB / (args.files * 0.5 * MB)  # the mix averages ~0.5 MB a file
    fragment = int(args.fragment_mib * 1024 * 1024)

    workdir = Path(tempfile.mkdtemp(prefix="kodo-bench-restore-"))
    size_mix = [[w, int(low * args.scale), int(high * args.scale)] for w, low, high in SIZE_MIX]
    tenant = {
        "seed": 5,
        "users": args.users,
        "users_without_drive": 0,
        "files_per_user": max(1, args.files // args.users),
        "size_mix": size_mix,
        "special_items": False,
    }
    sim = Sim(workdir, tenant)
    if args.database_url:
        recreate_postgres(args.database_url)
    try:
        setup_django(workdir, args.database_url)
        org, configuration, users = make_tenant(sim)
        runs, seconds = backup_all(users, args.backup_threads, args.parallel)
        size = sum(r.bytes_downloaded for r in runs)
        files = sum(r.files_downloaded for r in runs)
        print(
            f"tenant: {args.users} users, {files} files, {size / MB:.0f} MB (backed up in "
            f"{seconds:.0f} s); Kodo: {args.parallel} restores at once x {args.threads} upload "
            f"threads, fragments of {args.fragment_mib} MiB, "
            f"{'PostgreSQL' if args.database_url else 'SQLite'}; {os.cpu_count()} CPUs, load "
            f"average {os.getloadavg()[0]:.1f}"
        )

        # Rounds of (baseline, Kodo), then a last baseline: on a shared machine the load drifts,
        # so each side is measured before and after the other; rates are the best round's.
        plain = [plain_round(sim, configuration, users, args, fragment)]
        kodo = []
        for _ in range(args.rounds):
            kodo.append(kodo_round(sim, users, args, fragment))
            plain.append(plain_round(sim, configuration, users, args, fragment))
        jobs = kodo[-1]["jobs"]
        for n, result in enumerate(kodo, 1):
            print(
                f"a{n}. restore: {result['files']} files, {result['bytes'] / MB:.0f} MB in "
                f"{result['seconds']:.1f} s = {result['rate']:.1f} MB/s, "
                f"{result['files'] / result['seconds']:.0f} files/s; every file verified by "
                f"Microsoft's quickXorHash; {result['failed']} failed; Kodo's CPU "
                f"{result['cpu']:.1f} s ({1000 * result['cpu'] / max(1, result['files']):.1f} ms "
                f"a file), m365sim's {result['sim_cpu']:.1f} s; load {result['load']:.1f}"
            )
        for n, result in enumerate(plain, 1):
            print(
                f"b{n}. plain uploader (same files, threads, sessions; bytes from memory): "
                f"{result['files']} files, {result['bytes'] / MB:.0f} MB in "
                f"{result['seconds']:.1f} s = {result['rate']:.1f} MB/s, "
                f"{result['files'] / result['seconds']:.0f} files/s; its CPU {result['cpu']:.1f} s "
                f"({1000 * result['cpu'] / max(1, result['files']):.1f} ms a file), m365sim's "
                f"{result['sim_cpu']:.1f} s; load {result['load']:.1f}"
            )
        kodo_rate = max(r["rate"] for r in kodo)
        plain_rate = max(r["rate"] for r in plain)
        ratio = kodo_rate / plain_rate
        mean_ratio = (sum(r["rate"] for r in kodo) / len(kodo)) / (
            sum(r["rate"] for r in plain) / len(plain)
        )
        print(
            f"   RATIO Kodo/plain (best rounds, MB/s): {ratio:.2f} (target >= 0.80, goal 1.00: "
            f"{'met' if ratio >= 0.8 else 'NOT met'}); of the means: {mean_ratio:.2f}"
        )

        versions, read, read_seconds = read_store(org, users, args.threads, args.parallel)
        print(
            f"c. the store to nowhere: {versions} versions, {read / MB:.0f} MB in "
            f"{read_seconds:.1f} s = {read / read_seconds / MB:.0f} MB/s "
            f"(restore at {100 * kodo_rate / (read / read_seconds / MB):.0f}% of it)"
        )

        if not args.skip_kill:
            biggest = max(jobs, key=lambda j: j.bytes_total).source_user
            killed_restore(sim, biggest, args.kill_fragment_kib * 1024, args.threads)
    finally:
        sim.stop()
        if args.database_url:
            from django.db import connections

            connections.close_all()
            recreate_postgres(args.database_url, create=False)
        shutil.rmtree(workdir, ignore_errors=True)  # the store and m365sim's files: GBs


if __name__ == "__main__":
    main()
