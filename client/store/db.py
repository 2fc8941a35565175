"""Database engine, SQLite pragmas, transactions and programmatic Alembic migrations.

SQLite is the default (one file in the data folder) and runs in WAL mode with
``synchronous=FULL``: in WAL mode a committed transaction survives a killed process with
``NORMAL`` already; ``FULL`` also keeps it across a power loss, which is worth one fsync per
commit for a pathologist's corrections. Every write transaction on SQLite starts with
``BEGIN IMMEDIATE`` so that read-then-write sequences (next version number, conflict checks)
are serialized between processes. A PostgreSQL URL works too: nothing SQLite-specific runs
outside :func:`_sqlite_on_connect` and :func:`_sqlite_on_begin`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from pathloop.client.errors import ConflictError, SchemaError, StoreError

logger = logging.getLogger(__name__)

_MIGRATIONS = Path(__file__).parent / "migrations"
_BUSY_TIMEOUT_MS = 30_000
_WRITE = "pathloop_write"
_MIGRATION_LOCK = 0x7061746C  # "patl": any constant shared by every pathloop process


def create_store_engine(url: str) -> Engine:
    """Create the engine for ``url``; on SQLite, create the file's folder and set pragmas.

    Parameters
    ----------
    url:
        SQLAlchemy URL, e.g. ``sqlite:////var/lib/pathloop/pathloop.db`` or
        ``postgresql+psycopg://user@host/pathloop``.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database in (None, "", ":memory:"):
        raise StoreError(f"{url}: the store needs a SQLite file, not an in-memory database")
    Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": _BUSY_TIMEOUT_MS / 1000})
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy emit BEGIN itself (see _sqlite_on_begin) instead of the sqlite3 module.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    # IMMEDIATE takes the write lock up front: two writers never both read "latest = N".
    mode = "IMMEDIATE" if connection.get_execution_options().get(_WRITE) else "DEFERRED"
    connection.exec_driver_sql(f"BEGIN {mode}")


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """A session whose transaction commits on success and rolls back on any error.

    On SQLite the transaction holds the database write lock from its first statement.

    Raises
    ------
    ConflictError
        A constraint refused the change: only a concurrent writer can get there, since the
        store checks what it can before writing (e.g. two saves of the same next version on
        PostgreSQL).
    StoreError
        Any other database failure.
    """
    writer = engine.execution_options(**{_WRITE: True})
    try:
        with Session(writer, expire_on_commit=False) as session, session.begin():
            yield session
    except IntegrityError as error:
        # The database's words (table, columns, SQL) stay on __cause__ for the log.
        raise ConflictError("a concurrent change conflicts with this one: load the latest "
                            "version and try again") from error
    except SQLAlchemyError as error:
        raise StoreError(f"the store failed: {error}") from error


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """A read-only session (one consistent snapshot); always rolled back.

    Raises
    ------
    StoreError
        Any database failure.
    """
    try:
        with Session(engine) as session, session.begin():
            yield session
    except SQLAlchemyError as error:
        raise StoreError(f"the store failed: {error}") from error


# --- migrations -------------------------------------------------------------------------------


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration built in code (no ini file) for the store's migrations.

    Parameters
    ----------
    connection:
        The connection ``migrations/env.py`` runs on; the caller owns its transaction.
    """
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest migration this code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise SchemaError("the store ships no migration")
    return head


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at (``None`` for an empty database)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database up to ``revision``, in one transaction, holding the write lock.

    Raises
    ------
    SchemaError
        The database is at a revision this code does not know (made by newer code).
    """
    _run(engine, lambda config: command.upgrade(config, revision))


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate the database down to ``revision`` (``"base"`` drops everything)."""
    _run(engine, lambda config: command.downgrade(config, revision))


def _run(engine: Engine, step: Callable[[Config], None]) -> None:
    try:
        with engine.execution_options(**{_WRITE: True}).begin() as connection:
            if connection.dialect.name == "postgresql":
                # SQLite serializes migrations with BEGIN IMMEDIATE; PostgreSQL needs a lock.
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
            step(alembic_config(connection))
    except CommandError as error:
        raise SchemaError(f"database migration failed: {error}") from error
    except SQLAlchemyError as error:
        raise StoreError(f"database migration failed: {error}") from error


def ensure_schema(engine: Engine) -> None:
    """Migrate to head and check the result.

    Raises
    ------
    SchemaError
        The database is not at this code's head revision after migrating.
    """
    upgrade(engine, "head")
    found, expected = current_revision(engine), head_revision()
    if found != expected:
        raise SchemaError(f"database at migration {found!r}, expected {expected!r}")
    logger.debug("store schema at %s", expected)
