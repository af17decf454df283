"""m365sim for the backup tests: a small fresh tenant per test (tests change its files), a
configuration pointing at it, its users mirrored, and a chunk store in a temporary folder."""

from dataclasses import dataclass

import pytest

from backups.actions import do_run_inline, start_run
from backups.models import BackupRun
from o365.models import Configuration
from tests.factories import mirror_users, sim_configuration


@pytest.fixture
def store_dir(settings, tmp_path):
    settings.KODO_STORE_URL = str(tmp_path / "store")
    return tmp_path / "store"


@dataclass
class Tenant:
    running: object
    sim: object
    configuration: Configuration
    users: list  # DirectoryUser, in the simulator's order; the last one has no OneDrive
    organization: object

    def backup(self, user=None, **options) -> BackupRun:
        """One run of `user` (default the second: no special items), executed here."""
        user = user or self.users[1]
        run, _ = start_run(user, BackupRun.Trigger.COMMAND, enqueue=False)
        options.setdefault("client_options", {"backoff_base": 0.01, "max_backoff": 0.2})
        options.setdefault("threads", 4)
        return do_run_inline(run, **options)

    def sim_files(self, user=None):
        """{path: item info} of the live files in the simulator."""
        user = user or self.users[1]
        return {i["path"]: i for i in self.sim.list_items(user.graph_id) if not i["folder"]}


@pytest.fixture
def tenant(world, running_sim, store_dir):
    configuration = sim_configuration(world.org_a, running_sim, name="Contoso")
    return Tenant(
        running_sim,
        running_sim.sim,
        configuration,
        mirror_users(configuration, running_sim.sim),
        world.org_a,
    )
