"""Each actor's inbox: its private working state of every conversation it is in.

Status (``open | pending | snoozed | resolved``), assignee, team, priority,
labels, private notes and read marks belong to one actor (and its members)
and are never federated, bridged or shown to the other side. Listings and
views here produce the JSON shapes the CLI and the API share (documented in
the README):

* a conversation: ``id, uri, owner, participants, subject, status,
  snoozed_until, assignee, team, priority, labels, unread, waiting_since,
  first_response_at, last_activity, last_message, closed, hosted_here``;
* a message: ``uri, author, author_name, member, network, text, html,
  published, edited, in_reply_to, delivery`` (delivery only for the actor's own
  messages: one entry per recipient, ``queued | delivered | failed | gone |
  relayed``);
* a note: ``id, author, text, created``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json

import sqlalchemy as sa

from hub import media, notify
from hub.context import Hub
from hub.errors import NotFound, UsageError
from hub.inbox import webhooks
from hub.inbox.access import Acting, audit
from hub.store import actors as actor_store
from hub.store import bridges as bridge_store
from hub.store import conversations as conv_store
from hub.store import jobs as job_store
from hub.store import org as org_store
from hub.store.base import Conn, utcnow

STATUSES = conv_store.STATUSES
DELIVERY_STATES = {"done": "delivered", "running": "queued", "queued": "queued", "failed": "failed", "gone": "gone"}
MAX_LABEL = 64


def iso(when: dt.datetime | None) -> str | None:
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if when else None


def encode_cursor(row: sa.Row) -> str:
    raw = json.dumps([row.last_message_at.isoformat(), row.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, state_id = json.loads(raw)
        when = dt.datetime.fromisoformat(at)
        return (when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)), str(state_id)
    except (ValueError, TypeError):
        raise UsageError("invalid cursor") from None


async def conversation_objects(conn: Conn, rows: list[sa.Row], acting: Acting) -> list[dict]:
    # A fixed number of queries per page, whatever its length.
    labels = await conv_store.labels_of(conn, [r.id for r in rows])
    unread = await conv_store.unread_counts(conn, rows, acting.account_id)
    last = await conv_store.last_messages(conn, [r.last_message_id for r in rows if r.last_message_id])
    participants = await conv_store.participant_uris(conn, [r.conversation_id for r in rows])
    assignees = await actor_store.usernames_of_accounts(conn, [r.assignee_id for r in rows if r.assignee_id])
    out = []
    for r in rows:
        msg = last.get(r.last_message_id)
        out.append({
            "id": r.conversation_id,
            "uri": r.uri,
            "owner": r.owner_uri,
            "participants": participants.get(r.conversation_id, []),
            "subject": r.subject,
            "status": r.status,
            "snoozed_until": iso(r.snoozed_until),
            "assignee": assignees.get(r.assignee_id),
            "team": r.team,
            "priority": r.priority,
            "labels": labels.get(r.id, []),
            "unread": unread.get(r.id, 0),
            "waiting_since": iso(r.waiting_since),
            "first_response_at": iso(r.first_response_at),
            "last_activity": iso(r.last_message_at),
            "last_message": {"uri": msg.uri, "author": msg.author_uri, "text": msg.content_text,
                             "published": iso(msg.published_at)} if msg else None,
            "closed": r.closed_at is not None,
            "hosted_here": bool(r.hosted),
            "public": r.visibility == "public",
        })
    return out


async def list_conversations(
    hub: Hub,
    acting: Acting,
    *,
    status: str | None = None,
    assignee: str | None = None,
    label: str | None = None,
    participant: sa.Row | None = None,
    network: str | None = None,
    query: str | None = None,
    cursor: str | None = None,
    limit: int = 20,
) -> tuple[list[dict], str | None]:
    """A page of the actor's inbox, most recent activity first; ``(items, next cursor)``.

    ``assignee`` is a member's username, or ``none`` for the unassigned.
    """
    acting.require("agent")
    if status is not None and status not in STATUSES:
        raise UsageError(f"invalid status {status!r}: use {', '.join(STATUSES)}")
    limit = max(1, min(limit, 200))
    async with hub.db.write() as conn:
        assignee_id = None
        if assignee and assignee != "none":
            account = await actor_store.get_account_by_username(conn, assignee)
            if account is None:
                raise NotFound(f"no login named {assignee!r}")
            assignee_id = account.id
        await wake_snoozed(conn, utcnow(), actor_id=acting.actor.id)
        rows = await conv_store.list_inbox(
            conn, acting.actor.id, status=status, assignee_id=assignee_id, unassigned=assignee == "none",
            label=label, participant_id=participant.id if participant is not None else None, network=network,
            query=query.strip() if query else None, before=decode_cursor(cursor) if cursor else None, limit=limit + 1,
        )
        more = len(rows) > limit
        rows = rows[:limit]
        items = await conversation_objects(conn, rows, acting)
        await audit(conn, acting, "inbox.list", filters={k: v for k, v in {
            "status": status, "assignee": assignee, "label": label, "network": network, "query": query}.items() if v})
    return items, (encode_cursor(rows[-1]) if more and rows else None)


async def wake_snoozed(conn: Conn, now: dt.datetime, *, actor_id: str | None = None) -> int:
    """Snoozed conversations whose time has come are open again, each with
    its ``conversation.status_changed`` event. The job runner calls this
    every ``snooze_check_s``; listing an inbox calls it for that actor, so a
    listing never shows a snooze that has ended."""
    due = await conv_store.due_snoozed(conn, now, actor_id=actor_id)
    if due:
        await conv_store.wake_states(conn, [r.id for r in due], now)
        for r in due:
            await webhooks.emit(conn, r.actor_id, "conversation.status_changed", {
                "conversation": r.uri, "id": r.conversation_id, "status": "open", "previous": "snoozed",
            })
    return len(due)


async def wake_all_snoozed(hub: Hub) -> int:
    woken = 0
    while True:
        async with hub.db.write() as conn:
            n = await wake_snoozed(conn, utcnow())
        woken += n
        if n < 500:
            return woken


async def _row(conn: Conn, acting: Acting, conversation_id: str) -> sa.Row:
    rows = await conv_store.list_inbox(conn, acting.actor.id, conversation_id=conversation_id, limit=1)
    if not rows:
        raise NotFound("no such conversation")
    return rows[0]


async def item(hub: Hub, acting: Acting, conversation: sa.Row) -> dict:
    """The actor's conversation object alone (no messages, not a read)."""
    async with hub.db.read() as conn:
        (out,) = await conversation_objects(conn, [await _row(conn, acting, conversation.id)], acting)
    return out


async def _deliveries(conn: Conn, hub: Hub, conversation: sa.Row, message: sa.Row, participants: list[sa.Row]) -> list[dict]:
    """Per recipient: how our message reached them (our own messages only)."""
    jobs_by_inbox: dict[str, sa.Row] = {}
    for activity_id in await job_store.list_activity_ids_for_object(conn, message.uri):
        for job in await job_store.list_deliveries(conn, activity_id):
            jobs_by_inbox.setdefault(job.payload["inbox"], job)
    owner_id = conversation.owner_id
    out = []
    for p in participants:
        if p.id == message.actor_id:
            continue
        if p.local and p.bridge_network:
            continue  # a bridged person: see the bridge sends below
        if p.local:
            out.append({"recipient": p.uri, "state": "delivered", "inbox": None})
            continue
        inbox = p.shared_inbox_uri or p.inbox_uri
        job = jobs_by_inbox.get(inbox) or jobs_by_inbox.get(p.inbox_uri)
        if job is not None:
            out.append({"recipient": p.uri, "state": DELIVERY_STATES.get(job.state, job.state), "inbox": job.payload["inbox"],
                        "attempts": job.attempts, "last_status": job.last_status, "last_error": job.last_error})
        elif not conversation.local and p.id != owner_id:
            out.append({"recipient": p.uri, "state": "relayed", "inbox": None})  # the owner's hub hands it on
        else:
            out.append({"recipient": p.uri, "state": "queued", "inbox": inbox})
    by_id = {p.id: p for p in participants}
    for job in await job_store.bridge_sends_for(conn, message.id):
        if job.payload.get("event") != "create":
            continue
        identity = await bridge_store.get_identity_by_id(conn, job.payload["identity_id"])
        person = by_id.get(identity.claimed_actor_id or identity.actor_id) if identity else None
        out.append({
            "recipient": person.uri if person else None, "network": job.payload["bridge"], "address": job.payload["to"],
            "state": bridge_state(job), "attempts": job.attempts, "last_error": job.last_error, "inbox": None,
        })
    return out


def bridge_state(job: sa.Row) -> str:
    """A bridge send's state: ``pending | sent | failed-retriable | failed-permanent``."""
    if job.state == "done":
        return "sent"
    if job.state in ("failed", "gone"):
        return "failed-permanent"
    return "failed-retriable" if job.attempts and job.last_error else "pending"


async def show(hub: Hub, acting: Acting, conversation: sa.Row, *, mark_read: bool = True) -> dict:
    """``{"conversation": ..., "messages": [...], "notes": [...]}``; marks it read for the member."""
    acting.require("agent")
    async with hub.db.write() as conn:
        row = await _row(conn, acting, conversation.id)
        participants = await conv_store.list_participants(conn, conversation.id)
        messages = []
        rows = await conv_store.list_messages(conn, conversation.id)
        files = await bridge_store.attachments_of(conn, [m.id for m in rows])
        addresses = await bridge_store.addresses_of(conn, {m.actor_id for m in rows})
        for m in rows:
            domain = hub.cfg.domain if m.author_local else m.author_domain
            member = None
            if m.account_id and m.actor_id == acting.actor.id:
                account = await actor_store.get_account_by_id(conn, m.account_id)
                member = account.username if account else None
            messages.append({
                "uri": m.uri,
                "author": m.author_uri,
                "author_name": m.author_name or m.author_username,
                "author_handle": f"@{m.author_username}@{domain}",
                "author_address": addresses.get(m.actor_id),
                "member": member,
                "network": m.network,
                "text": m.content_text,
                "html": m.content_html,
                "published": iso(m.published_at),
                "edited": iso(m.edited_at),
                "in_reply_to": m.in_reply_to_uri,
                "flags": list(m.flags or []),
                "attachments": [{"id": a.id, "filename": a.filename, "content_type": a.content_type, "size": a.size,
                                 "description": a.description, "remote": not a.sha256,
                                 "url": media.url_of(hub.cfg, a.id, a.filename) if a.sha256 else a.remote_url}
                                for a in files.get(m.id, [])],
                "delivery": await _deliveries(conn, hub, conversation, m, participants) if m.actor_id == acting.actor.id else None,
            })
        notes = [{"id": n.id, "author": n.author, "text": n.text, "created": iso(n.created_at)}
                 for n in await conv_store.list_notes(conn, conversation.id, acting.actor.id)]
        (item,) = await conversation_objects(conn, [row], acting)
        item["networks"] = [{"network": k, "origin": v} for k, v in (await bridge_store.networks_of(conn, conversation.id)).items()]
        if mark_read and acting.account_id:
            await conv_store.mark_read(conn, row.id, acting.account_id, utcnow())
        await audit(conn, acting, "conversation.read", conversation_id=conversation.id)
    return {"conversation": item, "messages": messages, "notes": notes}


async def update(
    hub: Hub,
    acting: Acting,
    conversation: sa.Row,
    *,
    status: str | None = None,
    snooze_until: dt.datetime | None = None,
    assign: str | None = None,
    team: str | None = None,
    priority: int | None = None,
    add_labels: list[str] = (),
    remove_labels: list[str] = (),
    note: str | None = None,
) -> dict:
    """Change the actor's own state of a conversation. ``assign=""`` unassigns."""
    acting.require("agent")
    if status is not None and status not in STATUSES:
        raise UsageError(f"invalid status {status!r}: use {', '.join(STATUSES)}")
    if status == "snoozed" and snooze_until is None:
        raise UsageError("snoozing needs a time to wake up (--until)")
    labels_in = [_label(x) for x in add_labels]
    labels_out = [_label(x) for x in remove_labels]
    if note is not None and not note.strip():
        raise UsageError("a note needs some text")
    async with hub.db.write() as conn:
        row = await _row(conn, acting, conversation.id)
        changes: dict = {}
        if status is not None and status != row.status:
            changes["status"] = status
            changes["snoozed_until"] = snooze_until if status == "snoozed" else None
        elif status == "snoozed":
            changes["snoozed_until"] = snooze_until
        if assign is not None:
            if assign == "":
                changes["assignee_id"] = None
            else:
                account = await actor_store.get_account_by_username(conn, assign)
                membership = await org_store.get_membership(conn, account_id=account.id, actor_id=acting.actor.id) if account else None
                if membership is None:
                    raise UsageError(f"{assign} is not a member of @{acting.actor.username}")
                changes["assignee_id"] = account.id
        if team is not None:
            changes["team"] = team.strip()[:64] or None
        if priority is not None:
            changes["priority"] = int(priority)
        if changes:
            await conv_store.update_state(conn, row.id, changes)
        if changes.get("assignee_id") and changes["assignee_id"] != row.assignee_id:
            await notify.assigned(conn, hub, actor_id=acting.actor.id, conversation_id=conversation.id,
                                  account_id=changes["assignee_id"], by_account_id=acting.account_id)
        if labels_in:
            await conv_store.add_labels(conn, row.id, labels_in)
        if labels_out:
            await conv_store.remove_labels(conn, row.id, labels_out)
        if note is not None:
            await conv_store.put_note(conn, conversation_id=conversation.id, actor_id=acting.actor.id,
                                      account_id=acting.account_id, text=note.strip()[:10_000])
        if "status" in changes:
            await webhooks.emit(conn, acting.actor.id, "conversation.status_changed", {
                "conversation": row.uri, "id": conversation.id, "status": changes["status"], "previous": row.status,
            })
        await audit(conn, acting, "conversation.update", conversation_id=conversation.id,
                    **{k: v for k, v in {"status": status, "assign": assign, "team": team, "priority": priority,
                                         "labels_added": labels_in, "labels_removed": labels_out,
                                         "note": note is not None}.items() if v not in (None, [], (), False)})
        (item,) = await conversation_objects(conn, [await _row(conn, acting, conversation.id)], acting)
    return item


def _label(value: str) -> str:
    label = value.strip().lower()
    if not label or len(label) > MAX_LABEL or any(c.isspace() for c in label):
        raise UsageError(f"invalid label {value!r}: one word, at most {MAX_LABEL} characters")
    return label


# --- canned responses -------------------------------------------------------------------------


async def save_canned(hub: Hub, acting: Acting, name: str, text: str) -> None:
    acting.require("admin")
    name, text = name.strip(), text.strip()
    if not name or not text:
        raise UsageError("a canned response needs a name and a text")
    async with hub.db.write() as conn:
        await org_store.put_canned(conn, actor_id=acting.actor.id, name=name[:255], text=text[:5000])
        await audit(conn, acting, "canned.save", name=name)


async def list_canned(hub: Hub, acting: Acting) -> list[dict]:
    acting.require("agent")
    async with hub.db.read() as conn:
        return [{"name": r.name, "text": r.text} for r in await org_store.list_canned(conn, acting.actor.id)]


async def render_canned(hub: Hub, acting: Acting, name: str, conversation: sa.Row) -> str:
    """A canned response with its placeholders filled: ``{customer_name}``
    (the conversation's owner), ``{actor_name}``, ``{member_name}``."""
    acting.require("agent")
    async with hub.db.read() as conn:
        canned = await org_store.get_canned(conn, acting.actor.id, name)
        if canned is None:
            raise NotFound(f"no canned response {name!r}")
        owner = await actor_store.get_actor_by_id(conn, conversation.owner_id) if conversation.owner_id else None
    values = {
        "customer_name": (owner.name or owner.username) if owner else "",
        "actor_name": acting.actor.name or acting.actor.username,
        "member_name": acting.member or "",
    }
    text = canned.text
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text
