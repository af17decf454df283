"""The SQLite database and var/ are readable by their owner only."""

import os
import stat
import subprocess
import sys


def test_a_new_var_dir_and_database_are_owner_only(tmp_path):
    var = tmp_path / "fresh" / "var"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    script = (
        "import os; os.umask(0o022)\n"
        "import django; django.setup()\n"
        "from django.db import connection\n"
        "with connection.cursor() as cursor:\n"
        "    cursor.execute('CREATE TABLE t (x)'); cursor.execute('INSERT INTO t VALUES (1)')\n"
        "wal = connection.settings_dict['NAME'] + '-wal'\n"
        "print(oct(os.stat(wal).st_mode & 0o777))\n"  # gone once the last connection closes
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**env, "KODO_VAR_DIR": str(var), "DJANGO_SETTINGS_MODULE": "kodo.settings"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr

    def mode(path):
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(var) == 0o700
    assert mode(var / "kodo.sqlite3") == 0o600
    assert result.stdout.split() == ["0o600"]  # SQLite gives its WAL the database's mode
