"""store.db.Transactions: one connection kept for SQLite transactions, the pool otherwise."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
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
        conn.execute(text("CREATE TABLE p (id INTEGER PRIMARY KEY)"))
        conn.execute(
            text(
                "CREATE TABLE c (id INTEGER PRIMARY KEY, "
                "p INTEGER REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED)"
            )
        )
    yield engine
    engine.dispose()


def _rows(engine: Engine) -> list[tuple[int, str]]:
    with engine.connect() as conn:
        return [
            (int(r[0]), str(r[1])) for r in conn.execute(text("SELECT id, v FROM t ORDER BY id"))
        ]


def _one_after_another(transactions: Transactions, *statements: str) -> list[Connection]:
    """Run each statement in a transaction of its own; the connections they ran on."""
    used = []
    for statement in statements:
        with transactions.begin() as conn:
            conn.execute(text(statement))
            used.append(conn)
    return used


def test_sqlite_transactions_share_one_connection(engine: Engine) -> None:
    transactions = Transactions(engine)
    first, second = _one_after_another(
        transactions, "INSERT INTO t VALUES (1, 'a')", "INSERT INTO t VALUES (2, 'b')"
    )
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


def _duplicate_key(conn: Connection) -> None:
    conn.execute(text("INSERT INTO t VALUES (2, 'rolled back')"))
    conn.execute(text("INSERT INTO t VALUES (1, 'duplicate')"))


def _connection_broke(conn: Connection) -> None:
    conn.execute(text("INSERT INTO t VALUES (2, 'rolled back')"))
    conn.invalidate()
    raise RuntimeError("the connection broke")


def _commit_refused(conn: Connection) -> None:
    # SQLite refuses the COMMIT (a deferred foreign key) and keeps the transaction open:
    # a later transaction on the same connection would commit these rows.
    conn.execute(text("INSERT INTO t VALUES (2, 'rolled back')"))
    conn.execute(text("INSERT INTO c VALUES (1, 99)"))


@pytest.mark.parametrize(
    ("failing", "error"),
    [
        (_duplicate_key, IntegrityError),
        (_connection_broke, RuntimeError),
        (_commit_refused, IntegrityError),
    ],
    ids=["duplicate-key", "connection-broke", "commit-refused"],
)
def test_a_failed_transaction_leaves_nothing_and_its_connection_is_replaced(
    engine: Engine, failing: Callable[[Connection], None], error: type[Exception]
) -> None:
    transactions = Transactions(engine)
    with transactions.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (1, 'kept')"))

    def fail() -> None:
        with transactions.begin() as again:
            assert again is conn
            failing(again)

    with pytest.raises(error):
        fail()
    assert conn.closed  # whatever state the failure left it in, it is not used again
    with transactions.begin() as after:
        after.execute(text("INSERT INTO t VALUES (3, 'after')"))
    assert after is not conn
    assert _rows(engine) == [(1, "kept"), (3, "after")]
    with engine.connect() as other:
        assert other.execute(text("SELECT count(*) FROM c")).scalar_one() == 0
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
    first, second = _one_after_another(Transactions(engine), "SELECT 1", "SELECT 1")
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
