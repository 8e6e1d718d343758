"""Follows, blocks and reactions (likes, announces) between actors."""

from __future__ import annotations

import sqlalchemy as sa

from hub.ids import new_id
from hub.store.base import Conn, insert, page_filter, utcnow
from hub.store.schema import actors, blocks, follows, reactions

# --- follows -----------------------------------------------------------------


async def get_follow(conn: Conn, *, follower_id: str, followee_id: str) -> sa.Row | None:
    stmt = sa.select(follows).where(
        follows.c.follower_id == follower_id, follows.c.followee_id == followee_id
    )
    return (await conn.execute(stmt)).first()


async def get_follow_by_uri(conn: Conn, uri: str) -> sa.Row | None:
    return (await conn.execute(sa.select(follows).where(follows.c.uri == uri))).first()


async def put_follow(
    conn: Conn, *, follower_id: str, followee_id: str, state: str, uri: str | None
) -> sa.Row:
    """Create the follow, or refresh its URI (and state) if it exists. Returns the row."""
    now = utcnow()
    existing = await get_follow(conn, follower_id=follower_id, followee_id=followee_id)
    if existing is None:
        await conn.execute(
            sa.insert(follows).values(
                id=new_id(),
                follower_id=follower_id,
                followee_id=followee_id,
                state=state,
                uri=uri,
                created_at=now,
                accepted_at=now if state == "accepted" else None,
            )
        )
    else:
        values: dict = {"uri": uri or existing.uri}
        if existing.state != "accepted":
            values["state"] = state
            values["accepted_at"] = now if state == "accepted" else None
        await conn.execute(sa.update(follows).where(follows.c.id == existing.id).values(**values))
    return await get_follow(conn, follower_id=follower_id, followee_id=followee_id)


async def accept_follow(conn: Conn, follow_id: str) -> None:
    await conn.execute(
        sa.update(follows)
        .where(follows.c.id == follow_id, follows.c.state != "accepted")
        .values(state="accepted", accepted_at=utcnow())
    )


async def delete_follow(conn: Conn, follow_id: str) -> None:
    await conn.execute(sa.delete(follows).where(follows.c.id == follow_id))


async def delete_follows_between(conn: Conn, a_id: str, b_id: str) -> None:
    await conn.execute(
        sa.delete(follows).where(
            sa.or_(
                sa.and_(follows.c.follower_id == a_id, follows.c.followee_id == b_id),
                sa.and_(follows.c.follower_id == b_id, follows.c.followee_id == a_id),
            )
        )
    )


async def delete_follows_of_actor(conn: Conn, actor_id: str) -> None:
    await conn.execute(
        sa.delete(follows).where(
            sa.or_(follows.c.follower_id == actor_id, follows.c.followee_id == actor_id)
        )
    )


async def count_follows(conn: Conn, actor_id: str, *, followers: bool) -> int:
    col = follows.c.followee_id if followers else follows.c.follower_id
    stmt = sa.select(sa.func.count()).select_from(follows).where(
        col == actor_id, follows.c.state == "accepted"
    )
    return int((await conn.execute(stmt)).scalar_one())


async def list_follow_page(
    conn: Conn, actor_id: str, *, followers: bool, limit: int, max_id: str | None = None
) -> list[sa.Row]:
    """Accepted followers (or followees) newest first: rows of (follow id, actor uri)."""
    own, other = (
        (follows.c.followee_id, follows.c.follower_id)
        if followers
        else (follows.c.follower_id, follows.c.followee_id)
    )
    stmt = (
        sa.select(follows.c.id, actors.c.uri)
        .join(actors, actors.c.id == other)
        .where(own == actor_id, follows.c.state == "accepted", *page_filter(follows.c.id, max_id=max_id))
        .order_by(follows.c.id.desc())
        .limit(limit)
    )
    return list((await conn.execute(stmt)).all())


async def list_pending_follow_requests(conn: Conn, followee_id: str) -> list[sa.Row]:
    stmt = (
        sa.select(follows, actors.c.uri.label("follower_uri"), actors.c.username, actors.c.domain)
        .join(actors, actors.c.id == follows.c.follower_id)
        .where(follows.c.followee_id == followee_id, follows.c.state == "pending")
        .order_by(follows.c.id)
    )
    return list((await conn.execute(stmt)).all())


async def list_follower_targets(conn: Conn, followee_id: str) -> list[sa.Row]:
    """Every accepted follower with what fan-out needs: id, local, inboxes.

    Followers who block the followee, or whom it blocks, are left out.
    """
    blocked = sa.select(blocks.c.blocked_id).where(blocks.c.blocker_id == followee_id)
    blocking = sa.select(blocks.c.blocker_id).where(blocks.c.blocked_id == followee_id)
    stmt = (
        sa.select(actors.c.id, actors.c.uri, actors.c.local, actors.c.inbox_uri, actors.c.shared_inbox_uri)
        .join(follows, follows.c.follower_id == actors.c.id)
        .where(
            follows.c.followee_id == followee_id,
            follows.c.state == "accepted",
            actors.c.deleted_at.is_(None),
            actors.c.id.not_in(blocked),
            actors.c.id.not_in(blocking),
        )
    )
    return list((await conn.execute(stmt)).all())


async def list_local_followers_of(conn: Conn, followee_id: str) -> list[str]:
    stmt = (
        sa.select(actors.c.id)
        .join(follows, follows.c.follower_id == actors.c.id)
        .where(follows.c.followee_id == followee_id, follows.c.state == "accepted", actors.c.local.is_(True))
    )
    return [r[0] for r in await conn.execute(stmt)]


async def is_following(conn: Conn, *, follower_id: str, followee_id: str) -> bool:
    row = await get_follow(conn, follower_id=follower_id, followee_id=followee_id)
    return row is not None and row.state == "accepted"


# --- blocks --------------------------------------------------------------------


async def put_block(conn: Conn, *, blocker_id: str, blocked_id: str, uri: str | None) -> None:
    stmt = insert(conn, blocks).values(
        id=new_id(), blocker_id=blocker_id, blocked_id=blocked_id, uri=uri, created_at=utcnow()
    )
    await conn.execute(stmt.on_conflict_do_nothing())


async def get_block(conn: Conn, *, blocker_id: str, blocked_id: str) -> sa.Row | None:
    stmt = sa.select(blocks).where(blocks.c.blocker_id == blocker_id, blocks.c.blocked_id == blocked_id)
    return (await conn.execute(stmt)).first()


async def get_block_by_uri(conn: Conn, uri: str) -> sa.Row | None:
    return (await conn.execute(sa.select(blocks).where(blocks.c.uri == uri))).first()


async def delete_block(conn: Conn, *, blocker_id: str, blocked_id: str) -> None:
    await conn.execute(
        sa.delete(blocks).where(blocks.c.blocker_id == blocker_id, blocks.c.blocked_id == blocked_id)
    )


async def blocked_either_way(conn: Conn, a_id: str, b_id: str) -> bool:
    stmt = sa.select(blocks.c.id).where(
        sa.or_(
            sa.and_(blocks.c.blocker_id == a_id, blocks.c.blocked_id == b_id),
            sa.and_(blocks.c.blocker_id == b_id, blocks.c.blocked_id == a_id),
        )
    )
    return (await conn.execute(stmt.limit(1))).first() is not None


async def list_blocked_ids(conn: Conn, actor_id: str) -> set[str]:
    """Actors this actor blocks or is blocked by."""
    a = sa.select(blocks.c.blocked_id).where(blocks.c.blocker_id == actor_id)
    b = sa.select(blocks.c.blocker_id).where(blocks.c.blocked_id == actor_id)
    return {r[0] for r in await conn.execute(sa.union(a, b))}


# --- reactions ---------------------------------------------------------------------


async def put_reaction(
    conn: Conn, *, uri: str, kind: str, actor_id: str, object_uri: str, content: str | None = None
) -> bool:
    stmt = insert(conn, reactions).values(
        id=new_id(),
        uri=uri,
        kind=kind,
        actor_id=actor_id,
        object_uri=object_uri,
        content=content,
        created_at=utcnow(),
    )
    result = await conn.execute(stmt.on_conflict_do_nothing())
    return result.rowcount == 1


async def get_reaction_by_uri(conn: Conn, uri: str) -> sa.Row | None:
    return (await conn.execute(sa.select(reactions).where(reactions.c.uri == uri))).first()


async def get_reaction(conn: Conn, *, kind: str, actor_id: str, object_uri: str) -> sa.Row | None:
    stmt = sa.select(reactions).where(
        reactions.c.kind == kind, reactions.c.actor_id == actor_id, reactions.c.object_uri == object_uri
    )
    return (await conn.execute(stmt)).first()


async def delete_reaction(conn: Conn, reaction_id: str) -> None:
    await conn.execute(sa.delete(reactions).where(reactions.c.id == reaction_id))


async def count_reactions(conn: Conn, object_uri: str, kind: str) -> int:
    stmt = sa.select(sa.func.count()).select_from(reactions).where(
        reactions.c.object_uri == object_uri, reactions.c.kind == kind
    )
    return int((await conn.execute(stmt)).scalar_one())
