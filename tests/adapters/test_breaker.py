"""The circuit breaker's state machine, driven by a fake clock."""

from __future__ import annotations

from adapters.breaker import BreakerState, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock, changes: list[BreakerState] | None = None) -> CircuitBreaker:
    return CircuitBreaker(
        failure_threshold=3,
        reset_timeout=10.0,
        clock=clock,
        on_change=changes.append if changes is not None else None,
    )


def tripped(clock: Clock, changes: list[BreakerState] | None = None) -> CircuitBreaker:
    b = breaker(clock, changes)
    for _ in range(3):
        b.record_failure()
    return b


def test_starts_closed_and_lets_calls_through() -> None:
    b = breaker(Clock())
    assert b.state is BreakerState.CLOSED
    assert all(b.allow() for _ in range(5))


def test_only_consecutive_failures_open_it() -> None:
    b = breaker(Clock())
    b.record_failure()
    b.record_failure()
    b.record_success()
    b.record_failure()
    b.record_failure()
    assert b.state is BreakerState.CLOSED
    b.record_failure()
    assert b.state is BreakerState.OPEN


def test_open_circuit_refuses_until_the_reset_timeout() -> None:
    clock = Clock()
    b = tripped(clock)
    assert not b.allow()
    assert b.retry_after() == 10.0
    clock.now += 9.5
    assert not b.allow()
    assert b.retry_after() == 0.5
    clock.now += 0.5
    assert b.retry_after() == 0.0
    assert b.state is BreakerState.HALF_OPEN


def test_half_open_lets_exactly_one_probe_through() -> None:
    clock = Clock()
    b = tripped(clock)
    clock.now += 10
    assert b.allow()
    assert not b.allow(), "a second call while the probe is in flight"


def test_a_successful_probe_closes_it() -> None:
    clock, changes = Clock(), []
    b = tripped(clock, changes)
    clock.now += 10
    assert b.allow()
    b.record_success()
    assert b.state is BreakerState.CLOSED
    assert all(b.allow() for _ in range(3))
    assert changes == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]


def test_a_failed_probe_reopens_it_for_a_full_timeout() -> None:
    clock = Clock()
    b = tripped(clock)
    clock.now += 10
    assert b.allow()
    b.record_failure()
    assert b.state is BreakerState.OPEN
    assert b.retry_after() == 10.0
    clock.now += 9.9
    assert not b.allow()


def test_a_released_probe_lets_the_next_call_probe() -> None:
    clock = Clock()
    b = tripped(clock)
    clock.now += 10
    assert b.allow()
    b.release_probe()  # e.g. the probe was answered 429: says nothing about health
    assert b.state is BreakerState.HALF_OPEN
    assert b.allow()


def test_a_closed_circuit_forgets_old_failures() -> None:
    clock = Clock()
    b = tripped(clock)
    clock.now += 10
    b.allow()
    b.record_success()
    b.record_failure()
    b.record_failure()
    assert b.state is BreakerState.CLOSED
