"""Members' email notifications: a new conversation, a new message, an assignment.

Each member chooses, for each actor it speaks for, which of the three it
wants by mail (``memberships.notify_*``; ``/settings/notifications``). When a
message is placed (``hub.inbox.conversations.place_message``) or a
conversation is assigned (``hub.inbox.state.update``), one durable
``mail.notify`` job is queued per member to tell, in the same transaction,
with a dedupe key so that a message never mails a member twice. The job
sends through the configured relay (``hub.mail.send_system_mail``); a
relay that cannot be reached, or answers 4xx, is tried again on the job
schedule, a 5xx ends the job. Without ``smtp_relay`` nothing is queued.

What a mail may carry: who wrote, through which network, the conversation's
subject (or its first words), a short excerpt of the message, and the link
to the conversation's page. Never a private note: notes are not messages,
and nothing here reads them. The job holds ids only; the text is read when
the mail is written, so a message withdrawn meanwhile is not sent.

This module must not import the network adapters (federation, bridges).
"""

from __future__ import annotations

import datetime as dt
import logging
import re

import sqlalchemy as sa

from hub.context import Hub
from hub.ids import new_id
from hub.jobs import DONE, Outcome
from hub.store import actors as actor_store
from hub.store import bridges as bridge_store
from hub.store import conversations as conv_store
from hub.store import messages as msg_store
from hub.store import notify as notify_store
from hub.store.base import Conn, utcnow
from hub.store.jobs import job_row, put_jobs

log = logging.getLogger(__name__)

KIND = "mail.notify"
CHOICES = notify_store.CHOICES  # conversations, messages, assignments
CHOICE_OF_EVENT = {"conversation": "conversations", "message": "messages", "assignment": "assignments"}
HISTORY_GRACE = dt.timedelta(hours=1)
"""A message published this long before the actor's state of its conversation
existed is history handed to a late participant (a FEP-171b backfill), not news."""
EXCERPT_CHARS = 300
TITLE_WORDS, TITLE_CHARS = 8, 60
NETWORKS = {"activitypub": "the fediverse (ActivityPub)", "email": "email"}


def enabled(hub: Hub) -> bool:
    """Whether this hub can send notifications at all (a relay is configured)."""
    return bool(hub.cfg.smtp_relay)


def _job(hub: Hub, payload: dict, dedupe_key: str) -> dict:
    return job_row(KIND, payload, dedupe_key=dedupe_key, host=f"smtp:{hub.cfg.smtp_relay}")


# --- queueing (called inside the transaction that makes the change) ----------------------------


async def message_placed(conn: Conn, hub: Hub, conversation: sa.Row, message: sa.Row, participant: sa.Row,
                         state: sa.Row, *, new: bool) -> None:
    """A message entered ``participant``'s inbox (``new``: the conversation too,
    ``state`` being its state as it was before). Queue a mail for each member
    who asked for it, except the member who wrote the message; nothing for
    the actor's own messages."""
    if not enabled(hub) or message.actor_id == participant.id:
        return
    if not new and message.published_at < state.created_at - HISTORY_GRACE:
        return
    event = "conversation" if new else "message"
    rows = [
        _job(hub, {"event": event, "account_id": r.account_id, "actor_id": participant.id,
                   "conversation_id": conversation.id, "message_id": message.id},
             dedupe_key=f"{KIND}:{message.id}:{r.account_id}")
        for r in await notify_store.list_recipients(conn, participant.id, CHOICE_OF_EVENT[event])
        if r.account_id != message.account_id
    ]
    if rows:
        await put_jobs(conn, rows)


async def assigned(conn: Conn, hub: Hub, *, actor_id: str, conversation_id: str, account_id: str,
                   by_account_id: str | None) -> None:
    """``by_account_id`` assigned the actor's conversation to the member
    ``account_id``: mail them if they asked for it (not when they took it themselves)."""
    if not enabled(hub) or account_id == by_account_id:
        return
    if await notify_store.get_recipient(conn, account_id=account_id, actor_id=actor_id, choice="assignments") is None:
        return
    payload = {"event": "assignment", "account_id": account_id, "actor_id": actor_id,
               "conversation_id": conversation_id, "by_account_id": by_account_id}
    # Each assignment is its own event (assigned, taken back, assigned again).
    await put_jobs(conn, [_job(hub, payload, dedupe_key=f"{KIND}:assignment:{conversation_id}:{account_id}:{new_id()}")])


# --- the members' choices ---------------------------------------------------------------------


async def list_choices(hub: Hub, account_id: str) -> list[dict]:
    """Per actor the account speaks for: ``{actor, name, type, role, conversations, messages, assignments}``."""
    async with hub.db.read() as conn:
        rows = await notify_store.list_choices(conn, account_id)
    return [{"actor": r.username, "actor_id": r.actor_id, "name": r.name, "type": r.type, "role": r.role,
             **{c: bool(getattr(r, c)) for c in CHOICES}} for r in rows]


async def choices_of(hub: Hub, account: sa.Row, actor_id: str) -> dict:
    """The account's choices for one actor, with whether mail can be sent at
    all: ``{conversations, messages, assignments, mail, email}`` (``mail``: the
    hub has a relay; ``email``: the login has an address)."""
    row = next((r for r in await list_choices(hub, account.id) if r["actor_id"] == actor_id), None)
    choices = {c: bool(row and row[c]) for c in CHOICES}
    return {**choices, "mail": enabled(hub), "email": bool(account.email)}


async def set_choices(hub: Hub, account_id: str, actor_id: str, values: dict[str, bool]) -> bool:
    """Change the account's choices for one actor; False if it is no member of it."""
    unknown = set(values) - set(CHOICES)
    if unknown:
        raise ValueError(f"unknown notification choices: {sorted(unknown)}")
    async with hub.db.write() as conn:
        return await notify_store.set_choices(conn, account_id=account_id, actor_id=actor_id, values=values)


# --- sending ----------------------------------------------------------------------------------


def title_of(conversation: sa.Row, first_text: str | None) -> str:
    """The conversation as a mail names it: its subject, else its first words."""
    if conversation.subject and conversation.subject.strip():
        return _one_line(conversation.subject, TITLE_CHARS)
    words = (first_text or "").split()
    if not words:
        return "a conversation"
    title = " ".join(words[:TITLE_WORDS])
    return _one_line(title, TITLE_CHARS) + ("…" if len(words) > TITLE_WORDS and len(title) <= TITLE_CHARS else "")


def _one_line(text: str, limit: int) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def excerpt_of(message: sa.Row) -> str:
    """A short excerpt of a message; behind a content warning, only the warning."""
    if message.summary:
        return f"[content warning: {_one_line(message.summary, 100)}]"
    text = (message.content_text or "").strip()
    if not text:
        return "(no text)"
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    short = "\n".join(lines)
    if len(short) > EXCERPT_CHARS:
        short = short[:EXCERPT_CHARS].rstrip() + " …"
    return "\n".join(f"  {line}" for line in short.splitlines())


def author_line(hub: Hub, author: sa.Row | None, address: dict | None) -> str:
    if author is None:
        return "Someone"
    if address is not None:  # a person on a bridged network: their address, as the inbox shows it
        name = author.name if author.name and author.name != author.username else None
        return f"{name} <{address['address']}>" if name else address["address"]
    domain = hub.cfg.domain if author.local else author.domain
    return f"{author.name or author.username} (@{author.username}@{domain})"


async def handle(hub: Hub, job: sa.Row) -> Outcome:
    """Write and send one notification mail (the ``mail.notify`` job)."""
    p = job.payload
    if p.get("sent_at"):
        return Outcome("done", error="sent before (the job ran again after its mail was accepted)")
    event = p["event"]
    async with hub.db.read() as conn:
        recipient = await notify_store.get_recipient(conn, account_id=p["account_id"], actor_id=p["actor_id"],
                                                     choice=CHOICE_OF_EVENT[event])
        if recipient is None:
            return Outcome("done", error="not sent: the member left, no longer wants it, or has no address")
        actor = await actor_store.get_actor_by_id(conn, p["actor_id"])
        conversation = await msg_store.get_conversation_by_id(conn, p["conversation_id"])
        state = await conv_store.get_state(conn, p["conversation_id"], p["actor_id"])
        if actor is None or conversation is None or state is None:
            return Outcome("done", error="not sent: the conversation is gone")
        if event == "assignment":
            if state.assignee_id != p["account_id"]:
                return Outcome("done", error="not sent: assigned to someone else meanwhile")
            message_id = state.last_message_id
        else:
            message_id = p["message_id"]
        message = await msg_store.get_message_by_id(conn, message_id) if message_id else None
        if message is not None and (message.deleted_at or message.removed_at):
            if event != "assignment":
                return Outcome("done", error="not sent: the message was withdrawn")
            message = None
        author = await actor_store.get_actor_by_id(conn, message.actor_id) if message is not None else None
        address = None
        if author is not None and author.bridge_network:
            address = (await bridge_store.addresses_of(conn, {author.id})).get(author.id)
        first = await conv_store.list_messages(conn, conversation.id, limit=1)
        by = await actor_store.get_account_by_id(conn, p["by_account_id"]) if p.get("by_account_id") else None
    subject, text = compose(hub, event, actor=actor, conversation=conversation, message=message,
                            author=author, address=address, first_text=first[0].content_text if first else None,
                            by=by.username if by is not None else None)
    from hub.mail import send_system_mail

    await send_system_mail(hub, to=recipient.email, subject=subject, text=text,
                           message_id=f"<notify.{job.id}@{hub.cfg.mail_domain}>")
    async with hub.db.write() as conn:
        await notify_store.mark_sent(conn, job.id, {**p, "sent_at": utcnow().isoformat()})
    log.info("notified %s of %s in conversation %s", recipient.username, event, conversation.id)
    return DONE


def compose(hub: Hub, event: str, *, actor: sa.Row, conversation: sa.Row, message: sa.Row | None,
            author: sa.Row | None, address: dict | None, first_text: str | None, by: str | None) -> tuple[str, str]:
    """``(subject, plain text)`` of a notification mail."""
    cfg = hub.cfg
    title = title_of(conversation, first_text)
    handle = f"@{actor.username}"
    link = f"{cfg.base_url}/inbox/{actor.username}/{conversation.id}"
    lines: list[str] = []
    if event == "assignment":
        subject = f"Assigned to you: “{title}” ({handle})"
        lines.append(f"{by or 'A member'} assigned you the conversation “{title}” of {handle}.")
        if message is not None:
            lines += ["", f"Its last message, from {author_line(hub, author, address)}, "
                          f"by {NETWORKS.get(message.network, message.network)}:", "", excerpt_of(message)]
        what = "conversations assigned to you"
    else:
        who = author_line(hub, author, address)
        network = NETWORKS.get(message.network, message.network)
        if event == "conversation":
            subject = f"New conversation for {handle}: {title}"
            lines.append(f"{who} started a conversation with {handle}, by {network}:")
            what = "new conversations"
        else:
            subject = f"New message in “{title}” ({handle})"
            lines.append(f"{who} wrote in “{title}”, by {network}:")
            what = "new messages"
        lines += ["", excerpt_of(message)]
    lines += ["", "Read and answer it here:", link, "", "-- ",
              f"You get this mail because you asked for mail about {what} of {handle} on {cfg.domain}.",
              f"Choose which mails you get: {cfg.base_url}/settings/notifications"]
    return subject, "\n".join(lines) + "\n"


def register(hub: Hub) -> None:
    hub.registry.register(KIND, lambda job: handle(hub, job))
