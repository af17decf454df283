"""A download that lasts longer than gunicorn's worker timeout completes under the production
command (scripts/systemd/kodo-web.service and the README: gthread workers). A sync worker is
killed by the arbiter when it has not notified for --timeout seconds, and it cannot notify while
it streams one response; a gthread worker's main loop notifies about every second while its
threads stream, so --timeout is a heartbeat of the worker, not a limit on a request
(gunicorn/workers/gthread.py run()).

The test runs the real stack in other processes: `manage.py migrate` and a data script on a
file SQLite database and a store of its own, then the production gunicorn command with one
worker and `--timeout 2`, and reads a 16 MiB file slowly (a small receive buffer, about
2.5 MiB/s) so that the server's part lasts more than twice the timeout."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.polling import wait_for

BASE_DIR = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")
SIZE = 16 * 1024 * 1024
RATE = 2.5 * 1024 * 1024  # bytes per second the client reads
TIMEOUT = 2

# Runs in `manage.py shell`: an admin, a user with one backed-up file, a logged-in session.
DATA_SCRIPT = """
import json, os
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from organizations.models import Organization
from tests.backups.stored_files import back_up, make_user, version_url
from tests.factories import make_account

org = Organization.objects.create(name="Alpha", services_enabled=True)
admin = make_account("admin@alpha.example", org)
user = make_user(org)
content = os.urandom(int(os.environ["KODO_TEST_SIZE"]))
version = back_up(user, {"/big.bin": content})["/big.bin"]
session = SessionStore()
session[SESSION_KEY] = str(admin.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = admin.get_session_auth_hash()
session.create()
print(json.dumps({"url": version_url(version), "session": session.session_key,
                  "quickxorhash": version.quickxorhash}))
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def site(tmp_path):
    """The environment of a production-like Kodo in tmp_path, its database migrated and
    filled; yields (env, data)."""
    env = {
        **os.environ,
        "KODO_VAR_DIR": str(tmp_path / "var"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'kodo.sqlite3'}",
        "KODO_STORE_URL": str(tmp_path / "store"),
        "DEBUG": "0",
        "KODO_SECURE_COOKIES": "0",
        "KODO_TEST_SIZE": str(SIZE),
        "PYTHONPATH": str(BASE_DIR),
    }
    env.pop("KODO_ENV_FILE", None)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput"], cwd=BASE_DIR, env=env, check=True,
                   capture_output=True)  # fmt: skip
    made = subprocess.run(
        [*manage, "shell", "-c", DATA_SCRIPT],
        cwd=BASE_DIR,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return env, json.loads(made.stdout.strip().splitlines()[-1])


def production_arguments() -> list[str]:
    """gunicorn's arguments in the shipped web service (scripts/systemd/kodo-web.service; the
    README gives the same command)."""
    unit = (BASE_DIR / "scripts" / "systemd" / "kodo-web.service").read_text()
    command = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    return command.split()[1:]


def replaced(arguments: list[str], **options) -> list[str]:
    """`arguments` with the value of each --option given replaced (added if absent)."""
    arguments = list(arguments)
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if flag in arguments:
            arguments[arguments.index(flag) + 1] = str(value)
        else:
            arguments += [flag, str(value)]
    return arguments


def start_gunicorn(env, port, arguments, log):
    arguments = replaced(arguments, bind=f"127.0.0.1:{port}", workers=1, timeout=TIMEOUT)
    process = subprocess.Popen(
        [str(GUNICORN), *arguments, "--no-control-socket"],
        cwd=BASE_DIR,
        env=env,
        stdout=log,
        stderr=log,
    )

    def listening():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return process.poll() is not None  # died: reported below

    wait_for(listening, 30, "gunicorn listening")
    assert process.poll() is None, "gunicorn exited"
    return process


def slow_get(port, path, session) -> tuple[dict, bytes, float]:
    """GET over a socket with a small receive buffer, reading at about RATE: the server has to
    wait for the client for most of the download."""
    connection = socket.socket()
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
    connection.settimeout(30)
    connection.connect(("127.0.0.1", port))
    # Kept alive, as browsers do: gunicorn 27 closes a "Connection: close" connection on the
    # worker's main thread, lingering up to 2 s for the client's FIN, which a --timeout of 2
    # cannot absorb (the production --timeout 60 can).
    connection.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: sessionid={session}\r\n\r\n".encode()
    )
    started = time.monotonic()
    received = bytearray()
    while b"\r\n\r\n" not in received:
        piece = connection.recv(4096)
        if not piece:
            break
        received += piece
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    headers["status"] = lines[0]
    data = bytearray(body)
    length = int(headers.get("content-length", -1))
    while len(data) != length:
        piece = connection.recv(64 * 1024)
        if not piece:
            break
        data += piece
        ahead = len(data) / RATE - (time.monotonic() - started)
        if ahead > 0:
            time.sleep(ahead)  # pacing the reader, not waiting for anything
    connection.close()
    return headers, bytes(data), time.monotonic() - started


def test_the_production_command_uses_threaded_workers():
    arguments = production_arguments()
    assert arguments[0] == "kodo.wsgi"
    assert arguments[arguments.index("--worker-class") + 1] == "gthread"
    assert int(arguments[arguments.index("--threads") + 1]) > 1
    # a closing connection may hold the main loop for up to 2 s (see slow_get)
    assert int(arguments[arguments.index("--timeout") + 1]) >= 10


def test_a_download_longer_than_the_worker_timeout_completes(site, tmp_path):
    from backups.store import quickxorhash

    env, data = site
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "w") as log:
        server = start_gunicorn(env, port, production_arguments(), log)
        try:
            headers, body, seconds = slow_get(port, data["url"], data["session"])
        finally:
            server.terminate()
            server.wait(timeout=30)

    assert headers["status"].endswith("200 OK"), headers
    assert int(headers["content-length"]) == len(body) == SIZE
    assert quickxorhash(body) == data["quickxorhash"]
    assert seconds > 2 * TIMEOUT
    assert "WORKER TIMEOUT" not in log_path.read_text()
