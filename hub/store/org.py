"""Working for an actor: memberships, the audit log, API tokens, webhooks and
canned responses. The same for organizations and customers."""

from __future__ import annotations

import sqlalchemy as sa

from hub.ids import new_id
from hub.store.base import Conn, utcnow
from hub.store.schema import accounts, actors, api_tokens, audit_log, canned_responses, memberships, webhooks

# --- memberships ---------------------------------------------------------------------------


async def get_membership(conn: Conn, *, account_id: str, actor_id: str) -> sa.Row | None:
    stmt = sa.select(memberships).where(memberships.c.account_id == account_id, memberships.c.actor_id == actor_id)
    return (await conn.execute(stmt)).first()


async def set_membership_role(conn: Conn, membership_id: str, role: str) -> None:
    await conn.execute(sa.update(memberships).where(memberships.c.id == membership_id).values(role=role))


async def set_app_access(conn: Conn, membership_id: str, allow: bool) -> None:
    await conn.execute(sa.update(memberships).where(memberships.c.id == membership_id).values(app_access=allow))


async def delete_membership(conn: Conn, membership_id: str) -> None:
    await conn.execute(sa.delete(memberships).where(memberships.c.id == membership_id))


async def count_owners(conn: Conn, actor_id: str) -> int:
    stmt = sa.select(sa.func.count()).select_from(memberships).where(
        memberships.c.actor_id == actor_id, memberships.c.role == "owner"
    )
    return int((await conn.execute(stmt)).scalar_one())


async def list_actors_of_account(conn: Conn, account_id: str) -> list[sa.Row]:
    stmt = (
        sa.select(memberships.c.role, actors.c.id, actors.c.username, actors.c.type, actors.c.uri)
        .join(actors, actors.c.id == memberships.c.actor_id)
        .where(memberships.c.account_id == account_id)
        .order_by(actors.c.username)
    )
    return list((await conn.execute(stmt)).all())


# --- audit log ----------------------------------------------------------------------------------


async def put_audit(
    conn: Conn, *, actor_id: str, account_id: str | None, action: str, conversation_id: str | None = None,
    detail: dict | None = None,
) -> None:
    await conn.execute(
        sa.insert(audit_log).values(
            id=new_id(), actor_id=actor_id, account_id=account_id, action=action, conversation_id=conversation_id,
            detail=detail, created_at=utcnow(),
        )
    )


async def list_audit(conn: Conn, actor_id: str, *, limit: int = 100, before_id: str | None = None) -> list[sa.Row]:
    stmt = (
        sa.select(audit_log, accounts.c.username)
        .outerjoin(accounts, accounts.c.id == audit_log.c.account_id)
        .where(audit_log.c.actor_id == actor_id)
        .order_by(audit_log.c.id.desc())
        .limit(limit)
    )
    if before_id:
        stmt = stmt.where(audit_log.c.id < before_id)
    return list((await conn.execute(stmt)).all())


# --- API tokens ---------------------------------------------------------------------------------


async def put_token(conn: Conn, *, account_id: str, token_hash: str, name: str | None) -> str:
    token_id = new_id()
    await conn.execute(
        sa.insert(api_tokens).values(id=token_id, account_id=account_id, token_hash=token_hash, name=name, created_at=utcnow())
    )
    return token_id


async def get_account_by_token_hash(conn: Conn, token_hash: str) -> sa.Row | None:
    stmt = (
        sa.select(accounts, api_tokens.c.id.label("token_id"))
        .join(api_tokens, api_tokens.c.account_id == accounts.c.id)
        .where(api_tokens.c.token_hash == token_hash)
    )
    return (await conn.execute(stmt)).first()


async def touch_token(conn: Conn, token_id: str) -> None:
    await conn.execute(sa.update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_at=utcnow()))


async def delete_tokens_of(conn: Conn, account_id: str, name: str | None = None) -> int:
    stmt = sa.delete(api_tokens).where(api_tokens.c.account_id == account_id)
    if name is not None:
        stmt = stmt.where(api_tokens.c.name == name)
    return (await conn.execute(stmt)).rowcount


# --- webhooks -----------------------------------------------------------------------------------


async def put_webhook(conn: Conn, *, actor_id: str, url: str, secret: str, events: list[str]) -> str:
    webhook_id = new_id()
    await conn.execute(
        sa.insert(webhooks).values(
            id=webhook_id, actor_id=actor_id, url=url, secret=secret, events=events, active=True, created_at=utcnow()
        )
    )
    return webhook_id


async def list_webhooks(conn: Conn, actor_id: str) -> list[sa.Row]:
    stmt = sa.select(webhooks).where(webhooks.c.actor_id == actor_id).order_by(webhooks.c.id)
    return list((await conn.execute(stmt)).all())


async def get_webhook(conn: Conn, webhook_id: str) -> sa.Row | None:
    return (await conn.execute(sa.select(webhooks).where(webhooks.c.id == webhook_id))).first()


async def delete_webhook(conn: Conn, actor_id: str, webhook_id: str) -> bool:
    stmt = sa.delete(webhooks).where(webhooks.c.id == webhook_id, webhooks.c.actor_id == actor_id)
    return (await conn.execute(stmt)).rowcount == 1


# --- canned responses ----------------------------------------------------------------------------


async def put_canned(conn: Conn, *, actor_id: str, name: str, text: str) -> None:
    existing = await get_canned(conn, actor_id, name)
    if existing is None:
        await conn.execute(
            sa.insert(canned_responses).values(id=new_id(), actor_id=actor_id, name=name, text=text, created_at=utcnow())
        )
    else:
        await conn.execute(sa.update(canned_responses).where(canned_responses.c.id == existing.id).values(text=text))


async def get_canned(conn: Conn, actor_id: str, name: str) -> sa.Row | None:
    stmt = sa.select(canned_responses).where(canned_responses.c.actor_id == actor_id, canned_responses.c.name == name)
    return (await conn.execute(stmt)).first()


async def list_canned(conn: Conn, actor_id: str) -> list[sa.Row]:
    stmt = sa.select(canned_responses).where(canned_responses.c.actor_id == actor_id).order_by(canned_responses.c.name)
    return list((await conn.execute(stmt)).all())


async def delete_canned(conn: Conn, actor_id: str, name: str) -> bool:
    stmt = sa.delete(canned_responses).where(canned_responses.c.actor_id == actor_id, canned_responses.c.name == name)
    return (await conn.execute(stmt)).rowcount == 1
