"""SQLite checkpoints in a background thread (store.db.WalCheckpointer)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from trustbridge.store.db import CHECKPOINT_COMMITS, WalCheckpointer, checkpointer, connect


def _wait_for(condition: object, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.01)
    raise AssertionError("the checkpointer did not act in time")


def _rows_in_database_file(path: Path) -> int:
    """Rows of ``t`` in the database file itself, the WAL ignored (``immutable``)."""
    connection = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return int(connection.execute("SELECT count(*) FROM t").fetchone()[0])
    finally:
        connection.close()


def test_commits_are_checkpointed_in_the_background(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    engine = connect(f"sqlite:///{path}")
    worker = checkpointer(engine)
    assert worker is not None
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)"))
    with engine.connect() as conn:
        # The writers' own automatic checkpoint is the fallback only.
        assert conn.execute(text("PRAGMA wal_autocheckpoint")).scalar() == 10_000
    for i in range(CHECKPOINT_COMMITS * 3):
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO t (v) VALUES (:v)"), {"v": bytes(3000) + bytes([i % 256])}
            )
    _wait_for(lambda: worker.checkpoints >= 1)
    assert worker.error is None
    thread = worker._thread
    assert thread is not None
    engine.dispose()
    # Stopped with the engine; every committed row is in the database.
    assert not thread.is_alive()
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT count(*) FROM t").fetchone() == (CHECKPOINT_COMMITS * 3,)


def test_a_checkpoint_moves_the_log_into_the_database(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    engine = connect(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)"))
    worker = WalCheckpointer(str(path))
    worker.checkpoint()
    # The engine keeps its connection: nothing checkpoints when it is returned to the pool.
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": bytes(10_000)})
    assert _rows_in_database_file(path) == 0
    worker.checkpoint()
    assert worker.error is None
    assert worker.checkpoints == 2
    assert _rows_in_database_file(path) == 1
    engine.dispose()


def test_a_removed_database_is_not_created_again(tmp_path: Path) -> None:
    path = tmp_path / "gone.sqlite"
    worker = WalCheckpointer(str(path))
    worker.checkpoint()
    assert worker.error is not None
    assert worker.checkpoints == 0
    assert not path.exists()


def test_the_thread_starts_after_commits_and_again_when_needed(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    engine = connect(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
    worker = WalCheckpointer(str(path), every=3)
    worker.committed()
    worker.committed()
    assert worker._thread is None
    worker.committed()
    first = worker._thread
    assert first is not None
    _wait_for(lambda: worker.checkpoints == 1)
    # Stopped (the engine was disposed), then used again: a new thread.
    worker.close()
    assert not first.is_alive()
    for _ in range(3):
        worker.committed()
    second = worker._thread
    assert second is not None
    assert second is not first
    _wait_for(lambda: worker.checkpoints == 2)
    # A thread that died (here: stopped behind the worker's back) is replaced.
    worker.close()
    worker._thread = second
    for _ in range(3):
        worker.committed()
    assert worker._thread is not second
    _wait_for(lambda: worker.checkpoints == 3)
    worker.close()
    engine.dispose()


def test_an_unexpected_error_does_not_end_the_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "db.sqlite"
    sqlite3.connect(path).close()
    worker = WalCheckpointer(str(path), every=1)

    def broken(*_: object, **__: object) -> sqlite3.Connection:
        raise RuntimeError("not what sqlite3 raises")

    monkeypatch.setattr(sqlite3, "connect", broken)
    worker.committed()
    _wait_for(lambda: worker.error is not None)
    assert worker.error == "RuntimeError: not what sqlite3 raises"
    monkeypatch.undo()
    worker.committed()
    _wait_for(lambda: worker.checkpoints == 1)
    worker.close()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_memory_databases_have_no_checkpointer(url: str) -> None:
    engine = connect(url)
    assert checkpointer(engine) is None
    engine.dispose()
