"""Injected faults and request statistics."""

import threading
import time
from collections import Counter

from .content import mix64

ENDPOINTS = (
    "token",
    "users",
    "users_delta",
    "user",
    "drive",
    "drive_delta",
    "item",
    "children",
    "content",
    "download",
    "upload",
    "fragment",
    "batch",
)
STATUS_KINDS = {"429": 429, "500": 500, "502": 502, "503": 503, "504": 504}
BODY_KINDS = ("reset", "truncate", "corrupt", "stall")
KINDS = tuple(STATUS_KINDS) + BODY_KINDS + ("resync", "revoke")
ALIASES = {
    "throttle": "429",
    "throttled": "429",
    "resyncRequired": "resync",
    "410": "resync",
    "reset_before": "reset",
}


class Fault:
    __slots__ = (
        "id",
        "endpoint",
        "kind",
        "rate",
        "seed",
        "params",
        "counter",
        "fired",
        "max_count",
    )

    def __init__(self, fault_id, endpoint, kind, rate, seed, max_count, params):
        self.id = fault_id
        self.endpoint = endpoint
        self.kind = kind
        self.rate = float(rate)
        self.seed = int(seed)
        self.params = params
        self.counter = 0
        self.fired = 0
        self.max_count = max_count

    def roll(self):
        n = self.counter
        self.counter += 1
        if self.max_count is not None and self.fired >= self.max_count:
            return False
        if self.rate >= 1.0 or mix64(self.seed, n, 0x46415554) / 2.0**64 < self.rate:
            self.fired += 1
            return True
        return False

    def as_dict(self):
        return {
            "id": self.id,
            "endpoint": self.endpoint,
            "kind": self.kind,
            "rate": self.rate,
            "seed": self.seed,
            "max_count": self.max_count,
            "params": dict(self.params),
            "evaluated": self.counter,
            "fired": self.fired,
        }


class Faults:
    def __init__(self, stats):
        self._lock = threading.Lock()
        self._faults = []
        self._next_id = 1
        self._penalties = {}
        self.stats = stats

    def set(self, endpoint, kind, rate=1.0, seed=0, max_count=None, **params):
        kind = ALIASES.get(str(kind), str(kind))
        if endpoint not in ENDPOINTS:
            raise ValueError(
                f"unknown endpoint kind {endpoint!r}; choose from {', '.join(ENDPOINTS)}"
            )
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; choose from {', '.join(KINDS)}")
        if not 0.0 <= float(rate) <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        with self._lock:
            fault = Fault(self._next_id, endpoint, kind, rate, seed, max_count, params)
            self._next_id += 1
            self._faults.append(fault)
            return fault.id

    def clear(self, endpoint=None, fault_id=None):
        with self._lock:
            self._faults = [
                f
                for f in self._faults
                if not (
                    (endpoint is None or f.endpoint == endpoint)
                    and (fault_id is None or f.id == fault_id)
                )
            ]
            if endpoint is None and fault_id is None:
                self._penalties.clear()

    def list(self):
        with self._lock:
            return [f.as_dict() for f in self._faults]

    def decide(self, endpoint, client, eligible):
        """The fault to apply to this request, or None. A client that comes back before the
        Retry-After of an earlier 429 is throttled again, for the full period again."""
        now = time.monotonic()
        with self._lock:
            key = (client, endpoint)
            penalty = self._penalties.get(key)
            if penalty is not None:
                until, retry_after = penalty
                if now < until:
                    self._penalties[key] = (now + float(retry_after), retry_after)
                    self.stats.count("throttle_penalties")
                    self.stats.count(f"faults.{endpoint}.429")
                    return Fault(0, endpoint, "429", 1.0, 0, None, {"retry_after": retry_after})
                del self._penalties[key]
            for fault in self._faults:
                if fault.endpoint != endpoint or fault.kind not in eligible:
                    continue
                if fault.roll():
                    self.stats.count(f"faults.{endpoint}.{fault.kind}")
                    if fault.kind == "429":
                        retry_after = fault.params.get("retry_after", 1)
                        if retry_after is not None and float(retry_after) > 0:
                            self._penalties[key] = (now + float(retry_after), retry_after)
                    return fault
        return None


class Stats:
    """Counters for tests and benchmarks: requests by endpoint kind, tokens, pages,
    downloads per item, bytes served, injected faults, response statuses."""

    def __init__(self):
        self._lock = threading.Lock()
        self._counts = Counter()
        self._downloads = Counter()

    def count(self, key, n=1):
        with self._lock:
            self._counts[key] += n

    def download(self, item_id):
        with self._lock:
            self._counts["downloads"] += 1
            self._downloads[item_id] += 1

    def reset(self):
        with self._lock:
            self._counts.clear()
            self._downloads.clear()

    def snapshot(self):
        with self._lock:
            out = {
                "requests": {},
                "faults": {},
                "status": {},
                "tokens": 0,
                "token_errors": 0,
                "users_pages": 0,
                "users_delta_pages": 0,
                "drive_delta_pages": 0,
                "items": 0,
                "content_redirects": 0,
                "downloads": 0,
                "bytes_served": 0,
                "uploads": 0,
                "uploaded_bytes": 0,
                "fragment_bytes_received": 0,
                "throttle_penalties": 0,
                "downloads_by_item": dict(self._downloads),
            }
            for key, value in self._counts.items():
                head, _, rest = key.partition(".")
                if head == "requests":
                    out["requests"][rest] = value
                elif head == "status":
                    out["status"][rest] = value
                elif head == "faults":
                    endpoint, _, kind = rest.partition(".")
                    out["faults"].setdefault(endpoint, {})[kind] = value
                else:
                    out[key] = value
            return out
