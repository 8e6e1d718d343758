"""Migrations on PostgreSQL build exactly the schema the store describes, and
workers in several processes can share the queue without taking a job twice."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from hub.config import load_config
from hub.db import Database, create_engine, migrate
from hub.migrations.env_names import include_name
from hub.store import jobs as job_store
from hub.store.base import utcnow
from hub.store.schema import metadata


async def test_migrated_postgres_database_matches_the_schema(pg_database):
    engine = create_engine(load_config(env={}, database_url=pg_database))
    try:
        assert await migrate(engine) == []  # the template is migrated already

        def diff(conn):
            return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True, "include_name": include_name}), metadata)

        async with engine.connect() as conn:
            assert await conn.run_sync(diff) == []
    finally:
        await engine.dispose()


async def test_concurrent_claims_never_take_the_same_job(pg_database):
    """Four claimers (as four worker processes would) race for 200 jobs:
    FOR UPDATE SKIP LOCKED hands each job to exactly one of them."""
    dbs = [Database(create_engine(load_config(env={}, database_url=pg_database))) for _ in range(4)]
    try:
        await dbs[0].run_write(lambda c: job_store_put(c, 200))

        async def claimer(db):
            got = []
            while True:
                rows = await db.run_write(lambda c: job_store.claim_jobs(c, now=utcnow(), lease_s=60, limit=7))
                if not rows:
                    return got
                got.extend(r.id for r in rows)

        results = await asyncio.gather(*(claimer(db) for db in dbs))
        claimed = [i for r in results for i in r]
        assert len(claimed) == 200 and len(set(claimed)) == 200
        assert all(results), "every claimer got work"
    finally:
        for db in dbs:
            await db.dispose()


def job_store_put(conn, n):
    import sqlalchemy as sa

    from hub.store.schema import jobs

    conn.execute(sa.insert(jobs), [job_store.job_row("test.job", {"n": i}) for i in range(n)])
