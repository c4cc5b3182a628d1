"""The circuit breaker as a state machine: no clock, no network; ``now`` is passed in."""

from callflowd.webhooks.breaker import Breaker, BreakerSettings, BreakerState

SETTINGS = BreakerSettings(failures=3, pause=10.0, pause_max=25.0)


def opened(now=100.0):
    breaker = Breaker("http://h:80", SETTINGS)
    for _ in range(3):
        breaker.failed(now)
    return breaker


def test_a_closed_breaker_lets_everything_through_until_failures_in_a_row_open_it():
    breaker = Breaker("http://h:80", SETTINGS)
    breaker.failed(0.0)
    breaker.failed(0.0)
    assert breaker.allows(0.0) is None and breaker.state is BreakerState.CLOSED
    breaker.failed(0.0)
    assert breaker.state is BreakerState.OPEN and breaker.allows(5.0) == 0


def test_a_success_between_failures_starts_the_count_again():
    breaker = Breaker("http://h:80", SETTINGS)
    breaker.failed(0.0)
    breaker.failed(0.0)
    breaker.succeeded()
    breaker.failed(0.0)
    assert breaker.state is BreakerState.CLOSED


def test_after_the_pause_one_probe_goes_and_its_success_closes_the_breaker():
    breaker = opened(now=100.0)
    assert breaker.allows(109.9) == 0
    assert breaker.allows(110.0) == 1
    assert breaker.started() is True
    assert breaker.allows(110.0) == 0  # one probe at a time
    breaker.succeeded()
    assert breaker.state is BreakerState.CLOSED and breaker.allows(110.0) is None


def test_a_failed_probe_pauses_twice_as_long_up_to_the_cap():
    breaker = opened(now=100.0)
    breaker.allows(110.0)
    breaker.started()
    breaker.failed(110.0)
    assert (breaker.state, breaker.reopens_at) == (BreakerState.OPEN, 130.0)
    breaker.allows(130.0)
    breaker.started()
    breaker.failed(130.0)
    assert breaker.reopens_at == 155.0  # 40 s capped at 25


def test_a_probe_that_neither_succeeds_nor_fails_frees_the_probe_slot():
    breaker = opened(now=100.0)
    breaker.allows(110.0)
    breaker.started()
    breaker.settled()
    assert breaker.allows(110.0) == 1
