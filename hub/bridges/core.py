"""The hub's side of every bridge: placing what comes in, sending what goes out.

In (an edge stored a raw item and queued ``bridge.inbound``):

1. the connector turns the raw item into an :class:`Envelope` (or says why
   it is no message: a bounce, an auto-reply, a loop: kept raw and flagged);
2. the message map is asked first: a remote id already mapped is not placed
   again, and an item carrying one of our own transaction ids is our echo;
3. the sender's identity ``(network, remote id)`` gives its bridged actor
   (a local ``Person`` with a real ActivityPub presence), or the customer
   who claimed it; an unauthenticated sender never speaks for a claimed
   identity;
4. the conversation is found by the message map (what it replies to), then
   by the reply token of the address it came to, each only if the sender
   takes part in that conversation (two customers answering one bulk mail
   never share a thread); otherwise a new conversation starts, owned by the
   customer in it;
5. the message enters the conversation through the same door as every other
   (``place_message``), and goes to ActivityPub participants as any local
   actor's message does.

Out: every message event of a conversation (create, edit, delete, remove)
queues one ``bridge.send`` job per channel of the conversation (a remote
identity whose person still takes part), unless the message came from that
channel, or its network is not allowed for the conversation by its owner.
What a network cannot carry degrades visibly (see ``Capabilities``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
from typing import TYPE_CHECKING

import sqlalchemy as sa

from hub import crypto, media
from hub.bridges.base import Connector, Envelope, Outbound, OutboundAttachment, Rejected, SendError, State
from hub.errors import Forbidden, HubError, UsageError
from hub.ids import new_id, new_ids
from hub.inbox.access import Acting
from hub.inbox.conversations import _post
from hub.jobs import DONE, Outcome
from hub.store import actors as actor_store
from hub.store import bridges as bridge_store
from hub.store import conversations as conv_store
from hub.store import messages as msg_store
from hub.store.base import Conn, utcnow
from hub.store.jobs import job_row, put_jobs
from hub.store.schema import bridge_messages, messages

if TYPE_CHECKING:
    from hub.context import Hub

log = logging.getLogger(__name__)

MAX_HOPS = 3
"""An item that has passed more bridges than this is a loop."""
PUPPET_SEPARATOR = "__"
BRIDGED_REF = re.compile(r"^([a-zA-Z][a-zA-Z0-9]{1,19}):(?!//)(.+)$")
EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


def _capabilities_of(bridge: sa.Row, connector: Connector | None) -> dict[str, bool]:
    if connector is not None:
        return connector.capabilities.as_dict()
    return dict((bridge.settings or {}).get("capabilities") or {})


class Bridges:
    """The bridges adapter of one hub process."""

    def __init__(self, hub: Hub):
        self.hub = hub
        self.connectors: dict[str, Connector] = {}
        self._started: list[Connector] = []

    @classmethod
    def attach(cls, hub: Hub) -> Bridges:
        self = cls(hub)
        hub.bridges = self
        hub.registry.register("bridge.inbound", self.handle_inbound)
        hub.registry.register("bridge.send", self.handle_send)
        hub.registry.register("bridge.leave", self.handle_leave)
        hub.message_hooks.append(on_message)
        self._resolve_handle = hub.resolve_handle
        hub.resolve_handle = self.resolve
        return self

    async def resolve(self, ref: str) -> sa.Row:
        """A handle or URI, or a person on a bridged network: ``mailto:carol@example.com``,
        ``email:carol@example.com``, ``BRIDGE:REMOTE_ID`` (their bridged actor, made if new)."""
        m = BRIDGED_REF.match(ref.strip())
        if m is None or m.group(1).lower() in ("http", "https", "acct"):
            if self._resolve_handle is None:
                raise UsageError(f"cannot resolve {ref!r} without federation")
            return await self._resolve_handle(ref)
        network = "email" if m.group(1).lower() == "mailto" else m.group(1).lower()
        remote_id = m.group(2).strip()
        async with self.hub.db.read() as conn:
            bridge = await bridge_store.get_bridge(conn, network)
        if bridge is None:
            raise UsageError(f"no bridge named {network!r} on this hub")
        from hub.bridges.claims import normalise

        remote_id = normalise(network, remote_id)
        if network == "email" and not EMAIL.match(remote_id):
            raise UsageError(f"not an email address: {remote_id!r}")
        async with self.hub.db.read() as conn:
            identity = await bridge_store.get_identity(conn, network, remote_id)
        keys = await _new_keys() if identity is None else None
        async with self.hub.db.write() as conn:
            identity = await ensure_identity(conn, self.hub, network, remote_id, None, keys)
            return await actor_store.get_actor_by_id(conn, identity.claimed_actor_id or identity.actor_id)

    def add_connector(self, connector: Connector) -> None:
        self.connectors[connector.name] = connector

    def connector_for(self, bridge: sa.Row) -> Connector | None:
        """The connector running in this process for a bridge row: the built-in
        ones, and webhook channels (made from their row, which may be newer
        than this process)."""
        if bridge.kind == "webhook":
            from hub.bridges.webhook import WebhookConnector

            settings = bridge.settings or {}
            current = self.connectors.get(bridge.name)
            key = (bridge.url, bridge.secret, settings.get("owner"), json.dumps(settings.get("capabilities"), sort_keys=True))
            if current is None or getattr(current, "key", None) != key:
                current = WebhookConnector(self.hub, bridge.name, url=bridge.url, secret=bridge.secret or "",
                                           owner_username=settings.get("owner"), capabilities=settings.get("capabilities"))
                current.key = key
                self.connectors[bridge.name] = current
            return current
        return self.connectors.get(bridge.name)

    async def ensure_bridge_rows(self) -> None:
        """Every connector of this process has its row (name = network namespace).
        Runs at every start-up (every command too): it only reads unless a row is
        missing or its capabilities changed."""
        async with self.hub.db.read() as conn:
            rows = {c.name: await bridge_store.get_bridge(conn, c.name) for c in self.connectors.values()}
        stale = [c for c in self.connectors.values()
                 if rows[c.name] is None or (rows[c.name].settings or {}).get("capabilities") != c.capabilities.as_dict()]
        if not stale:
            return
        async with self.hub.db.write() as conn:
            for c in stale:
                row = await bridge_store.get_bridge(conn, c.name, for_update=True)
                if row is None:
                    await bridge_store.put_bridge(conn, {
                        "name": c.name, "kind": c.kind, "settings": {"capabilities": c.capabilities.as_dict()},
                    })
                else:
                    settings = dict(row.settings or {})
                    settings["capabilities"] = c.capabilities.as_dict()
                    await bridge_store.update_bridge(conn, c.name, {"settings": settings})

    async def start(self) -> None:
        """Start this process's connectors' listeners (``roundtable serve``)."""
        await self.ensure_bridge_rows()
        for c in self.connectors.values():
            try:
                await c.start(LocalLink(self, c.name))
                self._started.append(c)
            except Exception as exc:  # a bridge that cannot start must not stop the hub
                log.exception("bridge %s could not start", c.name)
                async with self.hub.db.write() as conn:
                    await bridge_store.set_bridge_state(conn, c.name, State.ERROR, f"could not start: {exc}")

    async def stop(self) -> None:
        for c in reversed(self._started):
            try:
                await c.stop()
            except Exception:
                log.exception("bridge %s did not stop cleanly", c.name)
        self._started.clear()

    # --- in ---------------------------------------------------------------------------------------

    async def submit(self, bridge: str, raw: bytes, *, sender: str | None, recipients: list[str],
                     envelope: Envelope | None = None, rejected: Rejected | None = None) -> str:
        """Store a raw inbound item and queue it (the edge's one durable step).
        A bridge in another process hands its connector's reading with it."""
        async with self.hub.db.write() as conn:
            item_id = await bridge_store.put_item(conn, bridge=bridge, raw=raw, sender=sender, recipients=recipients)
            payload = {"item_id": item_id}
            if envelope is not None:
                payload["envelope"] = envelope.to_json()
            elif rejected is not None:
                payload["rejected"] = {k: getattr(rejected, k) for k in Rejected.__dataclass_fields__}
            await put_jobs(conn, [job_row("bridge.inbound", payload, dedupe_key=f"bridge.inbound:{item_id}")])
        self.hub.wake()
        return item_id

    async def handle_inbound(self, job: sa.Row) -> Outcome:
        hub = self.hub
        item_id = job.payload["item_id"]
        async with hub.db.read() as conn:
            item = await bridge_store.get_item(conn, item_id)
            bridge = await bridge_store.get_bridge(conn, item.bridge) if item else None
        if item is None or item.status != "queued":
            return DONE
        if bridge is None:
            await self._mark(item_id, "flagged", ["no_bridge"], f"no bridge named {item.bridge!r}")
            return DONE
        try:
            if job.payload.get("envelope"):
                result: Envelope | Rejected = Envelope.from_json(job.payload["envelope"])
            elif job.payload.get("rejected"):
                result = Rejected(**job.payload["rejected"])
            else:
                connector = self.connector_for(bridge)
                if connector is None:
                    return Outcome("retry", error=f"the {item.bridge} bridge does not run in this process")
                result = await connector.receive(bytes(item.raw), sender=item.sender, recipients=list(item.recipients or []))
        except Exception as exc:  # the raw item is kept: nothing is lost
            log.exception("bridge %s could not read item %s", item.bridge, item_id)
            await self._mark(item_id, "flagged", ["unreadable"], f"could not be read: {type(exc).__name__}: {exc}")
            return DONE
        if isinstance(result, Rejected):
            await self._rejected(item, result)
            return DONE
        try:
            caps = _capabilities_of(bridge, self.connector_for(bridge))
            try:
                status, flags, reason, message_id = await ingest(hub, item.bridge, result,
                                                                 threading=caps.get("threading", True))
            except _AlreadyPlaced:
                status, flags, reason, message_id = "dropped", list(result.flags) + ["duplicate"], "already placed", None
        except HubError as exc:
            await self._mark(item_id, "flagged", ["refused"], exc.safe)
            return DONE
        except sa.exc.IntegrityError:
            # Two items from one new person placed at once (PostgreSQL runs them
            # side by side): the other made the person; this one goes again.
            return Outcome("retry", error="the same person was being added by another item", retry_after_s=0.2)
        await self._mark(item_id, status, flags, reason, message_id=message_id)
        hub.wake()
        return DONE

    async def _mark(self, item_id: str, status: str, flags: list[str], reason: str | None, *, message_id: str | None = None):
        async with self.hub.db.write() as conn:
            await bridge_store.update_item(conn, item_id, {"status": status, "flags": flags, "reason": reason,
                                                           "message_id": message_id})

    async def _rejected(self, item: sa.Row, rejected: Rejected) -> None:
        hub = self.hub
        async with hub.db.write() as conn:
            if rejected.bounce_of and rejected.permanent:
                await _bounced(conn, item.bridge, rejected)
            await bridge_store.update_item(conn, item.id, {
                "status": "dropped" if rejected.echo else "flagged", "flags": rejected.flags, "reason": rejected.reason,
            })

    # --- out --------------------------------------------------------------------------------------

    async def handle_send(self, job: sa.Row) -> Outcome:
        return await _sending(send(self, job.payload))

    async def handle_leave(self, job: sa.Row) -> Outcome:
        return await _sending(leave(self, job.payload))


async def _sending(work) -> Outcome:
    """A send job's outcome: a permanent refusal by the network fails it, a passing one is tried again."""
    try:
        return await work
    except SendError as exc:
        return Outcome("failed" if exc.permanent else "retry", error=str(exc), retry_after_s=exc.retry_after_s)


class LocalLink:
    """A connector running inside the hub process talks to it directly."""

    def __init__(self, bridges: Bridges, name: str):
        self.bridges = bridges
        self.name = name

    async def submit(self, raw: bytes, *, sender: str | None, recipients: list[str]) -> str:
        return await self.bridges.submit(self.name, raw, sender=sender, recipients=recipients)

    async def report_state(self, state: State, detail: str | None = None) -> None:
        async with self.bridges.hub.db.write() as conn:
            await bridge_store.set_bridge_state(conn, self.name, state, detail)

    async def accepts_recipient(self, username: str) -> bool:
        return await accepts_recipient(self.bridges.hub, username)


async def accepts_recipient(hub: Hub, username: str) -> bool:
    async with hub.db.read() as conn:
        actor = await actor_store.get_local_actor(conn, username.lower())
    return actor is not None and actor.type != "Application" and not actor.bridge_network and actor.deleted_at is None


# --- identities and bridged actors -------------------------------------------------------------------


def _puppet_username(network: str) -> str:
    prefix = re.sub(r"[^a-z0-9]", "", network.lower())[:10] or "bridge"
    return f"{prefix}{PUPPET_SEPARATOR}{secrets.token_hex(6)}"


async def _new_keys() -> tuple[str, str]:
    return await asyncio.to_thread(crypto.generate_rsa_pem)


async def ensure_identity(conn: Conn, hub: Hub, network: str, remote_id: str, display_name: str | None,
                          keys: tuple[str, str] | None) -> sa.Row:
    """The identity ``(network, remote_id)``, made with its bridged actor if new.

    The bridged actor's username is opaque (``email__3f9c2a...``): an email
    address or phone number is never published on the fediverse.
    """
    identity = await bridge_store.get_identity(conn, network, remote_id)
    if identity is not None:
        if display_name and display_name != identity.display_name and identity.claimed_actor_id is None:
            await bridge_store.update_identity(conn, identity.id, {"display_name": display_name[:255]})
            await actor_store.update_actor(conn, identity.actor_id, {"name": display_name[:255]})
        return identity
    from hub.actors import _actor_values

    if keys is None:
        raise RuntimeError("keys are made before the transaction")
    private_pem, public_pem = keys
    username = _puppet_username(network)
    actor_id = new_id()
    values = _actor_values(hub, actor_id=actor_id, username=username, type_="Person", private_pem=private_pem)
    values.update(
        # the address or number is never published: without a display name, a neutral one
        name=(display_name or f"{network.capitalize()} user")[:255],
        summary=f"<p>Writes through the {network} bridge of {hub.cfg.domain}.</p>",
        discoverable=False,
        bridge_network=network,
    )
    await actor_store.put_actor(conn, values)
    await actor_store.put_key(conn, key_id=hub.uris.key_id(username), actor_id=actor_id, kind="rsa", public_key=public_pem)
    await bridge_store.put_identity(conn, network=network, remote_id=remote_id, actor_id=actor_id, display_name=display_name)
    return await bridge_store.get_identity(conn, network, remote_id)


# --- placing an envelope -------------------------------------------------------------------------------


def _subject(subject: str | None) -> str | None:
    if not subject:
        return None
    text = re.sub(r"^(\s*(re|fwd?|aw|wg|sv|vs|tr|rif|antw)(\[\d+\])?\s*:\s*)+", "", subject.strip(), flags=re.I)
    return text[:255] or None


class _AlreadyPlaced(Exception):
    pass


async def ingest(hub: Hub, network: str, env: Envelope, *, threading: bool = True) -> tuple[str, list[str], str | None, str | None]:
    """Place one envelope; ``(item status, flags, reason, message id)``.
    ``threading``: whether the network names what a message answers."""
    flags = list(env.flags)
    if env.hops > MAX_HOPS:
        return "flagged", flags + ["loop"], f"passed {env.hops} bridges: a loop", None
    async with hub.db.read() as conn:
        if await bridge_store.get_mapped(conn, network, env.remote_id, env.part) is not None:
            return "dropped", flags + ["duplicate"], "already placed", None
        if env.txn_id and await bridge_store.get_mapped_by_txn(conn, env.txn_id) is not None:
            return "dropped", flags + ["echo"], "our own message, come back", None
        identity = await bridge_store.get_identity(conn, network, env.sender.remote_id)
        unverified = identity is not None and identity.claimed_actor_id is not None and not env.sender.authenticated
        if unverified:
            identity = await bridge_store.get_identity(conn, network, "unverified:" + env.sender.remote_id)
    keys = await _new_keys() if identity is None else None
    stored = []
    for a in env.attachments:
        stored.append((a, await asyncio.to_thread(media.store, hub.cfg, a.data)))
    async with hub.db.write() as conn:
        remote_id = ("unverified:" if unverified else "") + env.sender.remote_id
        identity = await ensure_identity(conn, hub, network, remote_id, env.sender.display_name, keys)
        if identity.undeliverable_at is not None:
            # they write again: the address works (a full mailbox, a typo fixed)
            await bridge_store.update_identity(conn, identity.id, {"undeliverable_at": None, "undeliverable_reason": None})
        claimer = (await actor_store.get_actor_by_id(conn, identity.claimed_actor_id)
                   if identity.claimed_actor_id else None)
        # The customer who claimed the identity writes; one who has moved to another hub cannot be
        # written as from here, so their bridged actor writes and the new actor takes part (below)
        author = claimer if claimer is not None and claimer.local else await actor_store.get_actor_by_id(
            conn, identity.actor_id)
        if unverified:
            flags.append("unverified_claimed_identity")
        if not env.sender.authenticated and "unauthenticated" not in flags:
            flags.append("unauthenticated")
        conversation, parent = await _find_conversation(conn, network, env, identity, author, threading)
        if conversation is not None and conversation.closed_at is not None:
            flags.append("after_close")
            conversation, parent = None, None
        if conversation is None:
            conversation = await _new_conversation(conn, hub, network, env, author)
            if conversation is None:
                return "flagged", flags + ["no_recipient"], "addressed to nobody here", None
            if claimer is not None and not claimer.local and not unverified:
                await conv_store.put_participant(conn, conversation.id, claimer.id)
        await bridge_store.add_channel(conn, conversation.id, identity.id)
        await conv_store.put_participant(conn, conversation.id, author.id)
        participants = await conv_store.list_participants(conn, conversation.id)
        if parent is None:
            existing = await conv_store.list_messages(conn, conversation.id)
            parent = await msg_store.get_message_by_id(conn, existing[-1].id) if existing else None
        # The sender's clock (an email's Date) is believed only where it keeps
        # the thread in order: never in the future, never before what it answers.
        published = utcnow()
        latest = await conv_store.latest_published(conn, conversation.id)
        if env.published is not None and (latest is None or latest < env.published) and env.published < published:
            published = env.published
        text = env.text.strip() or "(no text)"
        acting = Acting(actor=author, account=None, role="owner")
        message = await _post(conn, hub, acting, conversation, text[:20_000], in_reply_to=parent, participants=participants,
                              bridged={"network": network, "remote_id": env.remote_id[:2048], "flags": flags,
                                       "published_at": published})
        if not await bridge_store.put_mapping(conn, network=network, remote_id=env.remote_id, part=env.part,
                                              message_id=message.id, direction="in", identity_id=identity.id,
                                              txn_id=new_id(), hops=env.hops):
            raise _AlreadyPlaced  # the same item, placed meanwhile by another worker: undo this one
        for (a, digest), file_id in zip(stored, new_ids(len(stored)), strict=True):
            await bridge_store.put_attachment(conn, message_id=message.id, filename=a.filename, attachment_id=file_id,
                                              content_type=a.content_type, size=len(a.data), sha256=digest)
    return "placed", flags, None, message.id


async def _find_conversation(conn: Conn, network: str, env: Envelope, identity: sa.Row, author: sa.Row,
                             threading: bool = True):
    """By what it replies to, then by the reply token; only a conversation the
    sender takes part in."""

    async def scoped(conversation_id: str | None):
        if not conversation_id:
            return None
        if not await bridge_store.is_channel(conn, conversation_id, identity.id) and not await conv_store.is_participant(
            conn, conversation_id, author.id
        ):
            return None
        return await msg_store.get_conversation_by_id(conn, conversation_id)

    for ref in env.reply_to:
        mapped = await bridge_store.get_mapped(conn, network, ref)
        if mapped is None:
            continue
        message = await msg_store.get_message_by_id(conn, mapped.message_id)
        conversation = await scoped(message.conversation_id if message else None)
        if conversation is not None:
            return conversation, message
    if env.thread_token:
        token = await bridge_store.get_reply_token(conn, env.thread_token)
        conversation = await scoped(token.conversation_id if token else None)
        if conversation is not None:
            return conversation, None
    if not env.reply_to and not env.thread_token and not threading:
        # A network without threads (SMS, most chat): the person's latest open
        # conversation with the same recipient goes on.
        for conversation_id in await bridge_store.open_channel_conversations(conn, identity.id):
            conversation = await msg_store.get_conversation_by_id(conn, conversation_id)
            if conversation is None or conversation.closed_at is not None:
                continue
            for username in env.recipients:
                actor = await actor_store.get_local_actor(conn, username.lower())
                if actor is not None and await conv_store.is_participant(conn, conversation_id, actor.id):
                    return conversation, None
    return None, None


async def _new_conversation(conn: Conn, hub: Hub, network: str, env: Envelope, author: sa.Row) -> sa.Row | None:
    recipients = []
    for username in dict.fromkeys(u.lower() for u in env.recipients):
        actor = await actor_store.get_local_actor(conn, username)
        if actor is not None and actor.type != "Application" and not actor.bridge_network and actor.id != author.id:
            recipients.append(actor)
    if not recipients:
        return None
    # The customer owns it: the writer if a customer of ours claimed this
    # identity, else the first customer written to, else the writer.
    if not author.bridge_network and author.type == "Person":
        owner = author
    else:
        owner = next((r for r in recipients if r.type == "Person"), author)
    conv_id = new_id()
    await msg_store.ensure_conversation(
        conn, uri=hub.uris.conversation(conv_id), owner_id=owner.id, local=True, conversation_id=conv_id
    )
    await conv_store.update_conversation(conn, conv_id, {"subject": _subject(env.subject), "visibility": "direct"})
    for actor in (author, *recipients):
        await conv_store.put_participant(conn, conv_id, actor.id, role="owner" if actor.id == owner.id else "participant")
    await bridge_store.allow_network(conn, conv_id, network, origin=True)
    return await msg_store.get_conversation_by_id(conn, conv_id)


async def _bounced(conn: Conn, network: str, rejected: Rejected) -> None:
    """A permanent bounce of one of our sends: the address is undeliverable,
    the send failed. Only a bounce that names a send of ours on this network,
    to the address it reports, counts: anyone can write a report."""
    mapped = await bridge_store.get_mapped_by_txn(conn, rejected.bounce_of or "")
    if mapped is None and rejected.bounce_of:
        mapped = await bridge_store.get_mapped(conn, network, rejected.bounce_of)
    if mapped is None or mapped.direction != "out" or mapped.network != network or not mapped.identity_id:
        return
    identity = await bridge_store.get_identity_by_id(conn, mapped.identity_id)
    if identity is not None and rejected.bounced_recipient and rejected.bounced_recipient.lower() != identity.remote_id:
        return  # it reports another address than the one we sent to
    if identity is not None:
        await bridge_store.update_identity(conn, identity.id, {
            "undeliverable_at": utcnow(), "undeliverable_reason": rejected.reason[:1000],
        })
        from hub.store import jobs as job_store

        await job_store.fail_bridge_send(conn, mapped.message_id, mapped.identity_id, f"bounced: {rejected.reason}"[:1000])


# --- sending ---------------------------------------------------------------------------------------------


async def on_message(conn: Conn, hub: Hub, event: str, conversation: sa.Row, message: sa.Row) -> None:
    """Queue a ``bridge.send`` per channel that should hear of this event."""
    targets = await bridge_store.channel_targets(conn, conversation.id)
    if not targets:
        return
    allowed = await bridge_store.networks_of(conn, conversation.id)
    mapped = await bridge_store.mapped_for_message(conn, message.id)
    carriers = await _carriers(conn, conversation.id, {t.network for t in targets})
    came_from = {m.identity_id for m in mapped if m.direction == "in"}
    sent_to = {m.identity_id for m in mapped if m.direction == "out"}
    rows = []
    for identity in targets:
        if identity.id in came_from or message.actor_id in (identity.actor_id, identity.claimed_actor_id):
            continue  # never echo a message to where it came from, or to its own writer
        if event != "create" and identity.id not in sent_to:
            continue  # they never had it
        if identity.network not in carriers:
            continue  # an actor's own channel carries only that actor's conversations
        stamp = message.edited_at.isoformat() if event == "edit" and message.edited_at else ""
        payload = {"bridge": identity.network, "identity_id": identity.id, "to": identity.remote_id,
                   "message_id": message.id, "event": event, "txn_id": new_id()}
        row = job_row("bridge.send", payload, dedupe_key=f"bridge.send:{message.id}:{identity.id}:{event}:{stamp}",
                      host=f"bridge:{identity.network}")
        if identity.network not in allowed:
            row["state"] = "failed"
            row["last_error"] = (f"held: the conversation's owner has not allowed {identity.network} for it")
        rows.append(row)
    if rows:
        await put_jobs(conn, rows)


async def _carriers(conn: Conn, conversation_id: str, networks: set[str]) -> set[str]:
    """The networks that may carry this conversation: every hub-wide bridge,
    and an actor's own channel (a webhook channel) where that actor takes part."""
    out = set()
    for network in networks:
        bridge = await bridge_store.get_bridge(conn, network)
        if bridge is None:
            continue
        if bridge.owner_actor_id is None or await conv_store.is_participant(conn, conversation_id, bridge.owner_actor_id):
            out.add(network)
    return out


async def send(bridges: Bridges, p: dict) -> Outcome:
    hub = bridges.hub
    async with hub.db.read() as conn:
        if await bridge_store.get_mapped_by_txn(conn, p["txn_id"]) is not None:
            return Outcome("done", error="sent before (the job is repeated after its success was recorded)")
        bridge = await bridge_store.get_bridge(conn, p["bridge"])
        identity = await bridge_store.get_identity_by_id(conn, p["identity_id"])
        message = await msg_store.get_message_by_id(conn, p["message_id"])
        if bridge is None or identity is None or message is None:
            return Outcome("failed", error="the bridge, the person or the message is gone")
        conversation = await msg_store.get_conversation_by_id(conn, message.conversation_id)
        if identity.undeliverable_at is not None:
            return Outcome("failed", error=f"the address is undeliverable: {identity.undeliverable_reason}")
        if identity.network not in await bridge_store.networks_of(conn, conversation.id):
            return Outcome("failed", error=f"held: the conversation's owner has not allowed {identity.network} for it")
        if p["event"] == "create" and (message.deleted_at or message.removed_at):
            return Outcome("done", error="not sent: the message was withdrawn first")
        outbound = await build_outbound(conn, hub, bridge, bridges.connector_for(bridge), identity,
                                        conversation, message, p)
    remote_id = await deliver_outbound(bridges, bridge, outbound)
    async with hub.db.write() as conn:
        await bridge_store.put_mapping(conn, network=bridge.name, remote_id=remote_id, message_id=message.id,
                                       direction="out", identity_id=identity.id, txn_id=p["txn_id"],
                                       edit_count=1 if p["event"] == "edit" else 0)
    return Outcome("done")


# --- an account deleted: the bridged copies are told ---------------------------------------------------------


async def queue_leaving(conn: Conn, hub: Hub, actor: sa.Row, conversation_ids: list[str], author_ids: set[str],
                        own_identity_ids: set[str]) -> int:
    """Before an account's data is erased: one ``bridge.leave`` job per bridged person of each of its
    conversations who received its messages (or whose conversation it owned, which closes). Where the
    network can withdraw a message, each copy is withdrawn; otherwise one notice says that the account
    is gone and its messages were erased (what was delivered stays with them). The account's own
    identities are not told. Returns how many were queued."""
    rows = []
    for conv_id in conversation_ids:
        conversation = await msg_store.get_conversation_by_id(conn, conv_id)
        if conversation is None:
            continue
        for identity in await bridge_store.channel_targets(conn, conv_id):
            if identity.id in own_identity_ids or identity.remote_id.startswith("erased:"):
                continue
            sent = (await conn.execute(
                sa.select(bridge_messages.c.message_id).join(messages, messages.c.id == bridge_messages.c.message_id)
                .where(bridge_messages.c.identity_id == identity.id, bridge_messages.c.direction == "out",
                       messages.c.conversation_id == conv_id, messages.c.actor_id.in_(list(author_ids)))
                .order_by(bridge_messages.c.created_at))).scalars().all()
            sent = list(dict.fromkeys(sent))
            if not sent and conversation.owner_id != actor.id:
                continue
            rows.append(job_row("bridge.leave", {
                "bridge": identity.network, "identity_id": identity.id, "conversation_id": conv_id,
                "actor_id": actor.id, "owned": conversation.owner_id == actor.id,
                "deletes": [[m, new_id()] for m in sent], "txn_id": new_id()},
                dedupe_key=f"bridge.leave:{actor.id}:{conv_id}:{identity.id}", host=f"bridge:{identity.network}"))
    if rows:
        await put_jobs(conn, rows)
    return len(rows)


async def leave(bridges: Bridges, p: dict) -> Outcome:
    from hub import text as textmod

    hub = bridges.hub
    async with hub.db.read() as conn:
        if await bridge_store.get_mapped_by_txn(conn, p["txn_id"]) is not None:
            return Outcome("done", error="told before")
        bridge = await bridge_store.get_bridge(conn, p["bridge"])
        identity = await bridge_store.get_identity_by_id(conn, p["identity_id"])
        conversation = await msg_store.get_conversation_by_id(conn, p["conversation_id"])
        actor = await actor_store.get_actor_by_id(conn, p["actor_id"])
        if bridge is None or identity is None or conversation is None or actor is None:
            return Outcome("failed", error="the bridge, the person or the conversation is gone")
        if identity.undeliverable_at is not None or identity.remote_id.startswith("erased:"):
            return Outcome("failed", error="the address is undeliverable")
        connector = bridges.connector_for(bridge)
        caps = _capabilities_of(bridge, connector)
        participants = await conv_store.list_participants(conn, conversation.id)
        speaker = next((a for a in participants if a.local and not a.bridge_network and a.type != "Application"
                        and a.id != actor.id), actor)
        token = await bridge_store.reply_token(conn, conversation.id, speaker.id)
        references = await bridge_store.thread_remote_ids(conn, conversation.id, bridge.name)
        withdrawals, missing = [], 0
        for message_id, txn in p["deletes"]:
            if not caps.get("deletes") or await bridge_store.get_mapped_by_txn(conn, txn) is not None:
                continue
            earlier = [m for m in await bridge_store.mapped_for_message(conn, message_id)
                       if m.direction == "out" and m.identity_id == identity.id and not m.remote_id.endswith(
                           "#withdrawn")]
            if earlier:
                withdrawals.append((message_id, txn, earlier[0].remote_id))
            else:
                missing += 1
        anchor = p["deletes"][-1][0] if p["deletes"] else None
        if anchor is None:
            last = await conv_store.list_messages(conn, conversation.id)
            anchor = last[-1].id if last else None
    handle = f"@{actor.username}@{hub.cfg.domain}"
    common = {"network": bridge.name, "to": identity.remote_id.removeprefix("unverified:"),
              "to_name": identity.display_name, "from_username": speaker.username,
              "subject": conversation.subject, "reply_token": token, "references": references,
              "conversation_uri": conversation.uri}
    for message_id, txn, remote_id in withdrawals:
        text = f"Withdrawn: {handle} deleted their account."
        remote = await deliver_outbound(bridges, bridge, Outbound(
            **common, txn_id=txn, from_name=speaker.name or speaker.username, text=text,
            html=textmod.plain_to_html(text), kind="delete", target_remote_id=remote_id, automatic=True))
        async with hub.db.write() as conn:  # recorded, so a repeated job withdraws it once
            await bridge_store.put_mapping(conn, network=bridge.name, remote_id=f"{remote}#withdrawn",
                                           message_id=message_id, direction="out", identity_id=identity.id,
                                           txn_id=txn)
    if anchor is None:
        return Outcome("done", error="nothing was ever sent there")
    erased = ("were withdrawn" if caps.get("deletes") and p["deletes"] and not missing else
              "are erased here; the copies you received stay with you")
    text = (f"{handle} has deleted their account on {hub.cfg.domain}. Their messages in this conversation "
            f"{erased}." + (" The conversation was theirs and is now closed: nothing more will be added to it."
                            if p.get("owned") else ""))
    remote = await deliver_outbound(bridges, bridge, Outbound(
        **common, txn_id=p["txn_id"], from_name=hub.cfg.domain, text=text, html=textmod.plain_to_html(text),
        automatic=True))
    async with hub.db.write() as conn:
        await bridge_store.put_mapping(conn, network=bridge.name, remote_id=remote, message_id=anchor,
                                       direction="out", identity_id=identity.id, txn_id=p["txn_id"])
    return Outcome("done")


_LEADING_MENTIONS = re.compile(r"^(\s*@[\w.-]+(@[\w.-]+(:\d+)?)?\s*)+")


def strip_leading_mentions(text: str) -> str:
    """Fediverse replies start with their addressees' handles (Mastodon adds
    them); on another network they are noise, and name bridged actors."""
    stripped = _LEADING_MENTIONS.sub("", text, count=1)
    return stripped if stripped.strip() else text


async def deliver_outbound(bridges: Bridges, bridge: sa.Row, outbound: Outbound) -> str:
    """Hand one send to its bridge: in this process, or the operator's over HTTP."""
    connector = bridges.connector_for(bridge)
    if connector is not None:
        return await connector.send(outbound)
    if bridge.url:
        return await push_to_bridge(bridges.hub, bridge, outbound)
    raise SendError(f"the {bridge.name} bridge is not connected")


async def build_outbound(conn: Conn, hub: Hub, bridge: sa.Row, connector: Connector | None, identity: sa.Row,
                         conversation: sa.Row, message: sa.Row, p: dict) -> Outbound:
    caps = _capabilities_of(bridge, connector)
    author = await actor_store.get_actor_by_id(conn, message.actor_id)
    participants = await conv_store.list_participants(conn, conversation.id)
    # The address it comes from: the author's if local, else the conversation's
    # first local (non-bridged) participant's, saying who really wrote it.
    home = next((a for a in participants if a.local and not a.bridge_network and a.type != "Application"), None)
    speaker = author if author.local and not author.bridge_network else home
    if speaker is None:
        raise SendError("no local actor takes part in this conversation to send from", permanent=True)
    author_name = author.name or author.username
    relay = speaker.id != author.id
    body = strip_leading_mentions(message.content_text)
    if relay:
        domain = hub.cfg.domain if author.local else author.domain
        who = author_name if author.bridge_network else f"{author_name} (@{author.username}@{domain})"
        from_name = f"{author_name} via {speaker.name or speaker.username}"
        text = f"{who} wrote:\n\n{body}"
    else:
        from_name = speaker.name or speaker.username
        text = body
    kind = "message"
    target_remote_id = None
    event = p["event"]
    if event in ("edit", "delete", "remove"):
        earlier = [m for m in await bridge_store.mapped_for_message(conn, message.id)
                   if m.direction == "out" and m.identity_id == identity.id]
        target_remote_id = earlier[0].remote_id if earlier else None
        when = message.published_at.strftime("%Y-%m-%d %H:%M UTC")
        if event == "edit":
            if caps.get("edits") and target_remote_id:
                kind = "edit"
            else:
                kind = "correction"
                text = f"Correction to the message of {when}:\n\n{text}"
        else:
            if caps.get("deletes") and target_remote_id:
                kind = "delete"
            else:
                kind = "withdrawal"
                why = "withdrawn by its author" if event == "delete" else "removed from the conversation by its owner"
                text = f"The message of {when} from {author_name} was {why}."
    came_in = [m for m in await bridge_store.mapped_for_message(conn, message.id) if m.direction == "in"]
    hops = 1 + max((m.hops for m in came_in), default=0)
    rows = (await bridge_store.attachments_of(conn, [message.id]))[message.id]
    attachments = [OutboundAttachment(filename=a.filename, content_type=a.content_type,
                                      path=str(media.path_of(hub.cfg, a.sha256)), size=a.size,
                                      url=media.url_of(hub.cfg, a.id, a.filename)) for a in rows if a.sha256]
    linked = [(a.filename, a.remote_url) for a in rows if not a.sha256 and a.remote_url]  # kept by another server
    if attachments and not caps.get("attachments"):
        linked = [(a.filename, a.url) for a in attachments] + linked
        attachments = []
    if linked:
        links = "\n".join(f"- {name}: {url}" for name, url in linked)
        text = f"{text}\n\nAttachments:\n{links}"
    from hub import text as textmod

    return Outbound(
        network=bridge.name, txn_id=p["txn_id"], to=identity.remote_id.removeprefix("unverified:"),
        to_name=identity.display_name,
        from_username=speaker.username, from_name=from_name, text=text, html=textmod.plain_to_html(text),
        subject=conversation.subject, kind=kind, reply_token=await bridge_store.reply_token(conn, conversation.id, speaker.id),
        references=await bridge_store.thread_remote_ids(conn, conversation.id, bridge.name),
        target_remote_id=target_remote_id, attachments=attachments, conversation_uri=conversation.uri,
        message_uri=message.uri, hops=hops,
    )


async def push_to_bridge(hub: Hub, bridge: sa.Row, outbound: Outbound) -> str:
    """Hand a send to a bridge running in another process (its ``/send``)."""
    from hub.bridges.webhook import signed_headers
    from hub.errors import FetchError

    body = json.dumps(outbound.to_json()).encode()
    headers = signed_headers(bridge.secret or "", body)
    headers["X-Roundtable-Txn"] = outbound.txn_id
    try:
        resp = await hub.http.request("POST", bridge.url.rstrip("/") + "/send", body=body, headers=headers,
                                      follow_redirects=False)
    except FetchError as exc:
        raise SendError(f"cannot reach the {bridge.name} bridge: {exc}") from None
    if 200 <= resp.status < 300:
        try:
            remote_id = json.loads(resp.body)["remote_id"]
        except (ValueError, KeyError, TypeError):
            raise SendError("the bridge answered without a remote_id", permanent=False) from None
        return str(remote_id)
    detail = resp.body[:200].decode(errors="replace")
    raise SendError(f"the bridge answered {resp.status}: {detail}", permanent=400 <= resp.status < 500 and resp.status != 429)


# --- allowing networks ---------------------------------------------------------------------------------------


async def set_network_allowed(hub: Hub, acting: Acting, conversation: sa.Row, network: str, allowed: bool) -> dict:
    """The owner allows (or no longer allows) a network for a conversation."""
    acting.require("agent")
    if conversation.owner_id != acting.actor.id:
        raise Forbidden("only the conversation's owner decides where it is mirrored")
    async with hub.db.write() as conn:
        if not await _carriers(conn, conversation.id, {network}):
            raise UsageError(f"no bridge named {network!r} can carry this conversation")
        if allowed:
            await bridge_store.allow_network(conn, conversation.id, network, allowed_by_id=acting.actor.id)
        else:
            networks = await bridge_store.networks_of(conn, conversation.id)
            if networks.get(network):
                raise UsageError(f"{network} is where this conversation came from: it stays allowed")
            await bridge_store.disallow_network(conn, conversation.id, network)
        return await bridge_store.networks_of(conn, conversation.id)
