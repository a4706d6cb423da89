"""Working hours -> EventBridge Scheduler cron expressions.

The same hours/day and days/week drive both the start/stop schedule and the cost
estimate (hours/day x days/month), so the bill the stack exports is the bill the
schedule produces.
"""

from __future__ import annotations

import re
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, field_validator, model_validator
from pydantic.alias_generators import to_camel

# Average days in a month (365.25 / 12); the cost package uses the same figure.
DAYS_PER_MONTH = 30.4375
_HH_MM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class Weekday(StrEnum):
    """Days as EventBridge cron expressions spell them."""

    MON = "MON"
    TUE = "TUE"
    WED = "WED"
    THU = "THU"
    FRI = "FRI"
    SAT = "SAT"
    SUN = "SUN"


class WorkSchedule(BaseModel):
    """When the GPU hosts run: a daily window on some weekdays, in one timezone."""

    model_config = ConfigDict(frozen=True, alias_generator=to_camel, populate_by_name=True)

    start: str = "08:00"
    hours_per_day: float = 8
    days: tuple[Weekday, ...] = (
        Weekday.MON,
        Weekday.TUE,
        Weekday.WED,
        Weekday.THU,
        Weekday.FRI,
        Weekday.SAT,
    )
    timezone: str = "UTC"

    @field_validator("start")
    @classmethod
    def _start_is_hh_mm(cls, value: str) -> str:
        if not _HH_MM.match(value):
            raise ValueError("must be a 24-hour time HH:MM, e.g. '08:00'")
        return value

    @field_validator("hours_per_day")
    @classmethod
    def _hours_in_range(cls, value: float) -> float:
        if not 0 < value < 24:
            raise ValueError(
                "must be more than 0 and less than 24 (for 24 h/day turn the schedule off)"
            )
        # Tolerate float noise: 31 / 60 h * 60 is 30.999…, still 31 whole minutes.
        if abs(value * 60 - round(value * 60)) > 1e-6:
            raise ValueError("must be a whole number of minutes")
        return value

    @field_validator("days")
    @classmethod
    def _some_days(cls, value: tuple[Weekday, ...]) -> tuple[Weekday, ...]:
        if not value:
            raise ValueError(f"needs at least one day of {', '.join(d.value for d in Weekday)}")
        if len(set(value)) != len(value):
            raise ValueError("lists a day twice")
        return tuple(sorted(value, key=list(Weekday).index))

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError("must be an IANA timezone such as 'Europe/Berlin' or 'UTC'") from error
        return value

    @model_validator(mode="after")
    def _stop_same_day(self) -> WorkSchedule:
        # A window past midnight would stop the hosts on the *next* weekday, which a
        # single pair of cron expressions with one day list cannot express.
        if self.start_minute + round(self.hours_per_day * 60) > 24 * 60:
            raise ValueError(
                f"start {self.start} + {self.hours_per_day:g} h ends after midnight; "
                "windows that cross midnight are not supported"
            )
        return self

    @property
    def start_minute(self) -> int:
        hours, minutes = self.start.split(":")
        return int(hours) * 60 + int(minutes)

    @property
    def stop_minute(self) -> int:
        # 24:00 is written as 00:00 on the same (already listed) day: stop at midnight.
        return (self.start_minute + round(self.hours_per_day * 60)) % (24 * 60)

    @property
    def days_per_month(self) -> float:
        """Average working days in a month: days/week x (365.25 / 12 / 7)."""
        return len(self.days) * DAYS_PER_MONTH / 7

    def _cron(self, minute_of_day: int) -> str:
        hour, minute = divmod(minute_of_day, 60)
        return f"cron({minute} {hour} ? * {','.join(d.value for d in self.days)} *)"

    @property
    def start_cron(self) -> str:
        return self._cron(self.start_minute)

    @property
    def stop_cron(self) -> str:
        if self.stop_minute == 0:
            # Midnight belongs to the next day; stop one minute before it instead.
            return self._cron(24 * 60 - 1)
        return self._cron(self.stop_minute)
