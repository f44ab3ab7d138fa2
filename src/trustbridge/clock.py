"""The one clock every node and command takes its time from.

Tests pin time with :class:`FixedClock`; a node can run with an :class:`OffsetClock` to
rehearse expiry and refresh without sleeping. All datetimes are timezone-aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "FixedClock", "OffsetClock", "SystemClock", "ensure_utc"]


class Clock(Protocol):
    """Anything that tells the current time, as an aware UTC datetime."""

    def now(self) -> datetime: ...


def ensure_utc(value: datetime) -> datetime:
    """Return ``value`` as aware UTC; a naive datetime is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True)
class FixedClock:
    """A clock that always says the same time."""

    at: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", ensure_utc(self.at))

    def now(self) -> datetime:
        return self.at


@dataclass(frozen=True)
class OffsetClock:
    """The machine's clock, shifted by a fixed offset."""

    offset: timedelta

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset
