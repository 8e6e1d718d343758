"""Runs the integration suite again with the hub on PostgreSQL (asyncpg).

The ``hub`` fixture here replaces the SQLite one: each test gets a fresh
database cloned from a migrated template, on a real PostgreSQL server started
for the session (tests/pg.py).
"""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from hub.app import open_hub
from hub.config import load_config
from hub.db import create_engine, migrate
from tests.helpers import make_config
from tests.pg import PostgresServer

TEMPLATE = "rt_template"


async def _make_template(server: PostgresServer) -> None:
    conn = await asyncpg.connect(server.dsn())
    try:
        await conn.execute(f"CREATE DATABASE {TEMPLATE}")
    finally:
        await conn.close()
    engine = create_engine(load_config(env={}, database_url=server.url(TEMPLATE)))
    try:
        await migrate(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def postgres():
    server = PostgresServer().start()
    try:
        asyncio.run(_make_template(server))
        yield server
    finally:
        server.stop()


@pytest.fixture
async def pg_database(postgres):
    name = "t" + uuid.uuid4().hex[:16]
    conn = await asyncpg.connect(postgres.dsn())
    try:
        await conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    finally:
        await conn.close()
    yield postgres.url(name)
    conn = await asyncpg.connect(postgres.dsn())
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await conn.close()


@pytest.fixture
async def hub(tmp_path, pg_database):
    cfg = make_config(tmp_path, database_url=pg_database)
    h = await open_hub(cfg)
    assert h.db.dialect == "postgresql"
    h.make_runner()
    yield h
    await h.close()
