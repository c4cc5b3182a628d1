"""Retry is a value: its back-off is arithmetic, checked here without sleeping."""

import dataclasses

import pytest

from callflowd.retry import RetriesExhausted, Retry, parse_retry_after

pytestmark = pytest.mark.timeout(5)


def after(retry, n):
    """``retry`` after ``n`` increments."""
    for _ in range(n):
        retry = retry.increment()
    return retry


def test_no_wait_before_the_first_retry():
    assert Retry(backoff_factor=2.0).backoff() == 0.0


def test_backoff_doubles_from_the_factor():
    retry = Retry(total=5, backoff_factor=0.5, backoff_max=100.0)
    assert [after(retry, n).backoff() for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 8.0]


def test_backoff_is_capped_at_backoff_max():
    retry = Retry(total=10, backoff_factor=1.0, backoff_max=5.0)
    assert [after(retry, n).backoff() for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_zero_factor_means_no_wait():
    retry = Retry(total=3, backoff_factor=0.0)
    assert [after(retry, n).backoff() for n in range(1, 4)] == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("rand, expected", [(0.0, 1.6), (0.5, 2.0), (1.0, 2.4)])
def test_jitter_spreads_backoff_within_its_fraction(rand, expected):
    retry = after(Retry(total=3, backoff_factor=1.0, jitter=0.2), 2)  # base 2.0
    assert retry.backoff(rand=lambda: rand) == pytest.approx(expected)


def test_jitter_is_applied_after_the_cap():
    retry = after(Retry(total=10, backoff_factor=1.0, backoff_max=3.0, jitter=0.5), 6)
    assert retry.backoff(rand=lambda: 1.0) == pytest.approx(4.5)
    assert retry.backoff(rand=lambda: 0.0) == pytest.approx(1.5)


def test_without_jitter_rand_is_not_consulted():
    def rand():
        raise AssertionError("rand called without jitter")

    assert after(Retry(backoff_factor=1.0), 1).backoff(rand=rand) == 1.0


def test_increment_returns_a_new_policy_and_leaves_the_old_one_alone():
    first = Retry(total=2)
    second = first.increment()
    assert (first.attempt, second.attempt) == (0, 1)
    assert second.total == first.total


def test_increment_raises_once_total_retries_are_used():
    retry = after(Retry(total=2), 2)
    assert retry.exhausted
    with pytest.raises(RetriesExhausted):
        retry.increment()


def test_total_zero_allows_no_retry():
    retry = Retry(total=0)
    assert retry.exhausted
    with pytest.raises(RetriesExhausted):
        retry.increment()


def test_total_none_never_runs_out():
    retry = after(Retry(total=None, backoff_factor=1.0, backoff_max=30.0), 1000)
    assert not retry.exhausted
    assert retry.backoff() == 30.0
    assert retry.increment().attempt == 1001


def test_reset_starts_over_with_the_same_settings():
    retry = after(Retry(total=3, backoff_factor=0.25, backoff_max=9.0, jitter=0.1), 3)
    fresh = retry.reset()
    assert fresh == Retry(total=3, backoff_factor=0.25, backoff_max=9.0, jitter=0.1)


def test_retry_is_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Retry().attempt = 3


@pytest.mark.parametrize("kwargs", [
    {"total": -1},
    {"backoff_factor": -0.1},
    {"backoff_max": -1.0},
    {"jitter": -0.1},
    {"jitter": 1.5},
])
def test_invalid_values_are_rejected(kwargs):
    with pytest.raises(ValueError):
        Retry(**kwargs)


def test_backoff_stays_at_the_cap_after_very_many_retries():
    # total=None serves reconnects: ~8.5 hours at a 30 s cap is 1024 retries,
    # past which 2 ** (n - 1) no longer fits a float.
    retry = dataclasses.replace(Retry(total=None, backoff_factor=0.5, backoff_max=30.0), attempt=5000)
    assert retry.backoff() == 30.0


# -- what HTTP answers are worth another try, and how long Retry-After holds us -----------


@pytest.mark.parametrize("status, retried", [(408, True), (429, True), (500, True), (502, True), (503, True),
                                             (504, True), (599, True), (400, False), (404, False),
                                             (410, False), (302, False)])
def test_only_a_server_failure_or_a_not_now_is_retried(status, retried):
    assert Retry().retries_status(status) is retried


def test_a_retry_after_in_seconds_is_read_as_seconds():
    assert parse_retry_after("3", now=1000.0) == 3.0


def test_a_retry_after_as_an_http_date_is_the_time_left_until_then():
    assert parse_retry_after("Thu, 01 Jan 1970 00:16:50 GMT", now=1000.0) == 10.0


def test_a_retry_after_date_in_the_past_means_now():
    assert parse_retry_after("Thu, 01 Jan 1970 00:00:10 GMT", now=1000.0) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "-3", "1.5"])
def test_an_unreadable_retry_after_is_ignored(value):
    assert parse_retry_after(value, now=1000.0) is None


def test_the_server_s_retry_after_replaces_the_backoff_up_to_the_cap():
    retry = after(Retry(total=3, backoff_factor=0.5, retry_after_max=60.0), 1)
    assert retry.delay(None) == 0.5
    assert retry.delay(3.0) == 3.0
    assert retry.delay(3600.0) == 60.0
