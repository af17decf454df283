"""Microsoft throttles an app in a tenant, not a process: the Retry-After one worker process is
given must hold every process and machine working for the same configuration, or their requests
land inside the window, are throttled again and extend it for all (a storm of 5% 429 + 5% 503
with two worker processes failed a third of the files this way).

SharedThrottle keeps "no request before" as a wall-clock time in Django's cache (Redis in
production, files in var/ on one machine: KODO_CACHE_URL), keyed by tenant and app. GraphClient
(which knows nothing of Django) calls `note` when Graph answers with a Retry-After and
`remaining` before each request; it reads the cache at most every READ_INTERVAL seconds, so the
cost per request stays a clock read.
"""

import threading
import time

from django.core.cache import cache

READ_INTERVAL = 0.2  # seconds a client trusts its last look at the shared window


class SharedThrottle:
    def __init__(self, tenant_id: str, client_id: str, *, clock=time.time):
        self.key = f"graph-throttle:{tenant_id}:{client_id}".lower()
        self.clock = clock
        self._lock = threading.Lock()
        self._known_until = 0.0
        self._read_at = float("-inf")

    def note(self, retry_after: float) -> None:
        """Graph asked one request to wait `retry_after` seconds: every process waits."""
        until = self.clock() + retry_after
        with self._lock:
            self._known_until = max(self._known_until, until)
        # Read-then-write: two processes noting at once may keep the shorter of two nearly equal
        # windows, never lose one entirely (each also waits out its own).
        if until > (cache.get(self.key) or 0.0):
            cache.set(self.key, until, timeout=int(retry_after) + 2)

    def remaining(self) -> float:
        """Seconds before any request of this app in this tenant may be sent (0: now)."""
        now = self.clock()
        with self._lock:
            if now - self._read_at >= READ_INTERVAL:
                self._read_at = now
                self._known_until = max(self._known_until, cache.get(self.key) or 0.0)
            return max(0.0, self._known_until - now)
