"""What the engine's mixins (Planning, Recording, Downloading) use of the OneDriveBackup they are
part of, as a Protocol for the type checker. At run time `EngineMixin` is plain `object`."""

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from backups.engine.download import Outcome
    from backups.models import BackupRun
    from backups.store import ChunkStore
    from o365.graph import GraphClient
    from o365.models import DirectoryUser


class Engine(Protocol):
    """The attributes and methods OneDriveBackup (backups.engine.run) gives its mixins."""

    run: "BackupRun"
    user: "DirectoryUser"
    client: "GraphClient"
    store: "ChunkStore"
    threads: int
    attempts: int
    progress: Callable[["BackupRun"], None]
    _stopping: threading.Event
    _heal_ids: set[str]

    def _beat(self, force: bool = False) -> None: ...

    def _close(self, status: str, error: str) -> None: ...

    def _record_outcomes(self, state, outcomes: list["Outcome"], current) -> None: ...


if TYPE_CHECKING:
    EngineMixin = Engine
else:
    EngineMixin = object
