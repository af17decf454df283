"""SQLite: a transaction that reads then writes waits for another writer instead of failing
"database is locked" (transactions begin IMMEDIATE, with a busy timeout)."""

import threading

import pytest
from django.db import connection, connections, transaction

from organizations.models import Organization


def test_a_read_then_write_transaction_waits_for_the_writer_holding_the_lock(transactional_db):
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's locking only")
    holding, release, reader_has_read = threading.Event(), threading.Event(), threading.Event()
    errors = []

    def writer():
        try:
            with transaction.atomic():
                Organization.objects.create(name="Writer")
                holding.set()
                release.wait(60)
        finally:
            connections.close_all()

    def read_then_write():
        try:
            with transaction.atomic():
                seen = Organization.objects.count()
                reader_has_read.set()
                Organization.objects.create(name=f"Reader saw {seen}")
        except Exception as error:
            errors.append(error)
        finally:
            connections.close_all()

    writer_thread = threading.Thread(target=writer)
    writer_thread.start()
    try:
        assert holding.wait(60)
        reader_thread = threading.Thread(target=read_then_write)
        reader_thread.start()
        # Bounded: with a deferred transaction the reader reads at once (then fails to write);
        # with an immediate one it is still waiting to begin.
        reader_has_read.wait(2)
    finally:
        release.set()
        writer_thread.join(60)
    reader_thread.join(60)
    assert not reader_thread.is_alive()
    assert errors == []
    assert Organization.objects.filter(name="Reader saw 1").exists()
