"""Migrations build exactly the schema the store's queries describe, and run twice safely."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from hub.db import MIGRATIONS_DIR, create_engine, migrate
from hub.migrations.env_names import include_name
from hub.store.schema import metadata
from tests.helpers import make_config


async def test_migrated_database_matches_the_schema_and_reruns_are_noops(tmp_path):
    engine = create_engine(make_config(tmp_path))
    try:
        numbered = sorted(p.name[:4] for p in (MIGRATIONS_DIR / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))
        assert numbered[:3] == ["0001", "0002", "0003"]
        assert await migrate(engine) == numbered  # every revision, in order
        assert await migrate(engine) == []

        def diff(conn):
            ctx = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": include_name})
            return compare_metadata(ctx, metadata)

        async with engine.connect() as conn:
            assert await conn.run_sync(diff) == []
            mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar_one()
        assert mode == "wal"
    finally:
        await engine.dispose()
