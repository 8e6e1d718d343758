"""Conversations: participants, aliases, each local actor's private state
(status, assignee, labels, reads, notes), listing and search."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from hub.ids import new_id
from hub.store.base import Conn, insert, utcnow
from hub.store.schema import (
    accounts,
    actors,
    conversation_aliases,
    conversation_labels,
    conversation_participants,
    conversation_reads,
    conversation_states,
    conversations,
    messages,
    private_notes,
)

STATUSES = ("open", "pending", "snoozed", "resolved")

# --- conversations and aliases ------------------------------------------------------------


async def get_conversation_by_any_uri(conn: Conn, uri: str) -> sa.Row | None:
    """The conversation whose URI, or one of whose aliases, is ``uri``."""
    row = (await conn.execute(sa.select(conversations).where(conversations.c.uri == uri))).first()
    if row is not None:
        return row
    stmt = (
        sa.select(conversations)
        .join(conversation_aliases, conversation_aliases.c.conversation_id == conversations.c.id)
        .where(conversation_aliases.c.uri == uri)
    )
    return (await conn.execute(stmt)).first()


async def put_alias(conn: Conn, uri: str, conversation_id: str) -> None:
    stmt = insert(conn, conversation_aliases).values(uri=uri, conversation_id=conversation_id, created_at=utcnow())
    await conn.execute(stmt.on_conflict_do_nothing())


async def update_conversation(conn: Conn, conversation_id: str, values: dict) -> None:
    await conn.execute(sa.update(conversations).where(conversations.c.id == conversation_id).values(**values))


async def repoint_conversation(conn: Conn, conversation_id: str, *, uri: str, owner_id: str | None, local: bool) -> None:
    """Give a conversation its canonical URI (its owner's hub adopted it); the old one stays an alias."""
    row = (await conn.execute(sa.select(conversations).where(conversations.c.id == conversation_id))).first()
    if row is None or row.uri == uri:
        return
    await put_alias(conn, row.uri, conversation_id)
    await conn.execute(
        sa.update(conversations)
        .where(conversations.c.id == conversation_id)
        .values(uri=uri, owner_id=owner_id, local=local)
    )


# --- participants ------------------------------------------------------------------------------


async def put_participant(
    conn: Conn, conversation_id: str, actor_id: str, *, role: str = "participant", added_by_id: str | None = None
) -> bool:
    stmt = insert(conn, conversation_participants).values(
        id=new_id(), conversation_id=conversation_id, actor_id=actor_id, role=role, added_by_id=added_by_id,
        created_at=utcnow(),
    )
    return (await conn.execute(stmt.on_conflict_do_nothing())).rowcount == 1


async def latest_published(conn: Conn, conversation_id: str) -> dt.datetime | None:
    return (await message_mark(conn, conversation_id))[0]


async def message_mark(conn: Conn, conversation_id: str) -> tuple[dt.datetime | None, int]:
    """``(newest published time, number of messages)``: changes whenever a message comes, goes or changes order."""
    stmt = sa.select(sa.func.max(messages.c.published_at), sa.func.count()).where(
        messages.c.conversation_id == conversation_id)
    latest, count = (await conn.execute(stmt)).one()
    return latest, int(count)


async def set_role(conn: Conn, conversation_id: str, actor_id: str, role: str) -> None:
    await conn.execute(sa.update(conversation_participants).where(
        conversation_participants.c.conversation_id == conversation_id, conversation_participants.c.actor_id == actor_id,
    ).values(role=role))


async def list_participants(conn: Conn, conversation_id: str) -> list[sa.Row]:
    """Participants with what delivery and display need, owner first."""
    stmt = (
        sa.select(
            conversation_participants.c.role,
            conversation_participants.c.created_at.label("joined_at"),
            actors.c.id, actors.c.uri, actors.c.type, actors.c.local, actors.c.username, actors.c.domain,
            actors.c.name, actors.c.inbox_uri, actors.c.shared_inbox_uri, actors.c.implements, actors.c.url,
            actors.c.bridge_network,
        )
        .join(actors, actors.c.id == conversation_participants.c.actor_id)
        .where(conversation_participants.c.conversation_id == conversation_id)
        .order_by(sa.case((conversation_participants.c.role == "owner", 0), else_=1), conversation_participants.c.created_at)
    )
    return list((await conn.execute(stmt)).all())


async def _grouped(conn: Conn, keys: list[str], stmt) -> dict[str, list]:
    """``{key: [value, ...]}`` from a two-column query, every key present."""
    out: dict[str, list] = {k: [] for k in keys}
    if keys:
        for key, value in await conn.execute(stmt):
            out[key].append(value)
    return out


async def participant_uris(conn: Conn, conversation_ids: list[str]) -> dict[str, list[str]]:
    """Participants' actor URIs of many conversations at once, owner first."""
    stmt = (
        sa.select(conversation_participants.c.conversation_id, actors.c.uri)
        .join(actors, actors.c.id == conversation_participants.c.actor_id)
        .where(conversation_participants.c.conversation_id.in_(conversation_ids))
        .order_by(sa.case((conversation_participants.c.role == "owner", 0), else_=1), conversation_participants.c.created_at)
    )
    return await _grouped(conn, conversation_ids, stmt)


async def is_participant(conn: Conn, conversation_id: str, actor_id: str) -> bool:
    stmt = sa.select(conversation_participants.c.id).where(
        conversation_participants.c.conversation_id == conversation_id, conversation_participants.c.actor_id == actor_id
    )
    return (await conn.execute(stmt)).first() is not None


# --- per-actor state -------------------------------------------------------------------------


async def get_state(conn: Conn, conversation_id: str, actor_id: str) -> sa.Row | None:
    stmt = sa.select(conversation_states).where(
        conversation_states.c.conversation_id == conversation_id, conversation_states.c.actor_id == actor_id
    )
    return (await conn.execute(stmt)).first()


async def ensure_state(conn: Conn, conversation_id: str, actor_id: str, *, at: dt.datetime | None = None) -> sa.Row:
    """A local actor's state of a conversation; a new one is ``open``."""
    now = utcnow()
    stmt = insert(conn, conversation_states).values(
        id=new_id(), conversation_id=conversation_id, actor_id=actor_id, status="open", priority=0,
        last_message_at=at or now, created_at=now, updated_at=now,
    )
    await conn.execute(stmt.on_conflict_do_nothing())
    return await get_state(conn, conversation_id, actor_id)


async def update_state(conn: Conn, state_id: str, values: dict) -> None:
    await conn.execute(
        sa.update(conversation_states).where(conversation_states.c.id == state_id).values(updated_at=utcnow(), **values)
    )


async def list_states_of_conversation(conn: Conn, conversation_id: str) -> list[sa.Row]:
    stmt = sa.select(conversation_states).where(conversation_states.c.conversation_id == conversation_id)
    return list((await conn.execute(stmt)).all())


async def due_snoozed(conn: Conn, now: dt.datetime, *, actor_id: str | None = None, limit: int = 500) -> list[sa.Row]:
    """Snoozed states whose time has come (of one actor, or of everyone)."""
    stmt = (
        sa.select(conversation_states.c.id, conversation_states.c.actor_id, conversation_states.c.conversation_id,
                  conversations.c.uri)
        .join(conversations, conversations.c.id == conversation_states.c.conversation_id)
        .where(conversation_states.c.status == "snoozed", conversation_states.c.snoozed_until <= now)
        .order_by(conversation_states.c.snoozed_until)
        .limit(limit)
    )
    if actor_id is not None:
        stmt = stmt.where(conversation_states.c.actor_id == actor_id)
    return list((await conn.execute(stmt)).all())


async def wake_states(conn: Conn, state_ids: list[str], now: dt.datetime) -> None:
    await conn.execute(
        sa.update(conversation_states)
        .where(conversation_states.c.id.in_(state_ids), conversation_states.c.status == "snoozed")
        .values(status="open", snoozed_until=None, updated_at=now)
    )


# --- labels, reads, notes ------------------------------------------------------------------------


async def add_labels(conn: Conn, state_id: str, labels: list[str]) -> None:
    for label in labels:
        stmt = insert(conn, conversation_labels).values(state_id=state_id, label=label)
        await conn.execute(stmt.on_conflict_do_nothing())


async def remove_labels(conn: Conn, state_id: str, labels: list[str]) -> None:
    await conn.execute(
        sa.delete(conversation_labels).where(
            conversation_labels.c.state_id == state_id, conversation_labels.c.label.in_(labels)
        )
    )


async def labels_of(conn: Conn, state_ids: list[str]) -> dict[str, list[str]]:
    stmt = (
        sa.select(conversation_labels.c.state_id, conversation_labels.c.label)
        .where(conversation_labels.c.state_id.in_(state_ids))
        .order_by(conversation_labels.c.label)
    )
    return await _grouped(conn, state_ids, stmt)


async def mark_read(conn: Conn, state_id: str, account_id: str, at: dt.datetime) -> None:
    stmt = insert(conn, conversation_reads).values(state_id=state_id, account_id=account_id, read_at=at)
    await conn.execute(stmt.on_conflict_do_update(index_elements=["state_id", "account_id"], set_={"read_at": at}))


async def unread_counts(conn: Conn, states: list[sa.Row], account_id: str | None) -> dict[str, int]:
    """Messages from others since the account last read each conversation (one query)."""
    if not states:
        return {}
    read = (
        sa.select(conversation_reads.c.state_id, conversation_reads.c.read_at)
        .where(conversation_reads.c.account_id == (account_id or ""))
        .subquery()
    )
    stmt = (
        sa.select(conversation_states.c.id, sa.func.count(messages.c.id))
        .select_from(conversation_states)
        .join(messages, messages.c.conversation_id == conversation_states.c.conversation_id)
        .outerjoin(read, read.c.state_id == conversation_states.c.id)
        .where(
            conversation_states.c.id.in_([s.id for s in states]),
            messages.c.actor_id != conversation_states.c.actor_id,
            messages.c.deleted_at.is_(None),
            messages.c.removed_at.is_(None),
            sa.or_(read.c.read_at.is_(None), messages.c.published_at > read.c.read_at),
        )
        .group_by(conversation_states.c.id)
    )
    counts = {state_id: int(n) for state_id, n in await conn.execute(stmt)}
    return {s.id: counts.get(s.id, 0) for s in states}


async def put_note(conn: Conn, *, conversation_id: str, actor_id: str, account_id: str | None, text: str) -> str:
    note_id = new_id()
    await conn.execute(
        sa.insert(private_notes).values(
            id=note_id, conversation_id=conversation_id, actor_id=actor_id, account_id=account_id, text=text,
            created_at=utcnow(),
        )
    )
    return note_id


async def list_notes(conn: Conn, conversation_id: str, actor_id: str) -> list[sa.Row]:
    stmt = (
        sa.select(private_notes, accounts.c.username.label("author"))
        .outerjoin(accounts, accounts.c.id == private_notes.c.account_id)
        .where(private_notes.c.conversation_id == conversation_id, private_notes.c.actor_id == actor_id)
        .order_by(private_notes.c.id)
    )
    return list((await conn.execute(stmt)).all())


# --- messages of a conversation -----------------------------------------------------------------


async def list_messages(conn: Conn, conversation_id: str, *, include_removed: bool = False, limit: int = 500) -> list[sa.Row]:
    """The conversation's messages, oldest first, with their authors."""
    stmt = (
        sa.select(
            messages,
            actors.c.uri.label("author_uri"), actors.c.name.label("author_name"),
            actors.c.username.label("author_username"), actors.c.domain.label("author_domain"),
            actors.c.local.label("author_local"), actors.c.type.label("author_type"),
        )
        .join(actors, actors.c.id == messages.c.actor_id)
        .where(messages.c.conversation_id == conversation_id, messages.c.deleted_at.is_(None))
        .order_by(messages.c.published_at, messages.c.id)
        .limit(limit)
    )
    if not include_removed:
        stmt = stmt.where(messages.c.removed_at.is_(None))
    return list((await conn.execute(stmt)).all())


# --- the inbox ----------------------------------------------------------------------------------


SEARCH_WALK_THRESHOLD = 5000


async def _search_condition(conn: Conn, query: str):
    """Conversations with a message matching ``query``.

    SQLite uses FTS5 with one of two plans, chosen by how common the words
    are: for rare words (an order number, a name) the matching conversations
    are collected first and then sorted; for common ones the inbox is walked
    in order and each conversation's messages are checked against the match
    list, so a page needs only as many conversations as it shows. Other
    databases fall back to a case-insensitive substring match here until they
    get their own full-text index: each word a case-insensitive substring of
    one message.
    """
    # Control characters (NUL among them) are never part of a word.
    query = "".join(c if c.isprintable() else " " for c in query)
    if conn.dialect.name == "sqlite":
        # Each word as a quoted prefix term: user input never becomes FTS syntax.
        terms = [w.replace('"', '""') for w in query.split() if w.strip()]
        match = " ".join(f'"{t}"*' for t in terms) or '""'
        count = (await conn.execute(
            sa.text("SELECT count(*) FROM (SELECT rowid FROM messages_fts WHERE messages_fts MATCH :match LIMIT :cap)"),
            {"match": match, "cap": SEARCH_WALK_THRESHOLD},
        )).scalar_one()
        if count < SEARCH_WALK_THRESHOLD:
            hits = sa.text("SELECT m.conversation_id FROM messages_fts JOIN messages m ON m.rowid = messages_fts.rowid "
                           "WHERE messages_fts MATCH :match").bindparams(match=match)
            return conversation_states.c.conversation_id.in_(hits.columns(sa.column("conversation_id")))
        # "+m.rowid" keeps the planner from driving the loop from the match list.
        return sa.text(
            "EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = conversation_states.conversation_id "
            "AND +m.rowid IN (SELECT rowid FROM messages_fts WHERE messages_fts MATCH :match))"
        ).bindparams(match=match)
    words = query.split()
    if not words:
        return sa.false()
    hits = sa.select(messages.c.conversation_id).where(*(
        messages.c.content_text.ilike("%" + w.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%", escape="\\")
        for w in words
    ))
    return conversation_states.c.conversation_id.in_(hits)


async def list_inbox(
    conn: Conn,
    actor_id: str,
    *,
    status: str | None = None,
    assignee_id: str | None = None,
    unassigned: bool = False,
    label: str | None = None,
    participant_id: str | None = None,
    network: str | None = None,
    query: str | None = None,
    before: tuple[dt.datetime, str] | None = None,
    conversation_id: str | None = None,
    exclude_status: str | None = None,
    limit: int = 20,
) -> list[sa.Row]:
    """One actor's conversations, most recent activity first, keyset-paginated
    by ``(last_message_at, id)``."""
    owner = actors.alias("owner")
    stmt = (
        sa.select(
            conversation_states,
            conversations.c.uri, conversations.c.subject, conversations.c.closed_at, conversations.c.local.label("hosted"),
            conversations.c.visibility, owner.c.uri.label("owner_uri"),
        )
        .join(conversations, conversations.c.id == conversation_states.c.conversation_id)
        .outerjoin(owner, owner.c.id == conversations.c.owner_id)
        .where(conversation_states.c.actor_id == actor_id)
    )
    if conversation_id:
        stmt = stmt.where(conversation_states.c.conversation_id == conversation_id)
    if status:
        stmt = stmt.where(conversation_states.c.status == status)
    if exclude_status:
        stmt = stmt.where(conversation_states.c.status != exclude_status)
    if assignee_id:
        stmt = stmt.where(conversation_states.c.assignee_id == assignee_id)
    if unassigned:
        stmt = stmt.where(conversation_states.c.assignee_id.is_(None))
    if label:
        # EXISTS rather than IN: the inbox is walked in order and stops at a full page.
        stmt = stmt.where(
            sa.exists().where(conversation_labels.c.state_id == conversation_states.c.id, conversation_labels.c.label == label)
        )
    if participant_id:
        stmt = stmt.where(
            sa.exists().where(
                conversation_participants.c.conversation_id == conversation_states.c.conversation_id,
                conversation_participants.c.actor_id == participant_id,
            )
        )
    if network:
        stmt = stmt.where(
            sa.exists().where(messages.c.conversation_id == conversation_states.c.conversation_id, messages.c.network == network)
        )
    if query:
        stmt = stmt.where(await _search_condition(conn, query))
    if before is not None:
        at, state_id = before
        stmt = stmt.where(
            sa.or_(
                conversation_states.c.last_message_at < at,
                sa.and_(conversation_states.c.last_message_at == at, conversation_states.c.id < state_id),
            )
        )
    stmt = stmt.order_by(conversation_states.c.last_message_at.desc(), conversation_states.c.id.desc()).limit(limit)
    return list((await conn.execute(stmt)).all())


async def last_messages(conn: Conn, message_ids: list[str]) -> dict[str, sa.Row]:
    if not message_ids:
        return {}
    stmt = (
        sa.select(messages.c.id, messages.c.uri, messages.c.content_text, messages.c.published_at,
                  actors.c.uri.label("author_uri"))
        .join(actors, actors.c.id == messages.c.actor_id)
        .where(messages.c.id.in_(message_ids))
    )
    return {r.id: r for r in await conn.execute(stmt)}


async def replace_participant(conn: Conn, conversation_id: str, old_actor_id: str, new_actor_id: str) -> None:
    """``new_actor_id`` takes ``old_actor_id``'s place (and role) in a conversation."""
    stmt = sa.select(conversation_participants.c.role).where(
        conversation_participants.c.conversation_id == conversation_id, conversation_participants.c.actor_id == old_actor_id
    )
    role = (await conn.execute(stmt)).scalar()
    if role is None:
        return
    await conn.execute(sa.delete(conversation_participants).where(
        conversation_participants.c.conversation_id == conversation_id, conversation_participants.c.actor_id == old_actor_id
    ))
    await put_participant(conn, conversation_id, new_actor_id, role=role)
    if role == "owner":
        await conn.execute(sa.update(conversation_participants).where(
            conversation_participants.c.conversation_id == conversation_id,
            conversation_participants.c.actor_id == new_actor_id,
        ).values(role="owner"))


async def list_public_conversations(conn: Conn, *, limit: int = 20) -> list[sa.Row]:
    """Conversations their owner here made public, most recent activity first."""
    stmt = (
        sa.select(conversations, actors.c.username.label("owner_username"), actors.c.name.label("owner_name"))
        .join(actors, actors.c.id == conversations.c.owner_id)
        .where(conversations.c.visibility == "public", conversations.c.local.is_(True),
               conversations.c.last_message_at.is_not(None))
        .order_by(conversations.c.last_message_at.desc())
        .limit(limit)
    )
    return list((await conn.execute(stmt)).all())
