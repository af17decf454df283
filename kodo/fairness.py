"""Fair shares of a queue between organizations.

A task declared with `base=OrganizationShareTask` and `share_by` (the name of its organization-id
argument, or a function of its arguments giving the organization id) runs only while its
organization holds fewer than its share of running tasks of the task's queue
(KODO_ORGANIZATION_SHARES). Over the share, the task is sent again with a countdown and its
worker slot goes to the next message: one organization's long or hanging jobs cannot occupy every
worker of a queue while other organizations' jobs wait.

The running count lives where every worker sees it: in Redis when it is the broker (keys that
expire a minute after their worker stops renewing them), else in lock files under KODO_VAR_DIR
(the filesystem broker serves one machine; a lock dies with its process).
"""

import fcntl
import inspect
import logging
import random
import threading
import uuid

import redis
from celery import Task
from django.conf import settings

from kodo.celery import queue_of

log = logging.getLogger(__name__)

REDIS_TTL = 60  # seconds a Redis slot outlives the last renewal of its worker


class OrganizationShareTask(Task):
    share_by = None  # the organization-id argument's name, or a function of the arguments

    def __call__(self, *args, **kwargs):
        request = self.request
        if request.called_directly or request.is_eager or self.share_by is None:
            return super().__call__(*args, **kwargs)
        queue = queue_of(self.name)
        share = settings.KODO_ORGANIZATION_SHARES.get(queue, 0)
        organization_id = self._organization_id(args, kwargs)
        if share <= 0 or organization_id is None:
            return super().__call__(*args, **kwargs)
        slot = take_slot(queue, organization_id, share)
        if slot is None:
            wait = settings.KODO_SHARE_WAIT_SECONDS * random.uniform(0.75, 1.25)
            log.info(
                "%s: organization %s already runs %d %s task(s); again in %.0f s",
                self.name,
                organization_id,
                share,
                queue,
                wait,
            )
            self.apply_async(args, kwargs, countdown=wait)
            return "deferred"
        try:
            return super().__call__(*args, **kwargs)
        finally:
            slot.release()

    def _organization_id(self, args, kwargs):
        share_by = inspect.getattr_static(self, "share_by")  # a function, not a bound method
        if isinstance(share_by, staticmethod):
            share_by = share_by.__func__
        if callable(share_by):
            return share_by(*args, **kwargs)
        bound = inspect.signature(self.run).bind(*args, **kwargs)
        return bound.arguments.get(self.share_by)


def take_slot(queue: str, organization_id, share: int):
    """One of the organization's `share` slots of `queue` (release() it when done), or None when
    all are taken."""
    url = settings.CELERY_BROKER_URL
    if url.startswith(("redis://", "rediss://")):
        return _take_redis_slot(url, queue, organization_id, share)
    return _take_file_slot(queue, organization_id, share)


class _FileSlot:
    def __init__(self, file):
        self._file = file

    def release(self):
        if not self._file.closed:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()


def _take_file_slot(queue, organization_id, share):
    folder = settings.VAR_DIR / "shares"
    folder.mkdir(mode=0o700, exist_ok=True)
    for n in range(share):
        # flock belongs to the open file: threads of one process exclude each other too
        file = open(folder / f"{queue}-{int(organization_id)}-{n}.lock", "a")  # noqa: SIM115
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.close()
            continue
        return _FileSlot(file)
    return None


_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) "
    "else return 0 end"
)
_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('expire', KEYS[1], ARGV[2]) else return 0 end"
)


class _RedisSlot:
    def __init__(self, client, key, token):
        self._client, self._key, self._token = client, key, token
        self._stop = threading.Event()
        self._renewer = threading.Thread(target=self._renew, daemon=True, name=f"share-{key}")
        self._renewer.start()

    def _renew(self):
        while not self._stop.wait(REDIS_TTL / 3):
            try:
                self._client.eval(_RENEW, 1, self._key, self._token, REDIS_TTL)
            except Exception:  # the broker is away: the slot may lapse, the task goes on
                log.warning("Could not renew %s", self._key, exc_info=True)

    def release(self):
        self._stop.set()
        try:
            self._client.eval(_RELEASE, 1, self._key, self._token)
        except Exception:
            log.warning(
                "Could not release %s; it lapses in %d s", self._key, REDIS_TTL, exc_info=True
            )


_redis_clients: dict = {}


def _take_redis_slot(url, queue, organization_id, share):
    client = _redis_clients.get(url)
    if client is None:
        client = _redis_clients[url] = redis.Redis.from_url(url)
    token = uuid.uuid4().hex
    for n in range(share):
        key = f"kodo:share:{queue}:{int(organization_id)}:{n}"
        if client.set(key, token, nx=True, ex=REDIS_TTL):
            return _RedisSlot(client, key, token)
    return None
