"""Waiting for something another process does: poll with a deadline, never sleep on luck."""

import time

import pytest


def wait_for(check, timeout: float, what: str, interval: float = 0.2):
    """Call `check` until it returns something true (returned), or fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    pytest.fail(f"Not within {timeout} s: {what}")
