"""Engines and migrations: SQLite in the home by default, PostgreSQL when configured."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from trustbridge.errors import StoreError

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["HEAD_REVISION", "connect", "head_revision", "migrate", "schema_revision"]

_MIGRATIONS = Path(__file__).parent / "migrations"
#: The newest migration's revision (tests/store checks that it is alembic's head). A database
#: already there opens without loading alembic, which a command would otherwise spend a tenth
#: of its start-up on.
HEAD_REVISION = "0007"


def _alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def connect(url: str) -> Engine:
    """An engine for ``url`` (``sqlite:///path`` or ``postgresql+psycopg://...``)."""
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)
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
