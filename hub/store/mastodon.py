"""Storage of the Mastodon-compatible client API: OAuth apps, codes and
tokens (by SHA-256 only), notifications, mutes, media uploads, idempotency
keys, timeline markers and push subscriptions."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from hub.ids import new_id
from hub.store.base import Conn, insert, insert_ignore, page_filter, utcnow
from hub.store.schema import (
    accounts,
    actors,
    bookmarks,
    conversation_participants,
    conversation_states,
    conversations,
    follows,
    idempotency_keys,
    markers,
    media_uploads,
    messages,
    mutes,
    notifications,
    oauth_apps,
    oauth_codes,
    oauth_tokens,
    push_subscriptions,
    reactions,
    timeline,
)

# --- apps, codes, tokens -----------------------------------------------------------------------


async def put_app(conn: Conn, *, client_id: str, secret_hash: str, name: str, website: str | None,
                  redirect_uris: list[str], scopes: str) -> str:
    app_id = new_id()
    await conn.execute(sa.insert(oauth_apps).values(
        id=app_id, client_id=client_id, client_secret_hash=secret_hash, name=name, website=website,
        redirect_uris=redirect_uris, scopes=scopes, created_at=utcnow()))
    return app_id


async def get_app_by_client_id(conn: Conn, client_id: str) -> sa.Row | None:
    return (await conn.execute(sa.select(oauth_apps).where(oauth_apps.c.client_id == client_id))).first()


async def get_app(conn: Conn, app_id: str) -> sa.Row | None:
    return (await conn.execute(sa.select(oauth_apps).where(oauth_apps.c.id == app_id))).first()


async def put_code(conn: Conn, values: dict) -> None:
    await conn.execute(sa.insert(oauth_codes).values(created_at=utcnow(), **values))


async def take_code(conn: Conn, code_hash: str) -> sa.Row | None:
    """The code, marked used; None if unknown, used or expired (a code is good once: presented again, the
    tokens it gave are revoked)."""
    now = utcnow()
    result = await conn.execute(
        sa.update(oauth_codes)
        .where(oauth_codes.c.code_hash == code_hash, oauth_codes.c.used_at.is_(None), oauth_codes.c.expires_at > now)
        .values(used_at=now)
    )
    if result.rowcount != 1:
        used = (await conn.execute(sa.select(oauth_codes.c.used_at).where(oauth_codes.c.code_hash == code_hash))).scalar()
        if used is not None:
            # a code presented twice was seen by someone else: what it gave is taken back (RFC 6749 4.1.2)
            await conn.execute(sa.update(oauth_tokens).where(oauth_tokens.c.code_hash == code_hash,
                                                             oauth_tokens.c.revoked_at.is_(None)).values(revoked_at=now))
        return None
    return (await conn.execute(sa.select(oauth_codes).where(oauth_codes.c.code_hash == code_hash))).first()


async def prune_codes(conn: Conn) -> None:
    await conn.execute(sa.delete(oauth_codes).where(oauth_codes.c.expires_at < utcnow() - dt.timedelta(days=1)))


async def put_token(conn: Conn, *, token_hash: str, refresh_hash: str | None, app_id: str, account_id: str | None,
                    actor_id: str | None, scopes: str, code_hash: str | None = None) -> str:
    token_id = new_id()
    await conn.execute(sa.insert(oauth_tokens).values(
        id=token_id, token_hash=token_hash, refresh_hash=refresh_hash, app_id=app_id, account_id=account_id,
        actor_id=actor_id, scopes=scopes, created_at=utcnow(), code_hash=code_hash))
    return token_id


def _token_select():
    return (
        sa.select(oauth_tokens, oauth_apps.c.name.label("app_name"), oauth_apps.c.website.label("app_website"),
                  oauth_apps.c.client_id)
        .join(oauth_apps, oauth_apps.c.id == oauth_tokens.c.app_id)
        .where(oauth_tokens.c.revoked_at.is_(None))
    )


async def get_token(conn: Conn, token_hash: str) -> sa.Row | None:
    return (await conn.execute(_token_select().where(oauth_tokens.c.token_hash == token_hash))).first()


async def get_token_by_refresh(conn: Conn, refresh_hash: str) -> sa.Row | None:
    return (await conn.execute(_token_select().where(oauth_tokens.c.refresh_hash == refresh_hash))).first()


async def get_token_by_id(conn: Conn, token_id: str) -> sa.Row | None:
    return (await conn.execute(_token_select().where(oauth_tokens.c.id == token_id))).first()


async def touch_token(conn: Conn, token_id: str) -> None:
    await conn.execute(sa.update(oauth_tokens).where(oauth_tokens.c.id == token_id).values(last_used_at=utcnow()))


async def revoke_token(conn: Conn, token_id: str) -> None:
    await conn.execute(sa.update(oauth_tokens).where(oauth_tokens.c.id == token_id).values(revoked_at=utcnow()))
    await conn.execute(sa.delete(push_subscriptions).where(push_subscriptions.c.token_id == token_id))


async def revoke_tokens_of_account(conn: Conn, account_id: str, *, actor_id: str | None = None) -> int:
    """Revoke a login's tokens (for one actor, or all); their push subscriptions (and sealed copies) go too."""
    conds = [oauth_tokens.c.account_id == account_id, oauth_tokens.c.revoked_at.is_(None)]
    if actor_id is not None:
        conds.append(oauth_tokens.c.actor_id == actor_id)
    ids = list((await conn.execute(sa.select(oauth_tokens.c.id).where(*conds))).scalars())
    if not ids:
        return 0
    await conn.execute(sa.update(oauth_tokens).where(oauth_tokens.c.id.in_(ids)).values(revoked_at=utcnow()))
    await conn.execute(sa.delete(push_subscriptions).where(push_subscriptions.c.token_id.in_(ids)))
    return len(ids)


async def list_tokens_of_account(conn: Conn, account_id: str) -> list[sa.Row]:
    stmt = (_token_select().add_columns(actors.c.username.label("actor_username"))
            .outerjoin(actors, actors.c.id == oauth_tokens.c.actor_id)
            .where(oauth_tokens.c.account_id == account_id).order_by(oauth_tokens.c.id.desc()))
    return list((await conn.execute(stmt)).all())


# --- notifications -----------------------------------------------------------------------------

NOTIFICATION_TYPES = ("mention", "status", "reblog", "follow", "follow_request", "favourite", "poll", "update",
                      "admin.sign_up", "admin.report")


async def add_notifications(conn: Conn, recipient_ids: list[str], type_: str, from_actor_id: str,
                            message_id: str | None = None) -> list[str]:
    """Notify local actors (never the one who caused it, nor one who muted it). Idempotent per event."""
    ids = [i for i in dict.fromkeys(recipient_ids) if i != from_actor_id]
    if not ids:
        return []
    muted = set((await conn.execute(
        sa.select(mutes.c.actor_id).where(mutes.c.target_id == from_actor_id, mutes.c.actor_id.in_(ids),
                                          mutes.c.notifications.is_(True))
    )).scalars())
    local = set((await conn.execute(
        sa.select(actors.c.id).where(actors.c.id.in_(ids), actors.c.local.is_(True), actors.c.bridge_network.is_(None))
    )).scalars())
    now = utcnow()
    rows = [{"id": new_id(), "actor_id": i, "type": type_, "from_actor_id": from_actor_id, "message_id": message_id,
             "created_at": now} for i in ids if i in local and i not in muted]
    if message_id is None:  # NULLs never collide in a unique index: look first
        have = set((await conn.execute(sa.select(notifications.c.actor_id).where(
            notifications.c.actor_id.in_([r["actor_id"] for r in rows] or [""]), notifications.c.type == type_,
            notifications.c.from_actor_id == from_actor_id, notifications.c.message_id.is_(None)))).scalars())
        rows = [r for r in rows if r["actor_id"] not in have]
    made = await insert_ignore(conn, notifications, rows, returning=notifications.c.id)
    from hub.mastodon import push  # Web Push to the clients subscribed for them

    await push.queue_for(conn, made)
    return made


async def list_notifications(conn: Conn, actor_id: str, *, types: list[str] | None = None,
                             exclude: list[str] | None = None, account_id: str | None = None,
                             max_id: str | None = None, since_id: str | None = None, min_id: str | None = None,
                             limit: int = 40) -> list[sa.Row]:
    conds = [notifications.c.actor_id == actor_id]
    if types:
        conds.append(notifications.c.type.in_(types))
    if exclude:
        conds.append(notifications.c.type.not_in(exclude))
    if account_id:
        conds.append(notifications.c.from_actor_id == account_id)
    conds += page_filter(notifications.c.id, max_id=max_id, min_id=min_id or since_id)
    # a notification about a deleted message goes with it
    conds.append(sa.or_(notifications.c.message_id.is_(None), notifications.c.message_id.in_(
        sa.select(messages.c.id).where(messages.c.deleted_at.is_(None), messages.c.removed_at.is_(None)))))
    order = notifications.c.id.asc() if min_id else notifications.c.id.desc()
    rows = list((await conn.execute(sa.select(notifications).where(*conds).order_by(order).limit(limit))).all())
    return rows[::-1] if min_id else rows


async def get_notification(conn: Conn, actor_id: str, notification_id: str) -> sa.Row | None:
    """By id, or by the number a push payload names it with (its id's millisecond time part)."""
    if notification_id.isdigit() and len(notification_id) < 16:
        from hub.ids import floor_id_ms

        ms = int(notification_id)
        return (await conn.execute(sa.select(notifications).where(
            notifications.c.actor_id == actor_id, notifications.c.id >= floor_id_ms(ms),
            notifications.c.id < floor_id_ms(ms + 1)).order_by(notifications.c.id).limit(1))).first()
    return (await conn.execute(sa.select(notifications).where(
        notifications.c.id == notification_id, notifications.c.actor_id == actor_id))).first()


async def delete_notifications(conn: Conn, actor_id: str, notification_id: str | None = None) -> int:
    conds = [notifications.c.actor_id == actor_id]
    if notification_id is not None:
        conds.append(notifications.c.id == notification_id)
    return (await conn.execute(sa.delete(notifications).where(*conds))).rowcount


async def latest_notification_id(conn: Conn, actor_id: str) -> str | None:
    return (await conn.execute(sa.select(sa.func.max(notifications.c.id)).where(
        notifications.c.actor_id == actor_id))).scalar()


async def count_notifications_after(conn: Conn, actor_id: str, after_id: str | None) -> int:
    conds = [notifications.c.actor_id == actor_id]
    if after_id:
        conds.append(notifications.c.id > after_id)
    return int((await conn.execute(sa.select(sa.func.count()).select_from(notifications).where(*conds))).scalar_one())


# --- mutes -------------------------------------------------------------------------------------


async def put_mute(conn: Conn, actor_id: str, target_id: str, *, notifications_too: bool,
                   expires_at: dt.datetime | None) -> None:
    await conn.execute(sa.delete(mutes).where(mutes.c.actor_id == actor_id, mutes.c.target_id == target_id))
    await conn.execute(sa.insert(mutes).values(actor_id=actor_id, target_id=target_id, notifications=notifications_too,
                                               expires_at=expires_at, created_at=utcnow()))


async def delete_mute(conn: Conn, actor_id: str, target_id: str) -> None:
    await conn.execute(sa.delete(mutes).where(mutes.c.actor_id == actor_id, mutes.c.target_id == target_id))


async def prune_mutes(conn: Conn) -> None:
    await conn.execute(sa.delete(mutes).where(mutes.c.expires_at.is_not(None), mutes.c.expires_at < utcnow()))


async def get_mute(conn: Conn, actor_id: str, target_id: str) -> sa.Row | None:
    return (await conn.execute(sa.select(mutes).where(mutes.c.actor_id == actor_id, mutes.c.target_id == target_id,
                                                      sa.or_(mutes.c.expires_at.is_(None),
                                                             mutes.c.expires_at > utcnow())))).first()


async def list_muted(conn: Conn, actor_id: str) -> list[sa.Row]:
    stmt = sa.select(mutes).where(mutes.c.actor_id == actor_id, sa.or_(
        mutes.c.expires_at.is_(None), mutes.c.expires_at > utcnow())).order_by(mutes.c.created_at.desc())
    return list((await conn.execute(stmt)).all())


def _not_muted(actor_id: str):
    return messages.c.actor_id.not_in(sa.select(mutes.c.target_id).where(
        mutes.c.actor_id == actor_id, sa.or_(mutes.c.expires_at.is_(None), mutes.c.expires_at > utcnow())))


# --- timelines ---------------------------------------------------------------------------------


def _paged(stmt, *, max_id, since_id, min_id, limit):
    stmt = stmt.where(*page_filter(messages.c.id, max_id=max_id, min_id=min_id or since_id))
    order = messages.c.id.asc() if min_id else messages.c.id.desc()
    return stmt.order_by(order).limit(limit)


async def _rows(conn: Conn, stmt, min_id) -> list[sa.Row]:
    rows = list((await conn.execute(stmt)).all())
    return rows[::-1] if min_id else rows


def _live():
    return [messages.c.deleted_at.is_(None), messages.c.removed_at.is_(None)]


async def home_timeline(conn: Conn, actor_id: str, *, max_id=None, since_id=None, min_id=None,
                        limit=20) -> list[sa.Row]:
    """What the actor received (from people it follows, mentions), what it wrote, and every
    message of the conversations it takes part in."""
    in_timeline = sa.select(timeline.c.message_id).where(timeline.c.actor_id == actor_id)
    in_conversations = sa.select(conversation_states.c.conversation_id).where(conversation_states.c.actor_id == actor_id)
    # what the accounts it follows wrote, also before the follow (Mastodon merges them into the feed too)
    followed = sa.select(follows.c.followee_id).where(follows.c.follower_id == actor_id, follows.c.state == "accepted")
    from hub.store.schema import followed_tags, message_tags

    tagged = sa.select(message_tags.c.message_id).join(
        followed_tags, followed_tags.c.tag == message_tags.c.tag).where(followed_tags.c.actor_id == actor_id)
    stmt = sa.select(messages).where(
        *_live(), _not_muted(actor_id),
        sa.or_(messages.c.actor_id == actor_id, messages.c.id.in_(in_timeline),
               messages.c.conversation_id.in_(in_conversations),
               sa.and_(messages.c.actor_id.in_(followed),
                       messages.c.visibility.in_(("public", "unlisted", "followers"))),
               sa.and_(messages.c.visibility == "public", messages.c.network == "activitypub",
                       messages.c.id.in_(tagged), _not_kept_private())),  # the hashtags it follows
    )
    return await _rows(conn, _paged(stmt, max_id=max_id, since_id=since_id, min_id=min_id, limit=limit), min_id)


async def public_timeline(conn: Conn, *, local: bool | None, viewer_id: str | None, only_media: bool = False,
                          max_id=None, since_id=None, min_id=None, limit=20, tag: str | None = None) -> list[sa.Row]:
    conds = [*_live(), messages.c.visibility == "public", messages.c.network == "activitypub", _not_kept_private()]
    if tag is not None:  # the hashtag timeline
        from hub.store.schema import message_tags

        conds.append(messages.c.id.in_(sa.select(message_tags.c.message_id).where(message_tags.c.tag == tag)))
    if local is not None:
        conds.append(messages.c.local.is_(local))
    if viewer_id:
        conds.append(_not_muted(viewer_id))
    if only_media:
        from hub.store.schema import attachments

        conds.append(messages.c.id.in_(sa.select(attachments.c.message_id)))
    stmt = sa.select(messages).where(*conds)
    return await _rows(conn, _paged(stmt, max_id=max_id, since_id=since_id, min_id=min_id, limit=limit), min_id)


def _not_kept_private():
    """Not a message of a customer's conversation that is private now."""
    return sa.or_(messages.c.conversation_id.is_(None), messages.c.conversation_id.not_in(
        sa.select(conversations.c.id).where(conversations.c.visibility == "direct")))


def visible_to(viewer_id: str | None, viewer_uri: str | None):
    """The condition under which a message may be shown to a viewer (None: anyone).

    A customer's conversation decides for its messages: published, anyone may read them; private
    (``direct``), only its participants, whatever visibility a message had when it was written."""
    published = messages.c.conversation_id.in_(sa.select(conversations.c.id).where(
        conversations.c.visibility == "public"))
    open_ = sa.or_(published, sa.and_(messages.c.visibility.in_(("public", "unlisted")), _not_kept_private()))
    if viewer_id is None:
        return open_
    follows_author = messages.c.actor_id.in_(sa.select(follows.c.followee_id).where(
        follows.c.follower_id == viewer_id, follows.c.state == "accepted"))
    participant = messages.c.conversation_id.in_(sa.select(conversation_participants.c.conversation_id).where(
        conversation_participants.c.actor_id == viewer_id))
    received = messages.c.id.in_(sa.select(timeline.c.message_id).where(timeline.c.actor_id == viewer_id))
    return sa.or_(open_, messages.c.actor_id == viewer_id,
                  sa.and_(messages.c.visibility == "followers", follows_author), participant, received)


async def account_statuses(conn: Conn, author_id: str, *, viewer_id: str | None, viewer_uri: str | None,
                           exclude_replies: bool = False, only_media: bool = False, max_id=None, since_id=None,
                           min_id=None, limit=20) -> list[sa.Row]:
    conds = [*_live(), messages.c.actor_id == author_id, visible_to(viewer_id, viewer_uri)]
    if exclude_replies:
        conds.append(messages.c.in_reply_to_uri.is_(None))
    if only_media:
        from hub.store.schema import attachments

        conds.append(messages.c.id.in_(sa.select(attachments.c.message_id)))
    stmt = sa.select(messages).where(*conds)
    return await _rows(conn, _paged(stmt, max_id=max_id, since_id=since_id, min_id=min_id, limit=limit), min_id)


async def could_see(conn: Conn, message_id: str, viewer_id: str | None) -> bool:
    """Whether the viewer could see the message before it was deleted or removed."""
    stmt = sa.select(messages.c.id).where(messages.c.id == message_id, visible_to(viewer_id, None))
    return (await conn.execute(stmt)).first() is not None


async def can_see(conn: Conn, message_id: str, viewer_id: str | None, viewer_uri: str | None) -> bool:
    stmt = sa.select(messages.c.id).where(messages.c.id == message_id, *_live(), visible_to(viewer_id, viewer_uri))
    return (await conn.execute(stmt)).first() is not None


async def favourited_by(conn: Conn, actor_id: str, *, max_id=None, since_id=None, min_id=None,
                        limit=20) -> list[sa.Row]:
    liked = sa.select(reactions.c.object_uri).where(reactions.c.actor_id == actor_id, reactions.c.kind == "like")
    stmt = sa.select(messages).where(*_live(), messages.c.uri.in_(liked))
    return await _rows(conn, _paged(stmt, max_id=max_id, since_id=since_id, min_id=min_id, limit=limit), min_id)


async def reactions_of(conn: Conn, actor_id: str, uris: list[str]) -> dict[str, set[str]]:
    """For each message URI, the kinds (``like``, ``announce``) the actor gave it."""
    out: dict[str, set[str]] = {}
    if not uris:
        return out
    rows = await conn.execute(sa.select(reactions.c.object_uri, reactions.c.kind).where(
        reactions.c.actor_id == actor_id, reactions.c.object_uri.in_(uris)))
    for uri, kind in rows:
        out.setdefault(uri, set()).add(kind)
    return out


async def reaction_counts(conn: Conn, uris: list[str]) -> dict[tuple[str, str], int]:
    if not uris:
        return {}
    rows = await conn.execute(sa.select(reactions.c.object_uri, reactions.c.kind, sa.func.count()).where(
        reactions.c.object_uri.in_(uris)).group_by(reactions.c.object_uri, reactions.c.kind))
    return {(uri, kind): n for uri, kind, n in rows}


async def reply_counts(conn: Conn, uris: list[str]) -> dict[str, int]:
    if not uris:
        return {}
    rows = await conn.execute(sa.select(messages.c.in_reply_to_uri, sa.func.count()).where(
        messages.c.in_reply_to_uri.in_(uris), messages.c.deleted_at.is_(None)).group_by(messages.c.in_reply_to_uri))
    return dict(rows.all())


async def last_status_at(conn: Conn, actor_id: str) -> dt.datetime | None:
    return (await conn.execute(sa.select(sa.func.max(messages.c.published_at)).where(
        messages.c.actor_id == actor_id, messages.c.deleted_at.is_(None)))).scalar()


async def search_local_actors(conn: Conn, query: str, *, limit: int) -> list[sa.Row]:
    q = query.lower().lstrip("@").replace("%", "").replace("_", r"\_")
    stmt = (sa.select(actors).where(actors.c.deleted_at.is_(None), actors.c.type != "Application",
                                    sa.or_(sa.func.lower(actors.c.username).like(q + "%", escape="\\"),
                                           sa.func.lower(actors.c.name).like("%" + q + "%", escape="\\")))
            .order_by(actors.c.local.desc(), actors.c.username).limit(limit))
    return list((await conn.execute(stmt)).all())


async def accounts_by_ids(conn: Conn, ids: list[str]) -> dict[str, sa.Row]:
    if not ids:
        return {}
    return {r.id: r for r in await conn.execute(sa.select(accounts).where(accounts.c.id.in_(ids)))}


# --- media uploads -----------------------------------------------------------------------------


async def put_upload(conn: Conn, values: dict) -> None:
    await conn.execute(sa.insert(media_uploads).values(created_at=utcnow(), **values))


async def get_upload(conn: Conn, upload_id: str) -> sa.Row | None:
    return (await conn.execute(sa.select(media_uploads).where(media_uploads.c.id == upload_id))).first()


async def update_upload(conn: Conn, upload_id: str, values: dict) -> None:
    await conn.execute(sa.update(media_uploads).where(media_uploads.c.id == upload_id).values(**values))


async def uploads_of_message(conn: Conn, message_id: str) -> list[sa.Row]:
    return list((await conn.execute(sa.select(media_uploads).where(media_uploads.c.message_id == message_id)
                                    .order_by(media_uploads.c.id))).all())


# --- idempotency, markers ----------------------------------------------------------------------


async def get_idempotent(conn: Conn, token_id: str, key: str) -> str | None:
    return (await conn.execute(sa.select(idempotency_keys.c.message_id).where(
        idempotency_keys.c.token_id == token_id, idempotency_keys.c.key == key))).scalar()


async def put_idempotent(conn: Conn, token_id: str, key: str, message_id: str) -> None:
    await insert_ignore(conn, idempotency_keys, [{"token_id": token_id, "key": key, "message_id": message_id,
                                                  "created_at": utcnow()}])


async def get_markers(conn: Conn, account_id: str, actor_id: str) -> list[sa.Row]:
    return list((await conn.execute(sa.select(markers).where(markers.c.account_id == account_id,
                                                             markers.c.actor_id == actor_id))).all())


async def set_marker(conn: Conn, account_id: str, actor_id: str, timeline_name: str, last_read_id: str) -> None:
    now = utcnow()
    stmt = insert(conn, markers).values(account_id=account_id, actor_id=actor_id, timeline=timeline_name,
                                        last_read_id=last_read_id, version=1, updated_at=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=[markers.c.account_id, markers.c.actor_id, markers.c.timeline],
        set_={"last_read_id": last_read_id, "version": markers.c.version + 1, "updated_at": now})
    await conn.execute(stmt)


# --- push subscriptions ------------------------------------------------------------------------


async def put_push_subscription(conn: Conn, token_id: str, values: dict) -> None:
    await conn.execute(sa.delete(push_subscriptions).where(push_subscriptions.c.token_id == token_id))
    await conn.execute(sa.insert(push_subscriptions).values(id=new_id(), token_id=token_id, created_at=utcnow(),
                                                            **values))


async def get_push_subscription(conn: Conn, token_id: str) -> sa.Row | None:
    return (await conn.execute(sa.select(push_subscriptions).where(push_subscriptions.c.token_id == token_id))).first()


async def update_push_subscription(conn: Conn, token_id: str, values: dict) -> None:
    await conn.execute(sa.update(push_subscriptions).where(push_subscriptions.c.token_id == token_id).values(**values))


async def delete_push_subscription(conn: Conn, token_id: str) -> None:
    await conn.execute(sa.delete(push_subscriptions).where(push_subscriptions.c.token_id == token_id))


async def notify_reaction(conn: Conn, kind: str, actor_id: str, object_uri: str) -> None:
    """A like or boost of a local message notifies its author."""
    row = (await conn.execute(sa.select(messages.c.id, messages.c.actor_id).where(
        messages.c.uri == object_uri, messages.c.local.is_(True)))).first()
    if row is not None:
        await add_notifications(conn, [row.actor_id], "favourite" if kind == "like" else "reblog", actor_id, row.id)


async def notify_follow(conn: Conn, follow: sa.Row) -> None:
    await add_notifications(conn, [follow.followee_id], "follow" if follow.state == "accepted" else "follow_request",
                            follow.follower_id)


# --- bookmarks ---------------------------------------------------------------------------------


async def set_bookmark(conn: Conn, actor_id: str, message_id: str, on: bool) -> None:
    if on:
        await insert_ignore(conn, bookmarks, [{"actor_id": actor_id, "message_id": message_id,
                                               "created_at": utcnow()}])
    else:
        await conn.execute(sa.delete(bookmarks).where(bookmarks.c.actor_id == actor_id,
                                                      bookmarks.c.message_id == message_id))


async def bookmarked_of(conn: Conn, actor_id: str, message_ids: list[str]) -> set[str]:
    if not message_ids:
        return set()
    return set((await conn.execute(sa.select(bookmarks.c.message_id).where(
        bookmarks.c.actor_id == actor_id, bookmarks.c.message_id.in_(message_ids)))).scalars())


async def bookmarked_by(conn: Conn, actor_id: str, *, max_id=None, since_id=None, min_id=None,
                        limit=20) -> list[sa.Row]:
    kept = sa.select(bookmarks.c.message_id).where(bookmarks.c.actor_id == actor_id)
    stmt = sa.select(messages).where(*_live(), messages.c.id.in_(kept))
    return await _rows(conn, _paged(stmt, max_id=max_id, since_id=since_id, min_id=min_id, limit=limit), min_id)


# --- followed hashtags -----------------------------------------------------------------------------------


async def follow_tag(conn: Conn, actor_id: str, tag: str, *, follow: bool) -> None:
    from hub.store.schema import followed_tags

    if follow:
        await insert_ignore(conn, followed_tags, [{"actor_id": actor_id, "tag": tag, "created_at": utcnow()}])
    else:
        await conn.execute(sa.delete(followed_tags).where(followed_tags.c.actor_id == actor_id,
                                                          followed_tags.c.tag == tag))


async def follows_tag(conn: Conn, actor_id: str, tag: str) -> bool:
    from hub.store.schema import followed_tags

    return (await conn.execute(sa.select(followed_tags.c.tag).where(
        followed_tags.c.actor_id == actor_id, followed_tags.c.tag == tag))).first() is not None


async def count_followed_tags(conn: Conn, actor_id: str) -> int:
    from hub.store.schema import followed_tags

    return (await conn.execute(sa.select(sa.func.count()).select_from(followed_tags).where(
        followed_tags.c.actor_id == actor_id))).scalar() or 0


async def followed_tags_of(conn: Conn, actor_id: str, *, limit: int = 100) -> list[str]:
    from hub.store.schema import followed_tags

    stmt = sa.select(followed_tags.c.tag).where(followed_tags.c.actor_id == actor_id).order_by(
        followed_tags.c.tag).limit(limit)
    return list((await conn.execute(stmt)).scalars())
