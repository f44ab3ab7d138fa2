"""Engines and migrations: SQLite in the home by default, PostgreSQL when configured."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from trustbridge.errors import StoreError

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "CHECKPOINT_COMMITS",
    "HEAD_REVISION",
    "Transactions",
    "WalCheckpointer",
    "checkpointer",
    "connect",
    "head_revision",
    "migrate",
    "schema_revision",
]

_MIGRATIONS = Path(__file__).parent / "migrations"
#: The newest migration's revision (tests/store checks that it is alembic's head). A database
#: already there opens without loading alembic, which a command would otherwise spend a tenth
#: of its start-up on.
HEAD_REVISION = "0009"


def _alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


#: Commits after which the checkpointer moves the WAL into the database file.
CHECKPOINT_COMMITS = 64
#: WAL pages at which a writer checkpoints itself (SQLite's own automatic checkpoint, left
#: as the fallback should the checkpointer fall behind; SQLite's default is 1000).
_WRITER_CHECKPOINT_PAGES = 10_000


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute(f"PRAGMA wal_autocheckpoint={_WRITER_CHECKPOINT_PAGES}")
    cursor.close()


class WalCheckpointer:
    """Checkpoints a SQLite database in WAL mode from a background thread.

    With ``synchronous=NORMAL`` a commit writes its pages to the write-ahead log without
    waiting for the disk; the wait comes with the checkpoint, which syncs the log and copies it
    into the database file. Left to SQLite, the commit that fills the log to 1000 pages runs
    the checkpoint, so every fiftieth issuance or so waited several milliseconds. Here a thread
    runs a PASSIVE checkpoint (it never blocks writers or readers) after every
    :data:`CHECKPOINT_COMMITS` commits of this process, with its own connection (the ``sqlite3``
    module lets other threads run while SQLite works).

    What a commit guarantees is what ``synchronous=NORMAL`` gave before: it survives a crash of
    the process at once (it is in the log), and a power loss once the next checkpoint has
    synced the log, about every 64 commits (before: about every 50, at 1000 pages). Writers
    still checkpoint themselves if the log reaches 10,000 pages (another process writes, or the
    thread fell behind). The thread starts with the first checkpoint due, again if it died
    (an unexpected error, a fork) or its engine was disposed and is used again.
    """

    def __init__(self, path: str, *, every: int | None = None) -> None:
        # Opened read-write without creating: a database removed meanwhile is not made anew.
        self._uri = f"file:{quote(path)}?mode=rw"
        self._every = every if every is not None else CHECKPOINT_COMMITS
        self._commits = 0
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        #: Checkpoints run, and the last error (for tests and diagnostics).
        self.checkpoints = 0
        self.error: str | None = None

    def committed(self, *_: Any) -> None:
        """Count a commit; wake the thread every ``every`` commits (an engine listener)."""
        self._commits += 1
        if self._commits < self._every:
            return
        self._commits = 0
        thread = self._thread
        if thread is None or not thread.is_alive():
            with self._lock:
                thread = self._thread
                if thread is None or not thread.is_alive():
                    self._wake = threading.Event()
                    thread = threading.Thread(
                        target=self._run, args=(self._wake,), name="sqlite-checkpoint", daemon=True
                    )
                    self._thread = thread
                    thread.start()
        self._wake.set()

    def checkpoint(self) -> None:
        """One PASSIVE checkpoint now, on a connection of its own."""
        try:
            connection = sqlite3.connect(self._uri, uri=True, timeout=30)
            try:
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            finally:
                connection.close()
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
        else:
            self.checkpoints += 1

    def _run(self, wake: threading.Event) -> None:
        while True:
            wake.wait()
            wake.clear()
            if self._thread is not threading.current_thread():
                return  # stopped (close) or replaced
            self.checkpoint()

    def close(self, *_: Any) -> None:
        """Stop the thread (an engine listener: when the engine is disposed); commits on the
        engine afterwards start a new one."""
        with self._lock:
            thread, self._thread = self._thread, None
            wake = self._wake
        wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)


class Transactions:
    """Transactions on an engine; on a SQLite file, on a connection kept open between them.

    Taking a connection from SQLAlchemy's pool and giving it back costs about as much as
    SQLite's own commit of a small transaction (pool bookkeeping, events, the reset on
    return). On SQLite, where writers take turns anyway, one connection stays open and serves
    the transaction of whichever thread finds it free; a thread that finds it taken (another
    thread's transaction, or a transaction begun inside one) takes a pooled connection as
    before, so nothing waits for it and the pool is never short of one.

    After every transaction the kept connection is reset at the driver as the pool resets a
    connection given back (a rollback: it ends a transaction SQLite still has open after a
    commit that failed, and the read of a result not fetched to its end). It is closed and
    replaced when the block or the commit raised, when it was invalidated, or when the reset
    fails. A process forked since it was opened never uses it (nor returns it to its pool).
    After :meth:`close`, transactions take pooled connections. PostgreSQL connections always
    come from the pool (its pre-ping notices a restarted server).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._keep = engine.dialect.name == "sqlite" and checkpointer(engine) is not None
        self._lock = threading.Lock()
        self._kept: Connection | None = None
        self._pid = 0
        self._closed = False
        #: Connections opened before a fork: held, never closed or returned in this process.
        self._inherited: list[Connection] = []

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A transaction, committed when the block ends, rolled back if it raises."""
        if not self._keep or self._closed or not self._lock.acquire(blocking=False):
            with self.engine.begin() as connection:
                yield connection
            return
        try:
            connection = self._connection()
            ended = False
            try:
                with connection.begin():
                    yield connection
                ended = True
            finally:
                if not ended or self._closed or not _reset(connection):
                    self._drop()
        finally:
            self._lock.release()

    def _connection(self) -> Connection:
        kept = self._kept
        if kept is not None and self._pid != os.getpid():
            # Opened before a fork: the parent's. Kept referenced, so that it is never
            # closed or given back to the pool in this process.
            self._inherited.append(kept)
            kept = self._kept = None
        if kept is None or kept.closed:
            self._kept = kept = self.engine.connect()
            self._pid = os.getpid()
        return kept

    def _drop(self) -> None:
        kept, self._kept = self._kept, None
        if kept is not None and self._pid == os.getpid():
            with suppress(SQLAlchemyError):  # already unusable: dropped either way
                kept.close()

    def close(self) -> None:
        """Close the kept connection; transactions from now on take pooled ones. A
        transaction running on it meanwhile closes it when it ends."""
        self._closed = True
        if self._lock.acquire(blocking=False):
            try:
                self._drop()
            finally:
                self._lock.release()


def _reset(connection: Connection) -> bool:
    """Reset a connection after its transaction as the pool resets one given back: a driver
    rollback. Whether it is clean (no transaction left open, not invalidated)."""
    if connection.invalidated or connection.in_transaction():
        return False
    try:
        dbapi = connection.connection.dbapi_connection
        if dbapi is None:
            return False
        dbapi.rollback()
        return not dbapi.in_transaction
    except Exception:  # any failure: the connection is replaced
        return False


def checkpointer(engine: Engine) -> WalCheckpointer | None:
    """The checkpointer of a SQLite file engine made by :func:`connect`."""
    found: WalCheckpointer | None = getattr(engine, "_trustbridge_checkpointer", None)
    return found


def connect(url: str) -> Engine:
    """An engine for ``url`` (``sqlite:///path`` or ``postgresql+psycopg://...``)."""
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)
            database = engine.url.database
            if database and database != ":memory:" and not database.startswith("file:"):
                worker = WalCheckpointer(str(Path(database).resolve()))
                event.listen(engine, "commit", worker.committed)
                event.listen(engine, "engine_disposed", worker.close)
                engine._trustbridge_checkpointer = worker  # type: ignore[attr-defined]
        else:
            engine = create_engine(url, pool_pre_ping=True)
    except (SQLAlchemyError, ImportError) as exc:
        raise StoreError(f"cannot use database URL {_redact(url)}: {exc}") from exc
    return engine


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def schema_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def _at_head(engine: Engine) -> bool:
    """Whether the database records exactly :data:`HEAD_REVISION` (False where it records
    anything else, nothing, or cannot be read: alembic then decides and reports)."""
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    except SQLAlchemyError:
        return False
    return [tuple(r) for r in rows] == [(HEAD_REVISION,)]


def migrate(engine: Engine) -> None:
    """Create or upgrade the schema to the newest migration."""
    if _at_head(engine):
        return
    from alembic import command

    config = _alembic_config()
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except OperationalError as exc:
        raise StoreError(
            f"cannot reach database {_redact(str(engine.url))}: {exc.orig}",
            hint="check TRUSTBRIDGE_DATABASE_URL or the home's [database] url",
        ) from None
