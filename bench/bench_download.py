"""Downloads through the whole HTTP stack: one user's whole drive as a zip, and one 4 GB file,
from the production gunicorn command (scripts/systemd/kodo-web.service, one worker), beside
reading the same versions from the store to nowhere in this process.

    .venv/bin/python bench/bench_download.py                          # 10,000 files ~5 GB + 4 GB
    .venv/bin/python bench/bench_download.py --files 1000 --scale 0.1 --big-file-gb 0.5  # quick

The content is generated into the store directly (FastCDC, encryption, packs: the backup's own
ChunkStore.write_stream), not backed up from m365sim, which would take far longer and measure
nothing more here. File sizes follow bench_backup.py's mix (92% log-uniform in 1 KB-1 MB, 7.8%
in 1-10 MB, 0.2% in 10-100 MB; --scale multiplies every bound), in 100 folders. A fresh SQLite
database and store in a temporary folder; DEBUG off. Prints, per case:

  - MB/s through HTTP (a client in this process reading 1 MiB at a time to nowhere) and MB/s
    reading the same versions from the store to nowhere (one thread), and their ratio; each the
    best of --repeat runs
  - the web worker's CPU seconds for the request, its peak RSS (VmHWM from /proc, a fresh
    gunicorn per case) and its RSS when idle (after one small request loaded Django) just
    before the download (target: peak < 150 MB)

MB = 10^6 bytes.
"""

import argparse
import base64
import http.client
import math
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MB = 1_000_000
SIZE_MIX = [(0.92, 1_000, 1 * MB), (0.078, 1 * MB, 10 * MB), (0.002, 10 * MB, 100 * MB)]
CSRF = "k" * 32


def setup_django(workdir: Path):
    os.environ.update(
        {
            "DEBUG": "0",
            "KODO_VAR_DIR": str(workdir / "var"),
            "KODO_STORE_URL": str(workdir / "store"),
            "DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}",
            "LOG_LEVEL": "WARNING",
            "KODO_SECURE_COOKIES": "0",
        }
    )
    os.environ.setdefault("SECRET_KEY", base64.urlsafe_b64encode(os.urandom(40)).decode())
    os.environ.setdefault("KODO_ENCRYPTION_KEYS", base64.urlsafe_b64encode(os.urandom(32)).decode())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kodo.settings")
    os.environ.pop("KODO_ENV_FILE", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def sizes(count: int, scale: float, rng: random.Random) -> list[int]:
    bands = [(w, int(lo * scale), int(hi * scale)) for w, lo, hi in SIZE_MIX]
    out = []
    for _ in range(count):
        pick, acc = rng.random(), 0.0
        low, high = bands[-1][1:]
        for weight, band_low, band_high in bands:
            acc += weight
            if pick <= acc:
                low, high = band_low, band_high
                break
        out.append(int(math.exp(rng.uniform(math.log(max(low, 1)), math.log(max(high, 2))))))
    return out


def random_blocks(size: int, rng: random.Random, block=4 * 1024 * 1024):
    """`size` bytes of incompressible content in blocks (no file of it in memory)."""
    left = size
    while left:
        n = min(block, left)
        yield rng.randbytes(n)
        left -= n


def make_data(files: int, scale: float, big_bytes: int):
    """An organization, an admin with a session, a user whose drive holds `files` files, and
    (if big_bytes) a second user with one file of big_bytes. Returns what the requests need."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    from backups.models import DriveState, FileVersion
    from backups.storage import store_for
    from organizations.models import Organization
    from tests.backups.stored_files import make_user, version_url, zip_url
    from tests.factories import make_account, make_finished_run

    org = Organization.objects.create(name="Bench", services_enabled=True)
    admin = make_account("admin@bench.example", org)
    store = store_for(org)
    rng = random.Random(7)

    def drive_of(user, entries):
        drive = DriveState.objects.create(organization=org, directory_user=user, drive_id="d")
        run = make_finished_run(user)
        rows = []
        for folder in sorted({path.rsplit("/", 1)[0] for path, _ in entries if "/" in path[1:]}):
            rows.append(
                FileVersion(organization=org, drive=drive, item_id=folder, path=folder,
                            name=folder.rsplit("/", 1)[1], is_folder=True, first_run=run)
            )  # fmt: skip
        for path, size in entries:
            stored = store.write_stream(random_blocks(size, rng), defer_sync=True)
            rows.append(
                FileVersion(organization=org, drive=drive, item_id=path, path=path,
                            name=path.rsplit("/", 1)[1], size=stored.size,
                            quickxorhash=stored.quickxorhash, first_run=run,
                            chunks=[[c.id, c.size] for c in stored.chunks])
            )  # fmt: skip
        store.sync()
        FileVersion.objects.bulk_create(rows, batch_size=1000)
        return rows

    started = time.monotonic()
    many = make_user(org, name="Many Files")
    rows = drive_of(
        many, [(f"/Folder {i % 100:02d}/file {i:05d}.bin", s)
               for i, s in enumerate(sizes(files, scale, rng))]
    )  # fmt: skip
    print(f"made {files} files, {sum(r.size for r in rows) / MB:,.0f} MB in "
          f"{time.monotonic() - started:.0f} s")  # fmt: skip
    data: dict = {"zip_url": zip_url(many), "zip_ids": [r.pk for r in rows if not r.is_folder]}
    if big_bytes:
        started = time.monotonic()
        big_user = make_user(org, name="Big File")
        (big,) = drive_of(big_user, [("/big.bin", big_bytes)])
        print(f"made one file of {big_bytes / MB:,.0f} MB in {time.monotonic() - started:.0f} s")
        data["big_url"] = version_url(big)
        data["big_id"] = big.pk
    session = SessionStore()
    session[SESSION_KEY] = str(admin.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = admin.get_session_auth_hash()
    session.create()
    data["session"] = session.session_key
    data["org"] = org
    return data


def store_to_nowhere(org, version_ids) -> tuple[int, float]:
    from backups.models import FileVersion
    from backups.storage import store_for

    store = store_for(org)
    chunk_lists = FileVersion.objects.filter(pk__in=version_ids).values_list("chunks", flat=True)
    started, total = time.monotonic(), 0
    for chunks in chunk_lists.iterator():
        for piece in store.read_stream([chunk_id for chunk_id, _ in chunks]):
            total += len(piece)
    return total, time.monotonic() - started


# ----- the web process ----------------------------------------------------------------------


def production_arguments() -> list[str]:
    unit = (ROOT / "scripts" / "systemd" / "kodo-web.service").read_text()
    command = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    arguments = command.split()[1:]
    for flag, value in (("--bind", "127.0.0.1:{port}"), ("--workers", "1")):
        arguments[arguments.index(flag) + 1] = value
    return arguments


class Web:
    """gunicorn with the production arguments and one worker; the worker's memory from /proc."""

    def __init__(self, workdir: Path):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        arguments = [a.format(port=self.port) for a in production_arguments()]
        self.log = open(workdir / "gunicorn.log", "a")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [str(Path(sys.executable).with_name("gunicorn")), *arguments, "--no-control-socket"],
            cwd=ROOT,
            env=os.environ,
            stdout=self.log,
            stderr=self.log,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise SystemExit("gunicorn did not start") from None
                time.sleep(0.1)
        self.worker = self._worker_pid()
        # The worker loads Django on its first request: measure "idle" after one.
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        connection.request("GET", "/accounts/login/")
        connection.getresponse().read()
        connection.close()

    def _worker_pid(self) -> int:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
            pids = children.read_text().split()
            if pids:
                return int(pids[0])
            time.sleep(0.1)
        raise SystemExit("no gunicorn worker")

    def memory(self, field: str) -> int:
        for line in Path(f"/proc/{self.worker}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        return 0

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.worker}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=60)
        self.log.close()


def fetch(web: Web, method: str, url: str, session: str, body: str = "") -> tuple[int, float]:
    """The response's body read to nowhere, 1 MiB at a time: (bytes, seconds)."""
    connection = http.client.HTTPConnection("127.0.0.1", web.port, timeout=600)
    headers = {"Cookie": f"sessionid={session}; csrftoken={CSRF}"}
    if body:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    started = time.monotonic()
    connection.request(method, url, body=body or None, headers=headers)
    response = connection.getresponse()
    if response.status != 200:
        raise SystemExit(f"{method} {url}: {response.status} {response.read()[:300]!r}")
    expected = int(response.headers["Content-Length"])
    total = 0
    while piece := response.read(1024 * 1024):
        total += len(piece)
    seconds = time.monotonic() - started
    connection.close()
    if total != expected:
        raise SystemExit(f"{url}: {total} bytes received, Content-Length said {expected}")
    return total, seconds


def case(workdir, name, method, url, session, body, org, version_ids, repeat):
    """The best of `repeat` downloads (one web process) and of `repeat` store reads: this
    machine's other load makes single runs noisy."""
    web = Web(workdir)
    try:
        idle, cpu = web.memory("VmRSS"), web.cpu_seconds()
        timings = [fetch(web, method, url, session, body) for _ in range(repeat)]
        peak, cpu = web.memory("VmHWM"), (web.cpu_seconds() - cpu) / repeat
    finally:
        web.stop()
    sent, seconds = min(timings, key=lambda t: t[1])
    read, read_seconds = min(
        (store_to_nowhere(org, version_ids) for _ in range(repeat)), key=lambda t: t[1]
    )
    http_rate, store_rate = sent / MB / seconds, read / MB / read_seconds
    print(
        f"{name}: {sent / MB:,.0f} MB in {seconds:.1f} s = {http_rate:,.0f} MB/s through HTTP; "
        f"store to nowhere {store_rate:,.0f} MB/s; ratio {http_rate / store_rate:.2f}; "
        f"web worker: CPU {cpu:.1f} s a download, RSS idle {idle / MB:.0f} MB, "
        f"peak {peak / MB:.0f} MB ({'<' if peak < 150 * MB else '>='} 150 MB)"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--big-file-gb", type=float, default=4.0)
    parser.add_argument("--repeat", type=int, default=3, help="Best of N (default 3).")
    parser.add_argument("--keep", action="store_true", help="Keep the temporary folder.")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="kodo-bench-download-"))
    try:
        setup_django(workdir)
        data = make_data(args.files, args.scale, int(args.big_file_gb * 1e9))
        session = data["session"]
        body = f"csrfmiddlewaretoken={CSRF}&whole_drive=1"
        case(workdir, f"zip of {args.files} files", "POST", data["zip_url"], session, body,
             data["org"], data["zip_ids"], args.repeat)  # fmt: skip
        if "big_url" in data:
            case(workdir, f"one file of {args.big_file_gb:g} GB", "GET", data["big_url"],
                 session, "", data["org"], [data["big_id"]], args.repeat)  # fmt: skip
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
