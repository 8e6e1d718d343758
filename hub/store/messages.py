"""Messages (notes), conversations and each actor's received timeline."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from hub.ids import new_id
from hub.store.base import Conn, insert, insert_ignore, page_filter, utcnow
from hub.store.schema import actors, conversations, message_tags, message_versions, messages, timeline


async def get_message_by_id(conn: Conn, message_id: str) -> sa.Row | None:
    return (await conn.execute(sa.select(messages).where(messages.c.id == message_id))).first()


async def get_message_by_uri(conn: Conn, uri: str) -> sa.Row | None:
    return (await conn.execute(sa.select(messages).where(messages.c.uri == uri))).first()


async def put_message(conn: Conn, values: dict) -> bool:
    """Insert a message; False if one with that URI already exists. Its hashtags are ``values["tags"]``
    when given (a remote note's Hashtag tags), else, for a message written here, those of its text."""
    values = dict(values)
    tags = values.pop("tags", None)
    stmt = insert(conn, messages).values(created_at=utcnow(), **values).on_conflict_do_nothing()
    if (await conn.execute(stmt)).rowcount != 1:
        return False
    if tags is None and values.get("local"):
        from hub.text import find_hashtags

        tags = find_hashtags(values.get("content_text") or "")
    await _insert_tags(conn, values["id"], tags or [])
    return True


async def _insert_tags(conn: Conn, message_id: str, tags: list[str]) -> None:
    from hub.text import tag_name

    clean = [t for t in dict.fromkeys(tag_name(t) for t in tags if isinstance(t, str)) if t]
    if clean:
        await conn.execute(sa.insert(message_tags), [{"message_id": message_id, "tag": t} for t in clean[:20]])


async def set_tags(conn: Conn, message_id: str, tags: list[str]) -> None:
    await conn.execute(sa.delete(message_tags).where(message_tags.c.message_id == message_id))
    await _insert_tags(conn, message_id, tags)


async def tags_of(conn: Conn, message_ids: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {i: [] for i in message_ids}
    if message_ids:
        stmt = sa.select(message_tags.c.message_id, message_tags.c.tag).where(
            message_tags.c.message_id.in_(message_ids)).order_by(message_tags.c.tag)
        for message_id, tag in await conn.execute(stmt):
            out[message_id].append(tag)
    return out


async def update_message(conn: Conn, message_id: str, values: dict) -> None:
    """Change a message; when its text changes, what it said until now is kept as a version (the
    edit history apps show), and its hashtags follow (``values["tags"]``, or the text's for ours)."""
    values = dict(values)
    tags = values.pop("tags", None)
    if "content_html" in values or "content_text" in values:
        old = (await conn.execute(sa.select(
            messages.c.content_html, messages.c.content_text, messages.c.summary, messages.c.sensitive,
            messages.c.published_at, messages.c.edited_at, messages.c.deleted_at, messages.c.local).where(
            messages.c.id == message_id))).first()
        if tags is None and old is not None and old.local and "content_text" in values:
            from hub.text import find_hashtags

            tags = find_hashtags(values["content_text"] or "")
        if old is not None and old.deleted_at is None and (
                values.get("content_html", old.content_html) != old.content_html
                or values.get("content_text", old.content_text) != old.content_text):
            await conn.execute(sa.insert(message_versions).values(
                id=new_id(), message_id=message_id, content_html=old.content_html, content_text=old.content_text,
                summary=old.summary, sensitive=bool(old.sensitive), created_at=old.edited_at or old.published_at))
    if tags is not None:
        await set_tags(conn, message_id, tags)
    await conn.execute(sa.update(messages).where(messages.c.id == message_id).values(**values))


async def versions_of(conn: Conn, message_id: str) -> list[sa.Row]:
    """Earlier versions, oldest first."""
    stmt = (sa.select(message_versions).where(message_versions.c.message_id == message_id)
            .order_by(message_versions.c.created_at, message_versions.c.id))
    return list((await conn.execute(stmt)).all())


async def mark_message_deleted(conn: Conn, message_id: str) -> None:
    await conn.execute(
        sa.update(messages)
        .where(messages.c.id == message_id)
        .values(deleted_at=utcnow(), content_html="", content_text="", summary=None, raw=None)
    )
    await conn.execute(sa.delete(timeline).where(timeline.c.message_id == message_id))
    await conn.execute(sa.delete(message_versions).where(message_versions.c.message_id == message_id))
    await conn.execute(sa.delete(message_tags).where(message_tags.c.message_id == message_id))


async def delete_messages_of_actors(conn: Conn, actor_ids: list[str]) -> int:
    """Every message of these actors becomes a tombstone (with its timeline entries, earlier versions and
    hashtags gone); how many were still there."""
    ids = sa.select(messages.c.id).where(messages.c.actor_id.in_(actor_ids))
    await conn.execute(sa.delete(timeline).where(timeline.c.message_id.in_(ids)))
    await conn.execute(sa.delete(message_versions).where(message_versions.c.message_id.in_(ids)))
    await conn.execute(sa.delete(message_tags).where(message_tags.c.message_id.in_(ids)))
    result = await conn.execute(
        sa.update(messages)
        .where(messages.c.actor_id.in_(actor_ids), messages.c.deleted_at.is_(None))
        .values(deleted_at=utcnow(), content_html="", content_text="", summary=None, raw=None)
    )
    return result.rowcount or 0


async def list_messages_by_actor(
    conn: Conn,
    actor_id: str,
    *,
    visibilities: tuple[str, ...],
    limit: int,
    max_id: str | None = None,
    min_id: str | None = None,
) -> list[sa.Row]:
    stmt = (
        sa.select(messages)
        .where(
            messages.c.actor_id == actor_id,
            messages.c.deleted_at.is_(None),
            messages.c.visibility.in_(visibilities),
            *page_filter(messages.c.id, max_id=max_id, min_id=min_id),
        )
        .order_by(messages.c.id.desc())
        .limit(limit)
    )
    return list((await conn.execute(stmt)).all())


async def count_messages_by_actor(conn: Conn, actor_id: str, *, visibilities: tuple[str, ...]) -> int:
    stmt = sa.select(sa.func.count()).select_from(messages).where(
        messages.c.actor_id == actor_id,
        messages.c.deleted_at.is_(None),
        messages.c.visibility.in_(visibilities),
    )
    return int((await conn.execute(stmt)).scalar_one())


async def list_replies(
    conn: Conn, uri: str, *, visibilities: tuple[str, ...], limit: int, after_id: str | None = None
) -> list[sa.Row]:
    """Replies to ``uri``, oldest first."""
    stmt = (
        sa.select(messages.c.id, messages.c.uri)
        .where(
            messages.c.in_reply_to_uri == uri,
            messages.c.deleted_at.is_(None),
            messages.c.visibility.in_(visibilities),
            *page_filter(messages.c.id, min_id=after_id),
        )
        .order_by(messages.c.id)
        .limit(limit)
    )
    return list((await conn.execute(stmt)).all())


async def count_replies(conn: Conn, uri: str, *, visibilities: tuple[str, ...]) -> int:
    stmt = sa.select(sa.func.count()).select_from(messages).where(
        messages.c.in_reply_to_uri == uri,
        messages.c.deleted_at.is_(None),
        messages.c.visibility.in_(visibilities),
    )
    return int((await conn.execute(stmt)).scalar_one())


async def count_local_messages(conn: Conn) -> int:
    stmt = sa.select(sa.func.count()).select_from(messages).where(
        messages.c.local.is_(True), messages.c.deleted_at.is_(None)
    )
    return int((await conn.execute(stmt)).scalar_one())


async def count_active_local_authors(conn: Conn, since: dt.datetime) -> int:
    stmt = sa.select(sa.func.count(sa.distinct(messages.c.actor_id))).where(
        messages.c.local.is_(True), messages.c.published_at >= since
    )
    return int((await conn.execute(stmt)).scalar_one())


# --- conversations -------------------------------------------------------------------


async def get_conversation_by_uri(conn: Conn, uri: str) -> sa.Row | None:
    return (await conn.execute(sa.select(conversations).where(conversations.c.uri == uri))).first()


async def get_conversation_by_id(conn: Conn, conversation_id: str) -> sa.Row | None:
    stmt = sa.select(conversations).where(conversations.c.id == conversation_id)
    return (await conn.execute(stmt)).first()


async def ensure_conversation(
    conn: Conn, *, uri: str, owner_id: str | None, local: bool, conversation_id: str | None = None
) -> sa.Row:
    stmt = insert(conn, conversations).values(
        id=conversation_id or new_id(), uri=uri, owner_id=owner_id, local=local, created_at=utcnow()
    )
    await conn.execute(stmt.on_conflict_do_nothing())
    return await get_conversation_by_uri(conn, uri)


async def list_conversation_messages(
    conn: Conn, conversation_id: str, *, visibilities: tuple[str, ...], limit: int, after_id: str | None = None
) -> list[sa.Row]:
    stmt = (
        sa.select(messages.c.id, messages.c.uri)
        .where(
            messages.c.conversation_id == conversation_id,
            messages.c.deleted_at.is_(None),
            messages.c.visibility.in_(visibilities),
            *page_filter(messages.c.id, min_id=after_id),
        )
        .order_by(messages.c.id)
        .limit(limit)
    )
    return list((await conn.execute(stmt)).all())


async def count_conversation_messages(conn: Conn, conversation_id: str, *, visibilities: tuple[str, ...]) -> int:
    stmt = sa.select(sa.func.count()).select_from(messages).where(
        messages.c.conversation_id == conversation_id,
        messages.c.deleted_at.is_(None),
        messages.c.visibility.in_(visibilities),
    )
    return int((await conn.execute(stmt)).scalar_one())


# --- timeline ------------------------------------------------------------------------


async def put_timeline_entries(
    conn: Conn, message_id: str, actor_ids: list[str], *, reason: str, via_actor_id: str | None = None
) -> int:
    now = utcnow()
    rows = [
        {
            "id": new_id(),
            "actor_id": actor_id,
            "message_id": message_id,
            "reason": reason,
            "via_actor_id": via_actor_id,
            "created_at": now,
        }
        for actor_id in dict.fromkeys(actor_ids)
    ]
    return len(await insert_ignore(conn, timeline, rows, returning=timeline.c.id))


async def delete_timeline_entries(conn: Conn, message_id: str, *, via_actor_id: str, reason: str) -> None:
    await conn.execute(
        sa.delete(timeline).where(
            timeline.c.message_id == message_id, timeline.c.via_actor_id == via_actor_id, timeline.c.reason == reason
        )
    )


async def list_timeline(
    conn: Conn, actor_id: str, *, limit: int, max_id: str | None = None
) -> list[sa.Row]:
    """Messages the actor received, newest first, with each author's URI."""
    author = actors.alias("author")
    via = actors.alias("via")
    conv = conversations.alias("conv")
    stmt = (
        sa.select(
            timeline.c.id.label("entry_id"),
            timeline.c.reason,
            via.c.uri.label("via_uri"),
            messages,
            author.c.uri.label("author_uri"),
            conv.c.uri.label("context_uri"),
        )
        .join(messages, messages.c.id == timeline.c.message_id)
        .join(author, author.c.id == messages.c.actor_id)
        .outerjoin(via, via.c.id == timeline.c.via_actor_id)
        .outerjoin(conv, conv.c.id == messages.c.conversation_id)
        .where(
            timeline.c.actor_id == actor_id,
            messages.c.deleted_at.is_(None),
            *page_filter(timeline.c.id, max_id=max_id),
        )
        .order_by(timeline.c.id.desc())
        .limit(limit)
    )
    return list((await conn.execute(stmt)).all())
