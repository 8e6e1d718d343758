"""Import an export archive (``hub/export.py``) into an account on this hub.

The conversations the actor owned come back owned by the account here, with
every message (their authors as they were; the old self becomes the new
actor), their files, the actor's private state and notes. Each gets a new
collection URI on this hub that names the old one as an alias, so messages
addressed to the old context are matched to it. Profile items come back;
grants do not (they name the old hub's data endpoint: grant again from here).
Conversations others own come back when their owners' hubs follow the
``Move`` (``roundtable move``). The account is created when it does not exist
and refused when it already has content. Identities the actor claimed on the
old hub's bridges: their bridged actors take part in the conversations they
were in (the old hub's bridge goes on carrying their mail), and each is
claimed anew here, by a code sent to it, where this hub bridges its network.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import sqlalchemy as sa

from hub import actors as actors_mod
from hub import media
from hub import text as textmod
from hub.context import Hub
from hub.errors import Conflict, UsageError
from hub.export import FORMAT
from hub.ids import new_id
from hub.store import actors as actor_store
from hub.store import bridges as bridge_store
from hub.store import consent as consent_store
from hub.store import conversations as conv_store
from hub.store import messages as msg_store
from hub.store.base import utcnow
from hub.store.schema import conversation_states, follows, messages

MAX_ARCHIVE_MEMBER = 64 * 1024 * 1024
MAX_ARCHIVE_FILES = 200_000
MAX_JSON_TOTAL = 512 * 1024 * 1024  # what the JSON files of an archive may add up to, unpacked


def _read(path: Path) -> dict:
    try:
        z = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise UsageError(f"{path} is not a Roundtable export archive: {exc}") from None
    with z:
        infos = z.infolist()
        if len(infos) > MAX_ARCHIVE_FILES:
            raise UsageError(f"the archive holds more than {MAX_ARCHIVE_FILES} files")
        names = {i.filename for i in infos}
        if "manifest.json" not in names or "actor.json" not in names:
            raise UsageError(f"{path} is not a Roundtable export archive (no manifest.json)")
        if sum(i.file_size for i in infos if not i.filename.startswith("media/")) > MAX_JSON_TOTAL:
            raise UsageError("the archive's documents are too large unpacked")

        def load(name: str):
            if z.getinfo(name).file_size > MAX_ARCHIVE_MEMBER:
                raise UsageError(f"{name} in the archive is too large")
            return json.loads(z.read(name))

        manifest = load("manifest.json")
        if manifest.get("format") != FORMAT:
            raise UsageError(f"unknown archive format {manifest.get('format')!r} (this hub reads {FORMAT})")
        data = {"manifest": manifest, "actor": load("actor.json"),
                "conversations": [load(n) for n in sorted(names) if n.startswith("conversations/")],
                "consent": load("consent.json") if "consent.json" in names else {},
                "identities": (load("identities.json") if "identities.json" in names else {}).get("items") or [],
                "media": {n.removeprefix("media/") for n in names
                          if n.startswith("media/") and z.getinfo(n).file_size <= MAX_ARCHIVE_MEMBER},
                "path": path}
    if not all(isinstance(c, dict) and isinstance(c.get("id"), str) for c in data["conversations"]):
        raise UsageError("a conversation in the archive is not an object with an id")
    return data


def _time(value) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return utcnow()
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def _source(note: dict) -> str | None:
    source = note.get("source")
    if isinstance(source, dict) and source.get("mediaType") == "text/plain" and isinstance(source.get("content"), str):
        return source["content"]
    return None


async def _has_content(conn, actor_id: str) -> bool:
    from hub.store.schema import profile_items, remote_identities

    for stmt in (sa.select(messages.c.id).where(messages.c.actor_id == actor_id).limit(1),
                 sa.select(profile_items.c.actor_id).where(profile_items.c.actor_id == actor_id).limit(1),
                 sa.select(remote_identities.c.id).where(remote_identities.c.claimed_actor_id == actor_id).limit(1),
                 sa.select(conversation_states.c.id).where(conversation_states.c.actor_id == actor_id).limit(1),
                 sa.select(follows.c.id).where(sa.or_(follows.c.follower_id == actor_id,
                                                      follows.c.followee_id == actor_id)).limit(1)):
        if (await conn.execute(stmt)).first() is not None:
            return True
    return False


async def _actor_for(hub: Hub, uri: str) -> sa.Row:
    """A participant or author: known here, else fetched, else kept as a name only (its hub may be gone)."""
    async with hub.db.read() as conn:
        row = await actor_store.get_actor_by_uri(conn, uri)
    if row is not None:
        return row
    if hub.federation is not None:
        from hub.errors import HubError
        from hub.federation import discovery

        try:
            return await discovery.ensure_actor(hub.federation, uri)
        except HubError:
            pass
    parts = urlsplit(uri)
    async with hub.db.write() as conn:
        await actor_store.upsert_remote_actor(conn, {
            "id": new_id(), "uri": uri, "type": "Person", "username": parts.path.rstrip("/").rsplit("/", 1)[-1][:255]
            or "unknown", "domain": parts.netloc, "url": uri}, [])
        return await actor_store.get_actor_by_uri(conn, uri)


async def import_archive(hub: Hub, path: str | Path, username: str, *, password: str | None = None) -> dict:
    data = await asyncio.to_thread(_read, Path(path))
    doc = data["actor"]
    old_uri = doc.get("id")
    if not isinstance(old_uri, str):
        raise UsageError("the archive's actor has no id")
    kind = "organization" if doc.get("type") == "Organization" else "person"
    async with hub.db.read() as conn:
        actor = await actor_store.get_local_actor(conn, username.lower())
        if actor is not None and await _has_content(conn, actor.id):
            raise Conflict(f"@{username} already has content: import into a new or empty account")
    created = actor is None
    if created:
        actor = await actors_mod.create_local_actor(hub, username, kind=kind, name=doc.get("name"),
                                                    password=password)
    changes = {}
    if doc.get("name") and not actor.name:
        changes["name"] = str(doc["name"])[:255]
    if doc.get("summary"):
        changes["summary"] = textmod.sanitize_html(str(doc["summary"]))
    if changes:
        actor = await actors_mod.update_profile(hub, actor, **changes)

    # The bridged actors that spoke for the identities the actor claimed (on the old hub, whose bridge
    # goes on receiving their mail) take part in the conversations they were in, so that what they
    # write there reaches the conversation here
    puppets: dict[str, list[str]] = {}
    for ident in data["identities"]:
        if isinstance(ident, dict) and isinstance(ident.get("actor"), str) and ident["actor"] != old_uri \
                and not hub.uris.is_local(ident["actor"]):  # never one of this hub's own actors
            for conv_uri in ident.get("conversations") or []:
                if isinstance(conv_uri, str):
                    puppets.setdefault(conv_uri, []).append(ident["actor"])

    with zipfile.ZipFile(data["path"]) as archive:
        restored, skipped = await _restore_conversations(hub, data, actor, old_uri, puppets, archive)
    profile = (data.get("consent") or {}).get("profile") or {}
    async with hub.db.write() as conn:
        for name, value in profile.items():
            if isinstance(name, str) and isinstance(value, str):
                await consent_store.set_item(conn, actor.id, name[:64], value[:2000])
    identities = await _claim_again(hub, actor, data["identities"])
    return {"actor": actor.uri, "created": created, "from": old_uri, "conversations": restored,
            "not_restored": skipped, "profile_items": len(profile), "identities": identities}


async def _restore_conversations(hub: Hub, data: dict, actor: sa.Row, old_uri: str,
                                 puppets: dict[str, list[str]], archive: zipfile.ZipFile) -> tuple[int, int]:
    """The conversations the old self owned, each under a new collection here naming the old one;
    ``(restored, not restored)``. Files are read from the open ``archive`` one at a time."""
    restored = skipped = 0
    for conv in data["conversations"]:
        if not conv.get("owned") or not isinstance(conv.get("messages"), list):
            skipped += 1
            continue
        named = [p["id"] for p in conv.get("participants") or [] if isinstance(p, dict) and isinstance(p.get("id"), str)]
        named += [n.get("attributedTo") for n in conv["messages"] if isinstance(n, dict)
                  and isinstance(n.get("attributedTo"), str)]
        if any(hub.uris.is_local(u) and u != actor.uri for u in named):
            # A conversation with someone of this hub is here already (this hub took part in it: the Move
            # repoints it); one that names our people is never taken from a file, which could put words
            # in their mouths
            skipped += 1
            continue
        others = {}
        for p in conv.get("participants") or []:
            if isinstance(p, dict) and isinstance(p.get("id"), str) and p["id"] != old_uri:
                others[p["id"]] = await _actor_for(hub, p["id"])
        for uri in puppets.get(conv.get("id"), []):
            if uri not in others:
                others[uri] = await _actor_for(hub, uri)
        authors = {}
        for note in conv["messages"]:
            author = note.get("attributedTo")
            if isinstance(author, str) and author != old_uri and author not in others and author not in authors:
                authors[author] = await _actor_for(hub, author)
        conv_id = new_id()
        async with hub.db.write() as conn:
            if await conv_store.get_conversation_by_any_uri(conn, conv["id"]) is not None:
                skipped += 1  # already here (this hub took part in it): the Move repoints it
                continue
            await msg_store.ensure_conversation(conn, uri=hub.uris.conversation(conv_id), owner_id=actor.id,
                                                local=True, conversation_id=conv_id)
            await conv_store.update_conversation(conn, conv_id, {
                "subject": conv.get("subject"), "visibility": conv.get("visibility") or "direct",
                "closed_at": _time(conv["closed"]) if conv.get("closed") else None})
            await conv_store.put_alias(conn, conv["id"], conv_id)  # the old collection names this one
            await conv_store.put_participant(conn, conv_id, actor.id, role="owner", added_by_id=actor.id)
            for other in others.values():
                await conv_store.put_participant(conn, conv_id, other.id, role="participant", added_by_id=actor.id)
            last = None
            for note in conv["messages"]:
                if not isinstance(note, dict) or not isinstance(note.get("id"), str):
                    continue
                author_uri = note.get("attributedTo")
                author = actor if author_uri == old_uri else (others.get(author_uri) or authors.get(author_uri))
                if author is None:
                    continue
                if await msg_store.get_message_by_uri(conn, note["id"]) is not None:
                    continue  # stored here already, in its own place: an archive moves nothing of this hub's
                html = textmod.sanitize_html(str(note.get("content") or ""))
                message_id = new_id()
                published = _time(note.get("published"))
                await msg_store.put_message(conn, {
                    "id": message_id, "uri": note["id"], "url": note.get("url") if isinstance(note.get("url"), str)
                    else note["id"], "actor_id": author.id, "conversation_id": conv_id,
                    "in_reply_to_uri": note.get("inReplyTo") if isinstance(note.get("inReplyTo"), str) else None,
                    "content_html": html, "content_text": _source(note) or textmod.html_to_text(html),
                    "visibility": "direct",
                    "to_uris": [], "cc_uris": [], "mention_uris": [], "local": False,
                    "network": str(note.get("roundtable:network") or "activitypub")[:32],
                    "published_at": published, "flags": ["imported"]})
                for att in note.get("attachment") or []:
                    sha = att.get("roundtable:sha256") if isinstance(att, dict) else None
                    if not isinstance(sha, str) or sha not in data["media"]:
                        continue
                    blob = await asyncio.to_thread(archive.read, f"media/{sha}")  # one file at a time
                    digest = await asyncio.to_thread(media.store, hub.cfg, blob)
                    await bridge_store.put_attachment(
                        conn, message_id=message_id, filename=str(att.get("name") or "file")[:255],
                        content_type=str(att.get("mediaType") or "application/octet-stream")[:255],
                        size=len(blob), sha256=digest)
                last = (published, message_id)
            state = await conv_store.ensure_state(conn, conv_id, actor.id, at=last[0] if last else None)
            wanted = conv.get("state") or {}
            await conv_store.update_state(conn, state.id, {
                "status": wanted.get("status") if wanted.get("status") in ("open", "pending", "resolved") else "open",
                "priority": int(wanted.get("priority") or 0), "team": wanted.get("team"),
                "last_message_at": last[0] if last else utcnow(), "last_message_id": last[1] if last else None})
            labels = [str(x)[:64] for x in wanted.get("labels") or [] if isinstance(x, str)]
            if labels:
                await conv_store.add_labels(conn, state.id, labels)
            for n in conv.get("privateNotes") or []:
                if isinstance(n, dict) and isinstance(n.get("text"), str):
                    await conv_store.put_note(conn, conversation_id=conv_id, actor_id=actor.id, account_id=None,
                                              text=n["text"])
            if last is not None:
                await conv_store.update_conversation(conn, conv_id, {"last_message_at": last[0]})
        restored += 1
    return restored, skipped


async def import_upload(hub: Hub, username: str, chunks) -> dict:
    """An archive sent over HTTP (``chunks``: an async iterator of bytes), written to a temporary file
    under the data folder as it arrives (refused past ``max_import_bytes``), then imported into
    ``username``'s account, which must be empty; the file is removed afterwards."""
    import os
    import tempfile

    from hub.errors import HubError

    folder = Path(hub.cfg.data) / "imports"
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=folder, prefix="upload-", suffix=".zip")
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > hub.cfg.max_import_bytes:
                    raise HubError(f"the archive is larger than {hub.cfg.max_import_bytes} bytes", status=413)
                out.write(chunk)
        if size == 0:
            raise UsageError("no archive was sent")
        return await import_archive(hub, name, username)
    finally:
        Path(name).unlink(missing_ok=True)


async def _claim_again(hub: Hub, actor: sa.Row, identities: list) -> list[dict]:
    """The identities claimed on the old hub, claimed anew here where this hub bridges their network: an
    archive proves nothing about an address (anyone can write one), so a code goes to it, as for any claim,
    and ``roundtable identity confirm`` finishes. Each comes back with its state: ``code_sent``,
    ``claimed`` (already this account's), ``taken`` (another account here claimed it), ``no_bridge`` (this
    hub does not bridge that network: the old hub's bridge goes on carrying it) or ``error``."""
    from hub.bridges import claims
    from hub.bridges.base import SendError
    from hub.errors import HubError
    from hub.inbox.access import Acting

    out = []
    acting = Acting(actor=actor, account=None, role="owner")
    for ident in identities[:50]:
        if not isinstance(ident, dict) or not isinstance(ident.get("network"), str) \
                or not isinstance(ident.get("remoteId"), str):
            continue
        network, remote_id = ident["network"][:32], ident["remoteId"][:512]
        entry = {"network": network, "remote_id": remote_id}
        async with hub.db.read() as conn:
            bridge = await bridge_store.get_bridge(conn, network)
            try:
                current = await bridge_store.get_identity(conn, network, claims.normalise(network, remote_id))
            except UsageError as exc:
                out.append({**entry, "state": "error", "error": str(exc)})
                continue
        if bridge is None:
            entry["state"] = "no_bridge"
        elif current is not None and current.claimed_actor_id == actor.id:
            entry["state"] = "claimed"
        elif current is not None and current.claimed_actor_id is not None:
            entry["state"] = "taken"
        else:
            try:
                started = await claims.start(hub, acting, network, remote_id)
                entry.update(state="code_sent", expires_at=started["expires_at"])
            except (HubError, SendError) as exc:  # e.g. this hub cannot send mail: the import stands
                entry.update(state="error", error=str(exc))
        out.append(entry)
    return out
