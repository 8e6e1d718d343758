"""Actors (local and cached remote), their keys, accounts and memberships."""

from __future__ import annotations

import sqlalchemy as sa

from hub.store.base import Conn, insert, utcnow
from hub.store.schema import accounts, actors, keys, memberships

ACTOR_COLUMNS = (
    "uri type local username domain name summary url icon_url image_url manually_approves_followers "
    "discoverable fields also_known_as moved_to inbox_uri outbox_uri shared_inbox_uri "
    "followers_uri following_uri featured_uri private_key_pem raw published_at fetched_at "
    "updated_at deleted_at"
).split()


async def get_actor_by_id(conn: Conn, actor_id: str) -> sa.Row | None:
    return (await conn.execute(sa.select(actors).where(actors.c.id == actor_id))).first()


async def get_actor_by_uri(conn: Conn, uri: str) -> sa.Row | None:
    return (await conn.execute(sa.select(actors).where(actors.c.uri == uri))).first()


async def get_actors_by_uris(conn: Conn, uris: list[str]) -> list[sa.Row]:
    if not uris:
        return []
    return list((await conn.execute(sa.select(actors).where(actors.c.uri.in_(uris)))).all())


async def get_local_actor(conn: Conn, username: str) -> sa.Row | None:
    stmt = sa.select(actors).where(actors.c.local.is_(True), actors.c.username == username.lower())
    return (await conn.execute(stmt)).first()


async def get_remote_actor_by_handle(conn: Conn, username: str, domain: str) -> sa.Row | None:
    stmt = sa.select(actors).where(
        actors.c.local.is_(False),
        sa.func.lower(actors.c.username) == username.lower(),
        actors.c.domain == domain.lower(),
        actors.c.deleted_at.is_(None),
    )
    return (await conn.execute(stmt.order_by(actors.c.fetched_at.desc()))).first()


async def get_actor_by_followers_uri(conn: Conn, followers_uri: str) -> sa.Row | None:
    stmt = sa.select(actors).where(actors.c.followers_uri == followers_uri)
    return (await conn.execute(stmt)).first()


async def list_local_actors(conn: Conn, *, include_instance: bool = False) -> list[sa.Row]:
    stmt = sa.select(actors).where(actors.c.local.is_(True))
    if not include_instance:
        stmt = stmt.where(actors.c.type != "Application")
    return list((await conn.execute(stmt.order_by(actors.c.username))).all())


async def count_local_actors(conn: Conn) -> int:
    stmt = sa.select(sa.func.count()).select_from(actors).where(
        actors.c.local.is_(True), actors.c.type != "Application", actors.c.deleted_at.is_(None)
    )
    return int((await conn.execute(stmt)).scalar_one())


async def put_actor(conn: Conn, values: dict) -> None:
    values = {"created_at": utcnow(), **values}
    await conn.execute(sa.insert(actors).values(**values))


async def update_actor(conn: Conn, actor_id: str, values: dict) -> None:
    await conn.execute(
        sa.update(actors).where(actors.c.id == actor_id).values(updated_at=utcnow(), **values)
    )


async def upsert_remote_actor(conn: Conn, values: dict, actor_keys: list[dict]) -> str:
    """Insert or refresh a cached remote actor by URI; replace its keys. Returns its id."""
    now = utcnow()
    existing = await get_actor_by_uri(conn, values["uri"])
    if existing is not None:
        if existing.local:
            raise ValueError("refusing to overwrite a local actor with a remote document")
        actor_id = existing.id
        changes = {k: v for k, v in values.items() if k != "id"}
        await conn.execute(
            sa.update(actors)
            .where(actors.c.id == actor_id)
            .values(**changes, fetched_at=now, updated_at=now, deleted_at=None)
        )
    else:
        actor_id = values["id"]
        await conn.execute(
            sa.insert(actors).values(**values, local=False, fetched_at=now, created_at=now)
        )
    await conn.execute(sa.delete(keys).where(keys.c.actor_id == actor_id))
    for key in actor_keys:
        # Key ids are on the actor's own origin (documents.parse_keys), so the
        # latest document of that server that names a key owns it.
        stmt = insert(conn, keys).values(actor_id=actor_id, created_at=now, **key)
        await conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[keys.c.key_id],
                set_={"actor_id": actor_id, "kind": key["kind"], "public_key": key["public_key"], "created_at": now},
            )
        )
    return actor_id


async def mark_actor_deleted(conn: Conn, actor_id: str) -> None:
    now = utcnow()
    await conn.execute(
        sa.update(actors).where(actors.c.id == actor_id).values(deleted_at=now, updated_at=now)
    )
    await conn.execute(sa.delete(keys).where(keys.c.actor_id == actor_id))


# --- keys ----------------------------------------------------------------------


async def get_key(conn: Conn, key_id: str) -> sa.Row | None:
    stmt = (
        sa.select(keys, actors.c.uri.label("owner_uri"), actors.c.deleted_at.label("owner_deleted_at"))
        .join(actors, actors.c.id == keys.c.actor_id)
        .where(keys.c.key_id == key_id)
    )
    return (await conn.execute(stmt)).first()


async def put_key(conn: Conn, *, key_id: str, actor_id: str, kind: str, public_key: str) -> None:
    await conn.execute(
        sa.insert(keys).values(
            key_id=key_id, actor_id=actor_id, kind=kind, public_key=public_key, created_at=utcnow()
        )
    )


# --- accounts and memberships ------------------------------------------------------


async def get_account_by_username(conn: Conn, username: str) -> sa.Row | None:
    stmt = sa.select(accounts).where(accounts.c.username == username.lower())
    return (await conn.execute(stmt)).first()


async def get_account_by_id(conn: Conn, account_id: str) -> sa.Row | None:
    return (await conn.execute(sa.select(accounts).where(accounts.c.id == account_id))).first()


async def usernames_of_accounts(conn: Conn, account_ids: list[str]) -> dict[str, str]:
    if not account_ids:
        return {}
    stmt = sa.select(accounts.c.id, accounts.c.username).where(accounts.c.id.in_(account_ids))
    return {i: u for i, u in await conn.execute(stmt)}


async def get_account_by_email(conn: Conn, email: str) -> sa.Row | None:
    stmt = sa.select(accounts).where(sa.func.lower(accounts.c.email) == email.lower())
    return (await conn.execute(stmt)).first()


async def put_account(conn: Conn, values: dict) -> None:
    await conn.execute(sa.insert(accounts).values(created_at=utcnow(), **values))


async def put_membership(conn: Conn, values: dict) -> None:
    await conn.execute(sa.insert(memberships).values(created_at=utcnow(), **values))


async def list_memberships_of_actor(conn: Conn, actor_id: str) -> list[sa.Row]:
    stmt = (
        sa.select(memberships, accounts.c.username, accounts.c.email)
        .join(accounts, accounts.c.id == memberships.c.account_id)
        .where(memberships.c.actor_id == actor_id)
        .order_by(accounts.c.username)
    )
    return list((await conn.execute(stmt)).all())
