"""Helpers shared by the store modules: time, dialect-aware inserts."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

Conn = AsyncConnection


def clean_text(value: str | None, limit: int | None = None) -> str | None:
    """Text as every backend stores it: no NUL characters (PostgreSQL refuses
    them), at most ``limit`` characters."""
    if value is None:
        return None
    value = value.replace("\x00", "")
    return value[:limit] if limit is not None else value


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def insert(conn: Conn, table: sa.Table):
    """An INSERT that supports ``on_conflict_do_nothing`` on both dialects."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


async def insert_ignore(conn: Conn, table: sa.Table, rows: list[dict], *, returning=None) -> list:
    """Insert rows, silently skipping those that violate a unique constraint.

    Returns the ``returning`` column of each row actually inserted (an empty
    list when ``returning`` is None).
    """
    if not rows:
        return []
    stmt = insert(conn, table).on_conflict_do_nothing()
    if returning is None:
        await conn.execute(stmt, rows)
        return []
    out = []
    # RETURNING with executemany is supported by both dialects through
    # SQLAlchemy's "insertmanyvalues"; rows skipped by the conflict return nothing.
    result = await conn.execute(stmt.returning(returning), rows)
    out.extend(r[0] for r in result)
    return out


def page_filter(column, *, max_id: str | None = None, min_id: str | None = None):
    """Conditions for id-based paging (ULIDs sort by time)."""
    conds = []
    if max_id:
        conds.append(column < max_id)
    if min_id:
        conds.append(column > min_id)
    return conds
