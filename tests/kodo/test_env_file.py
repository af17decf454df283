"""var/kodo.env (written by `make run`) applies only to commands started with KODO_ENV_FILE."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import kodo

FILE_KEY = "file-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
FILE_FERNET = "Ku1hK_AD_2xPdBalJG0rcHEqFSQSxxWpzqXyHswjjAs="
PRODUCTION_KEY = "production-secret-key-0123456789-ABCDEFGHIJKLMNOPQRSTUV"


def _import_settings(checkout: Path, **variables):
    """Import kodo.settings in a fresh process, in `checkout`, with only `variables` set."""
    unset = {
        "DEBUG",
        "SECRET_KEY",
        "KODO_ENCRYPTION_KEYS",
        "KODO_ENV_FILE",
        "KODO_VAR_DIR",
        "DATABASE_URL",
        "DJANGO_SETTINGS_MODULE",
    }
    env = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run(
        [
            sys.executable,
            "-c",
            f"import kodo.settings as s; print(s.DEBUG, s.SECRET_KEY == {FILE_KEY!r})",
        ],
        cwd=checkout,
        env={**env, "PYTHONPATH": str(checkout), **variables},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _checkout_where_make_run_ran(tmp_path) -> Path:
    """A copy of the kodo package with the var/kodo.env that `make run` writes."""
    checkout = tmp_path / "checkout"
    shutil.copytree(
        Path(kodo.__file__).parent, checkout / "kodo", ignore=shutil.ignore_patterns("__pycache__")
    )
    (checkout / "var").mkdir()
    (checkout / "var" / "kodo.env").write_text(
        f"DEBUG=1\nSECRET_KEY={FILE_KEY}\nKODO_ENCRYPTION_KEYS={FILE_FERNET}\n"
    )
    return checkout


def test_a_plain_start_does_not_read_the_development_env_file(tmp_path):
    checkout = _checkout_where_make_run_ran(tmp_path)
    result = _import_settings(checkout, SECRET_KEY=PRODUCTION_KEY, KODO_ENCRYPTION_KEYS=FILE_FERNET)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


def test_a_plain_start_without_keys_says_how_to_use_the_development_keys(tmp_path):
    checkout = _checkout_where_make_run_ran(tmp_path)
    result = _import_settings(checkout)
    assert result.returncode != 0
    message = result.stderr.strip().splitlines()[-1]
    assert "SECRET_KEY is not set" in message and "KODO_ENV_FILE=var/kodo.env" in message


def test_development_commands_read_it_when_named(tmp_path):
    checkout = _checkout_where_make_run_ran(tmp_path)
    result = _import_settings(checkout, KODO_ENV_FILE="var/kodo.env")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True"]


def test_real_environment_variables_win_over_the_file(tmp_path):
    checkout = _checkout_where_make_run_ran(tmp_path)
    result = _import_settings(
        checkout, KODO_ENV_FILE="var/kodo.env", DEBUG="0", SECRET_KEY=PRODUCTION_KEY
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


def test_a_missing_env_file_stops_start_up_naming_the_variable(tmp_path):
    checkout = _checkout_where_make_run_ran(tmp_path)
    result = _import_settings(checkout, KODO_ENV_FILE="var/missing.env")
    assert result.returncode != 0
    assert "KODO_ENV_FILE" in result.stderr.strip().splitlines()[-1]
