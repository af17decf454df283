from kodo.tasks import ping


def test_a_task_round_trips_through_a_real_worker(celery_worker):
    assert ping.delay(41).get(timeout=60) == 42
