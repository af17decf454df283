"""The one job vocabulary (kodo.jobs): one staleness setting for every kind of job, one badge
table."""

import os
import subprocess
import sys

import pytest

from backups.models import BackupRun, Verification
from kodo import jobs
from o365.models import DirectoryJob


def _setting(name, **env):
    environment = {
        k: v
        for k, v in os.environ.items()
        if k not in ("KODO_JOB_STALE_SECONDS", "KODO_BACKUP_STALE_SECONDS")
    }
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import django; django.setup(); from django.conf import "
            f"settings; print(settings.{name})",
        ],
        env={**environment, "DJANGO_SETTINGS_MODULE": "kodo.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "120"),
        ({"KODO_JOB_STALE_SECONDS": "30"}, "30"),
        ({"KODO_BACKUP_STALE_SECONDS": "45"}, "45"),  # the former name still works
        ({"KODO_JOB_STALE_SECONDS": "30", "KODO_BACKUP_STALE_SECONDS": "45"}, "30"),
    ],
)
def test_one_staleness_setting_reads_its_former_name_too(env, expected):
    assert _setting("KODO_JOB_STALE_SECONDS", **env) == expected


def test_every_kind_of_job_is_registered_and_shows_its_status_with_the_one_badge_table():
    assert {BackupRun, DirectoryJob, Verification} <= set(jobs.KINDS)
    assert [m for m in jobs.claimable_kinds() if m in (BackupRun, DirectoryJob)] == [
        BackupRun,
        DirectoryJob,
    ]
    assert DirectoryJob(status="failed").status_badge == BackupRun(status="failed").status_badge
    assert BackupRun(status="partial").status_badge == "warn"
    assert Verification(status=Verification.Status.PROBLEMS).status_badge == "bad"
    assert Verification(status=Verification.Status.SOUND).status_badge == "ok"
    assert DirectoryJob(status="queued").status_badge == ""
