import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from kodo.envcheck import check_fernet_keys, check_secret_key


def _start_django(**env_overrides):
    env = {**os.environ, **env_overrides}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={k: v for k, v in env.items() if v is not None},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SECRET_KEY", ""),
        ("SECRET_KEY", "short"),
        ("KODO_ENCRYPTION_KEYS", ""),
        ("KODO_ENCRYPTION_KEYS", "not-a-fernet-key"),
    ],
)
def test_start_up_stops_naming_the_bad_variable(variable, value):
    result = _start_django(DEBUG="0", **{variable: value}, DJANGO_SETTINGS_MODULE="kodo.settings")
    assert result.returncode != 0
    assert variable in result.stderr.splitlines()[-1]


def test_start_up_succeeds_with_good_values():
    result = _start_django(DJANGO_SETTINGS_MODULE="kodo.settings")
    assert result.returncode == 0, result.stderr


def test_debug_falls_back_to_development_keys():
    assert check_secret_key("", debug=True)
    assert check_fernet_keys([], debug=True)
    with pytest.raises(ImproperlyConfigured, match="KODO_ENCRYPTION_KEYS: key number 2"):
        check_fernet_keys(["Ku1hK_AD_2xPdBalJG0rcHEqFSQSxxWpzqXyHswjjAs=", "bad"], debug=False)
