"""RetryRule: the Graph client's one answer to "send it again? after how long?"."""

import pytest

from o365.graph.client import RetryRule

RULE = RetryRule(max_retries=3, backoff_base=1.0, max_backoff=60, max_retry_after=300)


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 509])
def test_throttled_and_failing_answers_wait_for_their_retry_after(status):
    assert RULE.wait(0, status=status, retry_after=7.5) == 7.5


def test_without_retry_after_the_wait_is_exponential_backoff_with_jitter():
    for attempt, ceiling in [(0, 1), (1, 2), (2, 4)]:
        assert ceiling / 2 <= RULE.wait(attempt, status=503) <= ceiling


def test_the_backoff_stops_growing_at_max_backoff():
    rule = RetryRule(max_retries=20, backoff_base=1.0, max_backoff=10)
    assert 5 <= rule.wait(15, status=429) <= 10


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 501])
def test_answers_that_a_retry_cannot_change_are_not_retried(status):
    assert RULE.wait(0, status=status, retry_after=1) is None


def test_a_code_marked_never_retry_is_not_retried_even_on_a_retry_status():
    assert RULE.wait(0, status=500, code="PathIsTooLong") is None


def test_it_gives_up_after_max_retries():
    assert RULE.wait(2, status=429, retry_after=1) == 1
    assert RULE.wait(3, status=429, retry_after=1) is None
    assert RULE.wait(3) is None


def test_a_retry_after_beyond_the_limit_is_left_to_the_caller():
    assert RULE.wait(0, status=429, retry_after=300) == 300
    assert RULE.wait(0, status=429, retry_after=301) is None


def test_a_failure_without_an_answer_is_retried_with_backoff():
    assert 0.5 <= RULE.wait(0) <= 1


def test_a_sign_in_failure_waits_its_retry_after_in_full():
    # token requests: tokens.py judged the failure transient; only the deadline bounds the wait
    assert RULE.wait(0, retry_after=3600) == 3600
