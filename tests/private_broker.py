"""A broker of a test's own, for tests that start their own worker processes: the session's
workers (the `celery_worker` fixture) consume the shared broker, use another store, and would
take the test's messages. Another Redis database when the broker is Redis, another folder when it
is the filesystem broker."""

import re
from dataclasses import dataclass

from django.conf import settings
from kombu import Connection

PRIVATE_REDIS_DB = 11


@dataclass
class PrivateBroker:
    env: dict  # for the test's worker processes
    url: str
    transport_options: dict

    def connection(self) -> Connection:
        transport = "kodo.broker:Transport" if self.url.startswith("redis") else None
        return Connection(self.url, transport=transport, transport_options=self.transport_options)

    def send(self, task, *args):
        with self.connection() as connection:
            task.apply_async(args, connection=connection)


def private_broker(tmp_path) -> PrivateBroker:
    url = settings.CELERY_BROKER_URL
    if url.startswith("filesystem://"):
        var_dir = tmp_path / "var"
        folders = {name: var_dir / "broker" / name for name in ("queue", "processed", "control")}
        for folder in folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        options = {
            "data_folder_in": str(folders["queue"]),
            "data_folder_out": str(folders["queue"]),
            "processed_folder": str(folders["processed"]),
            "control_folder": str(folders["control"]),
            "store_processed": False,
        }
        return PrivateBroker({"KODO_VAR_DIR": str(var_dir)}, "filesystem://", options)
    private = re.sub(r"(/\d*)?$", f"/{PRIVATE_REDIS_DB}", url, count=1)
    with Connection(private, transport="kodo.broker:Transport") as connection:
        connection.default_channel.client.flushdb()
    return PrivateBroker(
        {"CELERY_BROKER_URL": private, "CELERY_RESULT_BACKEND": private}, private, {}
    )
