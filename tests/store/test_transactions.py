"""store.db.Transactions: one connection kept for SQLite transactions, the pool otherwise."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import IntegrityError

from trustbridge.store.db import Transactions, connect


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = connect(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
    yield engine
    engine.dispose()


def _rows(engine: Engine) -> list[tuple[int, str]]:
    with engine.connect() as conn:
        return [
            (int(r[0]), str(r[1])) for r in conn.execute(text("SELECT id, v FROM t ORDER BY id"))
        ]


def test_sqlite_transactions_share_one_connection(engine: Engine) -> None:
    transactions = Transactions(engine)
    with transactions.begin() as first:
        first.execute(text("INSERT INTO t VALUES (1, 'a')"))
    with transactions.begin() as second:
        second.execute(text("INSERT INTO t VALUES (2, 'b')"))
    assert first is second
    assert not second.in_transaction()
    # Committed: another connection reads both rows.
    assert _rows(engine) == [(1, "a"), (2, "b")]
    transactions.close()
    assert second.closed


def test_a_transaction_inside_one_takes_a_pooled_connection(engine: Engine) -> None:
    transactions = Transactions(engine)
    with transactions.begin() as outer:
        with transactions.begin() as inner:
            assert inner is not outer
            inner.execute(text("INSERT INTO t VALUES (1, 'inner')"))
        outer.execute(text("INSERT INTO t VALUES (2, 'outer')"))
    assert _rows(engine) == [(1, "inner"), (2, "outer")]
    transactions.close()


def test_an_error_rolls_back_and_the_connection_is_replaced(engine: Engine) -> None:
    transactions = Transactions(engine)
    with transactions.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (1, 'kept')"))
    used: list[object] = []

    def duplicate() -> None:
        with transactions.begin() as again:
            used.append(again)
            again.execute(text("INSERT INTO t VALUES (2, 'rolled back')"))
            again.execute(text("INSERT INTO t VALUES (1, 'duplicate')"))

    with pytest.raises(IntegrityError):
        duplicate()
    assert used == [conn]
    assert conn.closed  # whatever state the error left it in, it is not used again
    with transactions.begin() as after:
        after.execute(text("INSERT INTO t VALUES (3, 'after')"))
    assert after is not conn
    assert _rows(engine) == [(1, "kept"), (3, "after")]
    transactions.close()


def test_an_invalidated_connection_is_replaced(engine: Engine) -> None:
    transactions = Transactions(engine)
    with transactions.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (1, 'a')"))

    def breaks() -> None:
        with transactions.begin() as broken:
            broken.invalidate()
            raise RuntimeError("the connection broke")

    with pytest.raises(RuntimeError):
        breaks()
    with transactions.begin() as fresh:
        fresh.execute(text("INSERT INTO t VALUES (2, 'b')"))
    assert fresh is not conn
    assert _rows(engine) == [(1, "a"), (2, "b")]
    transactions.close()


def test_a_connection_from_before_a_fork_is_not_used(engine: Engine) -> None:
    transactions = Transactions(engine)
    with transactions.begin() as parent:
        parent.execute(text("INSERT INTO t VALUES (1, 'a')"))
    transactions._pid = -1  # as in a child process: the kept connection is the parent's
    with transactions.begin() as child:
        child.execute(text("INSERT INTO t VALUES (2, 'b')"))
    assert child is not parent
    # The parent's to close, not the child's: held, never given back to this pool.
    assert not parent.closed
    assert transactions._inherited == [parent]
    transactions.close()
    parent.close()


def test_a_failed_commit_leaves_nothing_for_the_next_transaction(tmp_path: Path) -> None:
    """SQLite keeps a transaction open when its COMMIT fails (here a deferred foreign key);
    the kept connection is replaced, so no later transaction commits those rows."""
    engine = connect(f"sqlite:///{tmp_path / 'fk.sqlite'}")
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE p (id INTEGER PRIMARY KEY)"))
            conn.execute(
                text(
                    "CREATE TABLE c (id INTEGER PRIMARY KEY, "
                    "p INTEGER REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED)"
                )
            )
        transactions = Transactions(engine)

        def orphan() -> None:
            with transactions.begin() as failing:
                failing.execute(text("INSERT INTO c VALUES (1, 99)"))

        with pytest.raises(IntegrityError):
            orphan()
        with transactions.begin() as after:
            after.execute(text("INSERT INTO p VALUES (99)"))
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM c")).scalar_one() == 0
            assert conn.execute(text("SELECT count(*) FROM p")).scalar_one() == 1
        transactions.close()
    finally:
        engine.dispose()


def test_close_during_a_transaction_and_after(engine: Engine) -> None:
    transactions = Transactions(engine)
    inside, release = threading.Event(), threading.Event()
    used: list[Connection] = []

    def long_transaction() -> None:
        with transactions.begin() as conn:
            used.append(conn)
            conn.execute(text("INSERT INTO t VALUES (1, 'long')"))
            inside.set()
            release.wait(timeout=60)

    worker = threading.Thread(target=long_transaction)
    worker.start()
    assert inside.wait(timeout=60)
    transactions.close()  # does not wait for the transaction
    release.set()
    worker.join(timeout=60)
    assert used and used[0].closed  # closed when its transaction ended
    with transactions.begin() as later:
        later.execute(text("INSERT INTO t VALUES (2, 'later')"))
    assert later is not used[0]
    assert later.closed  # a pooled connection: nothing left open after close()
    assert _rows(engine) == [(1, "long"), (2, "later")]


def test_threads_never_wait_for_the_kept_connection(engine: Engine) -> None:
    """More threads than the pool holds connections, each in its own transactions."""
    transactions = Transactions(engine)
    threads, per_thread = 24, 20
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def work(number: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                with transactions.begin() as conn:
                    conn.execute(
                        text("INSERT INTO t VALUES (:id, :v)"),
                        {"id": number * per_thread + i, "v": f"thread {number}"},
                    )
        except BaseException as exc:  # reported below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert errors == []
    assert not any(worker.is_alive() for worker in workers)
    assert len(_rows(engine)) == threads * per_thread
    transactions.close()


def _assert_pooled(engine: Engine) -> None:
    """Every transaction on its own pooled connection, closed after it."""
    transactions = Transactions(engine)
    with transactions.begin() as first:
        first.execute(text("SELECT 1"))
    with transactions.begin() as second:
        second.execute(text("SELECT 1"))
    assert first is not second
    assert first.closed and second.closed


def test_other_databases_use_the_pool() -> None:
    memory = connect("sqlite://")
    try:
        _assert_pooled(memory)
    finally:
        memory.dispose()


@pytest.mark.postgres
def test_postgresql_uses_the_pool(postgres_url: str) -> None:
    engine = connect(postgres_url)
    try:
        _assert_pooled(engine)
    finally:
        engine.dispose()
