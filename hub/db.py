"""Database engine and migrations.

One async SQLAlchemy engine per process: SQLite through aiosqlite by default
(WAL mode, so CLI commands can run beside a running server), PostgreSQL through
asyncpg when ``database_url`` says so. Schema changes happen only through the
numbered Alembic migrations in ``hub/migrations``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from hub.config import Config

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def create_engine(cfg: Config) -> AsyncEngine:
    """Create the engine; for SQLite, make sure the data directory exists."""
    url = sa.make_url(cfg.database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            # WAL lets readers (CLI commands, other workers) run beside the
            # writer; NORMAL sync is durable across application crashes and
            # loses at most the last commits on power loss in WAL mode.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        # SQLite's own transaction handling in pysqlite is broken for
        # SAVEPOINT and BEGIN IMMEDIATE; take control of BEGIN ourselves so a
        # writer takes the write lock up front instead of failing mid-way with
        # "database is locked" when another process writes.
        @event.listens_for(engine.sync_engine, "connect")
        def _no_pysqlite_begin(dbapi_conn, _record):  # pragma: no cover - trivial
            dbapi_conn.isolation_level = None

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(conn):  # pragma: no cover - trivial
            if conn.get_execution_options().get("write"):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql("BEGIN")

        return engine
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def _alembic_config(connection):
    from alembic.config import Config as AlembicConfig

    acfg = AlembicConfig()
    acfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    acfg.attributes["connection"] = connection
    return acfg


async def migrate(engine: AsyncEngine) -> list[str]:
    """Apply every pending migration; return the revisions applied."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    def _current(conn) -> str | None:
        return MigrationContext.configure(conn).get_current_revision()

    def _upgrade(conn) -> None:
        command.upgrade(_alembic_config(conn), "head")

    async with engine.connect() as conn:
        before = await conn.run_sync(_current)
    async with engine.connect() as conn:
        await conn.execution_options(write=True)
        async with conn.begin():
            await conn.run_sync(_upgrade)
    async with engine.connect() as conn:
        after = await conn.run_sync(_current)
    if before == after:
        return []
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    applied = [
        rev.revision
        for rev in script.iterate_revisions(after, before)
        if rev.revision != before
    ]
    applied.reverse()
    log.info("applied migrations %s", ", ".join(applied))
    return applied


async def pending_migrations(engine: AsyncEngine) -> bool:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    def _current(conn) -> str | None:
        return MigrationContext.configure(conn).get_current_revision()

    async with engine.connect() as conn:
        current = await conn.run_sync(_current)
    return current != ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


class Database:
    """Transactions for the store layer.

    ``read()`` gives a connection in a deferred transaction; ``write()`` one
    that holds the write lock from its first statement (SQLite ``BEGIN
    IMMEDIATE``), so a read-then-write transaction never fails half-way
    because another process wrote in between.
    """

    def __init__(self, engine: AsyncEngine):
        self.engine = engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def read(self):
        return _Tx(self.engine, write=False)

    def write(self):
        return _Tx(self.engine, write=True)

    async def dispose(self) -> None:
        await self.engine.dispose()


class _Tx:
    def __init__(self, engine: AsyncEngine, *, write: bool):
        self.engine = engine
        self.write = write

    async def __aenter__(self):
        self._conn = await self.engine.connect()
        if self.write:
            await self._conn.execution_options(write=True)
        self._tx = await self._conn.begin()
        return self._conn

    async def __aexit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                await self._tx.commit()
            else:
                await self._tx.rollback()
        finally:
            await self._conn.close()
        return False
