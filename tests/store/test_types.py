"""UtcDateTime: the fast SQLite conversion writes what SQLAlchemy's generic one writes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, MetaData, Table, TypeDecorator, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from trustbridge.store.db import connect
from trustbridge.store.types import UtcDateTime, sqlite_utc_text

_DIALECT = sqlite.dialect()
# SQLAlchemy's own chain: process_bind_param, then the SQLite DATETIME formatting.
_IMPL = UtcDateTime().dialect_impl(_DIALECT)
assert isinstance(_IMPL, UtcDateTime)
_GENERIC: Callable[[Any], Any] | None = TypeDecorator.bind_processor(_IMPL, _DIALECT)

_zones = st.just(UTC) | st.builds(
    lambda minutes: timezone(timedelta(minutes=minutes)), st.integers(-23 * 60, 23 * 60)
)
_times = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=_zones
)


@given(_times)
def test_fast_conversion_is_the_generic_one(value: datetime) -> None:
    assert _GENERIC is not None
    assert sqlite_utc_text(value) == _GENERIC(value)


def test_the_type_uses_the_fast_conversion_on_sqlite_only() -> None:
    assert UtcDateTime().dialect_impl(_DIALECT).bind_processor(_DIALECT) is sqlite_utc_text
    pg = postgresql.dialect()  # type: ignore[no-untyped-call]
    assert UtcDateTime().dialect_impl(pg).bind_processor(pg) is not sqlite_utc_text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime(2026, 11, 26, 12, 0, tzinfo=UTC), "2026-11-26 12:00:00.000000"),
        (
            datetime(2026, 1, 1, 0, 30, 0, 5, tzinfo=timezone(timedelta(hours=1))),
            "2025-12-31 23:30:00.000005",
        ),
        (datetime(999, 3, 4, 5, 6, 7, tzinfo=UTC), "0999-03-04 05:06:07.000000"),
        (None, None),
    ],
)
def test_fast_conversion_text(value: datetime | None, text: str | None) -> None:
    assert sqlite_utc_text(value) == text


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        sqlite_utc_text(datetime(2026, 1, 1))


def test_stored_and_read_back_through_sqlalchemy(tmp_path: Path) -> None:
    table = Table(
        "t", MetaData(), Column("id", Integer, primary_key=True), Column("at", UtcDateTime)
    )
    engine = connect(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        table.metadata.create_all(engine)
        tokyo = datetime(2026, 11, 26, 21, 15, 1, 250, tzinfo=timezone(timedelta(hours=9)))
        with engine.begin() as conn:
            conn.execute(insert(table), [{"id": 1, "at": tokyo}])
            stored = conn.exec_driver_sql("SELECT at FROM t").scalar_one()
            back = conn.execute(select(table.c.at).where(table.c.at == tokyo)).scalar_one()
        assert stored == "2026-11-26 12:15:01.000250"
        assert back == tokyo
        assert back.tzinfo == UTC
    finally:
        engine.dispose()
