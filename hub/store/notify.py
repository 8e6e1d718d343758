"""Members' email notifications: their choices (three columns of a
membership) and the record that a notification mail went out.

The choices are per membership, so one login chooses separately for each
actor it speaks for. Only SQL here; what to send and when is ``hub.notify``.
"""

from __future__ import annotations

import sqlalchemy as sa

from hub.store.base import Conn
from hub.store.schema import accounts, actors, jobs, memberships

CHOICES = ("conversations", "messages", "assignments")


def _column(choice: str) -> sa.Column:
    if choice not in CHOICES:
        raise ValueError(f"unknown notification choice {choice!r}")
    return memberships.c[f"notify_{choice}"]


async def list_recipients(conn: Conn, actor_id: str, choice: str) -> list[sa.Row]:
    """Members of ``actor_id`` who chose ``choice`` and have an email address:
    ``account_id, username, email``."""
    stmt = (
        sa.select(accounts.c.id.label("account_id"), accounts.c.username, accounts.c.email)
        .join(memberships, memberships.c.account_id == accounts.c.id)
        .where(memberships.c.actor_id == actor_id, _column(choice).is_(True), accounts.c.email.is_not(None),
               accounts.c.email != "")
        .order_by(accounts.c.username)
    )
    return list((await conn.execute(stmt)).all())


async def get_recipient(conn: Conn, *, account_id: str, actor_id: str, choice: str) -> sa.Row | None:
    """The member as ``list_recipients`` gives them, if they still are one,
    still want ``choice`` and still have an address (else None)."""
    stmt = (
        sa.select(accounts.c.id.label("account_id"), accounts.c.username, accounts.c.email)
        .join(memberships, memberships.c.account_id == accounts.c.id)
        .where(memberships.c.actor_id == actor_id, accounts.c.id == account_id, _column(choice).is_(True),
               accounts.c.email.is_not(None), accounts.c.email != "")
    )
    return (await conn.execute(stmt)).first()


async def list_choices(conn: Conn, account_id: str) -> list[sa.Row]:
    """Every actor the account speaks for, with its role and its three
    choices there: ``actor_id, username, name, type, role, conversations,
    messages, assignments``; by username."""
    stmt = (
        sa.select(
            actors.c.id.label("actor_id"), actors.c.username, actors.c.name, actors.c.type, memberships.c.role,
            memberships.c.notify_conversations.label("conversations"),
            memberships.c.notify_messages.label("messages"),
            memberships.c.notify_assignments.label("assignments"),
        )
        .join(actors, actors.c.id == memberships.c.actor_id)
        .where(memberships.c.account_id == account_id, actors.c.type != "Application")
        .order_by(actors.c.username)
    )
    return list((await conn.execute(stmt)).all())


async def set_choices(conn: Conn, *, account_id: str, actor_id: str, values: dict[str, bool]) -> bool:
    """Change some of the account's choices for one actor (keys of
    ``CHOICES``); False when the account is no member of it."""
    changes = {_column(k).name: bool(v) for k, v in values.items()}
    stmt = sa.update(memberships).where(memberships.c.account_id == account_id, memberships.c.actor_id == actor_id)
    if not changes:
        stmt = sa.select(memberships.c.id).where(memberships.c.account_id == account_id,
                                                 memberships.c.actor_id == actor_id)
        return (await conn.execute(stmt)).first() is not None
    return (await conn.execute(stmt.values(**changes))).rowcount > 0


async def mark_sent(conn: Conn, job_id: str, payload: dict) -> None:
    """Keep in a ``mail.notify`` job that its mail was accepted by the relay
    (``payload`` carries ``sent_at``): a repeat of the job sends nothing."""
    await conn.execute(sa.update(jobs).where(jobs.c.id == job_id).values(payload=payload))
