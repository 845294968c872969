"""The database: one function opens it and brings its schema up to date; sessions commit or roll back whole."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DatabaseError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bot.errors import BotError

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000  # the scheduler and the review page may write at the same moment


class Store:
    """An engine at the current schema, and transactional sessions on it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back (nothing changed) if it raises."""
        with self._sessions.begin() as session:
            yield session

    def close(self) -> None:
        self.engine.dispose()


def open_store(url: str) -> Store:
    """Connect to `url` (SQLite or PostgreSQL) and apply any migrations the database lacks.

    A SQLite file may be new, but its folder must exist: a mistyped URL must not leave folders behind
    (BOT_HOME, where the default database lives, is created by `bot.config.load_settings`).
    """
    engine = create_engine(url, future=True, pool_pre_ping=True)  # a long `bot run` outlives server restarts
    shown = engine.url.render_as_string(hide_password=True)
    if engine.dialect.name == "sqlite":
        _prepare_sqlite(engine)
        folder = Path(engine.url.database).parent if engine.url.database not in (None, "", ":memory:") else None
        if folder is not None and not folder.is_dir():
            engine.dispose()
            raise BotError(f"Cannot open the database at {shown}: the folder {folder} does not exist; create it "
                           "first or change BOT_DATABASE_URL.")
    try:
        upgrade(engine)
    except DatabaseError as exc:
        if type(exc) not in (OperationalError, DatabaseError):  # constraint or SQL errors are bugs, not settings
            raise
        engine.dispose()
        reason = " ".join(str(exc.orig).split())  # PostgreSQL's reasons span lines
        if engine.dialect.name == "sqlite":  # the default database is BOT_HOME/bot.db
            fix = "BOT_DATABASE_URL, or BOT_HOME if BOT_DATABASE_URL is not set"
        else:
            fix = "BOT_DATABASE_URL and that the server is running"
        raise BotError(f"Cannot open the database at {shown} ({reason}); check {fix}.") from None
    return Store(engine)


def one_line(error: BaseException) -> str:
    """A database error's reason in one line, without SQLAlchemy's statement and link."""
    reason = getattr(error, "orig", None) or error
    return " ".join(str(reason).split())[:300]


def insert_ignoring_conflict(session: Session, model: type, values: dict[str, object]) -> bool:
    """INSERT a row unless one with its key exists (the same statement on SQLite and PostgreSQL); True if added."""
    from sqlalchemy.dialects import postgresql, sqlite

    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    table = model.__table__  # type: ignore[attr-defined]
    # RETURNING, not rowcount: an ORM-level insert on psycopg reports a row even when the conflict skipped it.
    statement = insert(table).values(**values).on_conflict_do_nothing().returning(*table.primary_key.columns)
    return session.execute(statement).first() is not None


def _prepare_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")  # deleting a corpus deletes its documents
        cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()


def alembic_config():  # type: ignore[no-untyped-def]
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files("bot") / "migrations"))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision`; a no-op when it is there already."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    config = alembic_config()
    head = ScriptDirectory.from_config(config).get_current_head()
    with engine.begin() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
        if current == head and revision == "head":
            return
        log.info("migrating the database from %s to %s", current, revision)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


__all__ = ["Store", "open_store", "upgrade", "insert_ignoring_conflict", "one_line", "SQLAlchemyError"]
