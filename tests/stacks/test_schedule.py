"""Working hours -> cron: the start/stop pair always spans exactly hoursPerDay."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stacks.schedule import Weekday, WorkSchedule

_CRON = re.compile(r"^cron\((\d+) (\d+) \? \* ([A-Z,]+) \*\)$")


def _minute_and_days(cron: str) -> tuple[int, str]:
    match = _CRON.match(cron)
    assert match, cron
    return int(match[2]) * 60 + int(match[1]), match[3]


@given(
    start=st.integers(0, 24 * 60 - 1),
    minutes=st.integers(1, 24 * 60 - 1),
    days=st.sets(st.sampled_from(list(Weekday)), min_size=1),
)
def test_stop_minus_start_is_the_working_time(start: int, minutes: int, days: set[Weekday]) -> None:
    if start + minutes > 24 * 60:
        return  # crossing midnight is refused; see the validation tests
    schedule = WorkSchedule(
        start=f"{start // 60:02d}:{start % 60:02d}", hours_per_day=minutes / 60, days=tuple(days)
    )
    start_minute, start_days = _minute_and_days(schedule.start_cron)
    stop_minute, stop_days = _minute_and_days(schedule.stop_cron)
    assert start_minute == start
    # ending exactly at midnight stops at 23:59, one minute early, on the same day
    assert stop_minute - start_minute == (minutes if start + minutes < 24 * 60 else minutes - 1)
    assert start_days == stop_days == ",".join(d.value for d in Weekday if d in days)
    assert schedule.days_per_month == pytest.approx(len(days) * 365.25 / 12 / 7)


def test_seed_scenario_profile() -> None:
    # The report's seed scenario: 8 h/day x 26 days/month ~ Mon-Sat at 8 h.
    schedule = WorkSchedule()
    assert schedule.start_cron == "cron(0 8 ? * MON,TUE,WED,THU,FRI,SAT *)"
    assert schedule.stop_cron == "cron(0 16 ? * MON,TUE,WED,THU,FRI,SAT *)"
    assert round(schedule.days_per_month) == 26


def test_fraction_of_a_minute_is_refused() -> None:
    with pytest.raises(ValueError, match="must be a whole number of minutes"):
        WorkSchedule(hours_per_day=0.01)  # 36 seconds
