"""Export: everything that is an actor's in one ZIP archive.

``manifest.json``    what is inside, for whom, when, the format version
``actor.json``       the ActivityPub actor document (+ ``privateKeyPem`` unless left out)
``outbox.json``      an OrderedCollection of ``Create`` activities of every message the actor wrote, any network
``conversations/``   one JSON file per conversation the actor takes part in: for those it owns, every
                     message (ActivityStreams notes); for all, the actor's private inbox state (status,
                     labels, assignee, priority, its private notes)
``following.json``, ``followers.json``  OrderedCollections of actor URIs
``consent.json``     profile items, grants made and received, their signed receipts, the access log
``identities.json``  the bridged identities the actor claimed (an email address): network, address, the
                     bridged actor that speaks for it on the old hub, and the conversations it is in
``media/``           the files of those messages, by SHA-256
``mail.mbox``        the conversations that went through email, as RFC 822 messages (Python's ``mailbox``)
``index.html``       a human-readable copy of it all

The archive is built in a temporary file next to the target and renamed into
place, so a crash never leaves half an archive under the final name.
"""

from __future__ import annotations

import asyncio
import email.message
import email.utils
import html
import json
import mailbox
import os
import tempfile
import zipfile
from pathlib import Path

import sqlalchemy as sa

from hub import __version__, media
from hub.context import Hub
from hub.inbox.access import Acting, audit
from hub.store import actors as actor_store
from hub.store import bridges as bridge_store
from hub.store import consent as consent_store
from hub.store import conversations as conv_store
from hub.store import messages as msg_store
from hub.store.base import utcnow
from hub.store.schema import actors, conversation_channels, follows, messages
from hub.store.schema import conversations as conversations_t

FORMAT = "roundtable-export/1"
AS = "https://www.w3.org/ns/activitystreams"


async def collect(hub: Hub, acting: Acting, *, private_key: bool = True) -> dict:
    """Everything that goes into the archive, read in one go."""
    from hub.federation import render

    acting.require("owner")
    actor = acting.actor
    out: dict = {"files": {}, "media": {}, "mail": []}
    async with hub.db.read() as conn:
        actor_doc = render.actor_to_json(hub, actor)
        if private_key and actor.private_key_pem:
            actor_doc["privateKeyPem"] = actor.private_key_pem
        account = await actor_store.get_account_by_username(conn, actor.username)
        out["account"] = {"username": actor.username, "email": account.email if account else None,
                          "type": actor.type}
        out["actor"] = actor_doc

        own = list((await conn.execute(sa.select(messages).where(
            messages.c.actor_id == actor.id, messages.c.deleted_at.is_(None)).order_by(messages.c.id))).all())
        files = await bridge_store.attachments_of(conn, [m.id for m in own])
        outbox = []
        for m in own:
            conv = await msg_store.get_conversation_by_id(conn, m.conversation_id) if m.conversation_id else None
            mentioned = await actor_store.get_actors_by_uris(conn, list(m.mention_uris or []))
            note = render.note_to_json(hub, m, author_uri=actor.uri, context_uri=conv.uri if conv else None,
                                       mentioned=mentioned, with_context=False, attachments=files[m.id])
            note["roundtable:network"] = m.network
            outbox.append({"type": "Create", "actor": actor.uri, "published": note.get("published"), "object": note})
            for f in files[m.id]:
                if f.sha256:
                    out["media"][f.sha256] = f.filename
        out["outbox"] = {"@context": AS, "type": "OrderedCollection", "totalItems": len(outbox),
                         "orderedItems": outbox}

        conversations = []
        for state in await conv_store.list_inbox(conn, actor.id, limit=100_000):
            conv = await msg_store.get_conversation_by_id(conn, state.conversation_id)
            owned = conv.owner_id == actor.id
            participants = await conv_store.list_participants(conn, conv.id)
            labels = (await conv_store.labels_of(conn, [state.id])).get(state.id, [])
            notes = await conv_store.list_notes(conn, conv.id, actor.id)
            entry = {
                "id": conv.uri, "owner": next((p.uri for p in participants if p.id == conv.owner_id), None),
                "owned": owned, "subject": conv.subject, "visibility": conv.visibility,
                "closed": conv.closed_at.isoformat() if conv.closed_at else None,
                "participants": [{"id": p.uri, "role": p.role} for p in participants],
                "state": {"status": state.status, "labels": labels, "priority": state.priority,
                          "team": state.team, "snoozed_until": state.snoozed_until.isoformat()
                          if state.snoozed_until else None},
                "privateNotes": [{"text": n.text, "published": n.created_at.isoformat()} for n in notes],
            }
            if owned:
                rows = await conv_store.list_messages(conn, conv.id, limit=100_000)
                conv_files = await bridge_store.attachments_of(conn, [r.id for r in rows])
                notes_out = []
                for r in rows:
                    mentioned = await actor_store.get_actors_by_uris(conn, list(r.mention_uris or []))
                    note = render.note_to_json(hub, r, author_uri=r.author_uri, context_uri=conv.uri,
                                               mentioned=mentioned, with_context=False,
                                               attachments=conv_files[r.id])
                    note["roundtable:network"] = r.network
                    note["roundtable:authorName"] = r.author_name or r.author_username
                    note["source"] = {"content": r.content_text, "mediaType": "text/plain"}  # as written
                    for doc, f in zip(note.get("attachment") or [], conv_files[r.id], strict=False):
                        if f.sha256:  # the file is in media/ under this name: an import restores it
                            doc["roundtable:sha256"] = f.sha256
                    notes_out.append(note)
                    for f in conv_files[r.id]:
                        if f.sha256:
                            out["media"][f.sha256] = f.filename
                entry["messages"] = notes_out
                if any(r.network == "email" for r in rows):
                    out["mail"].append((entry, rows))
            conversations.append(entry)
        out["conversations"] = conversations

        following = (await conn.execute(sa.select(actors.c.uri).join(
            follows, follows.c.followee_id == actors.c.id).where(
            follows.c.follower_id == actor.id, follows.c.state == "accepted"))).scalars()
        followers = (await conn.execute(sa.select(actors.c.uri).join(
            follows, follows.c.follower_id == actors.c.id).where(
            follows.c.followee_id == actor.id, follows.c.state == "accepted"))).scalars()
        out["following"] = sorted(following)
        out["followers"] = sorted(followers)

        identities = []
        for ident in await bridge_store.identities_claimed_by(conn, actor.id):
            puppet = await actor_store.get_actor_by_id(conn, ident.actor_id)
            channels = list((await conn.execute(sa.select(conversations_t.c.uri).join(
                conversation_channels, conversation_channels.c.conversation_id == conversations_t.c.id).where(
                conversation_channels.c.identity_id == ident.id))).scalars())
            identities.append({"network": ident.network, "remoteId": ident.remote_id, "name": ident.display_name,
                               "actor": puppet.uri if puppet else None, "claimed": ident.claimed_at.isoformat(),
                               "conversations": sorted(channels)})
        out["identities"] = identities

        made = await consent_store.list_grants(conn, side="customer", customer_id=actor.id)
        received = await consent_store.list_grants(conn, side="organization", organization_id=actor.id)
        receipts = await consent_store.receipts_of(conn, [g.id for g in made + received])
        from hub import consent

        out["consent"] = {
            "profile": await consent_store.items_of(conn, actor.id),
            "grants": [consent.grant_json(g) for g in made + received],
            "receipts": [r.document for r in receipts],
            "reads": [{"at": r.created_at.isoformat(), "reader": r.reader_uri, "purpose": r.purpose,
                       "items": list(r.items)} for r in await consent_store.reads_of(conn, actor.id, limit=100_000)],
        }
    return out


def _collection(items: list[str]) -> dict:
    return {"@context": AS, "type": "OrderedCollection", "totalItems": len(items), "orderedItems": items}


def _mail_of(entry: dict, rows) -> list[email.message.EmailMessage]:
    out = []
    for r in rows:
        msg = email.message.EmailMessage()
        name = r.author_name or r.author_username
        address = f"{r.author_username}@{r.author_domain}" if r.author_domain else r.author_username
        msg["From"] = email.utils.formataddr((name, address.replace("__", "@", 1) if "__" in address else address))
        msg["Subject"] = entry.get("subject") or "(conversation)"
        msg["Date"] = email.utils.format_datetime(r.published_at)
        msg["Message-ID"] = f"<{r.id}@{r.uri.split('/')[2]}>"
        msg["X-Roundtable-Conversation"] = entry["id"]
        msg["X-Roundtable-Network"] = r.network
        msg.set_content(r.content_text or "")
        out.append(msg)
    return out


def _html(data: dict) -> str:
    e = html.escape
    actor = data["actor"]
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Export of "
             f"{e(actor.get('preferredUsername', ''))}</title><style>body{{font:16px/1.5 system-ui,sans-serif;"
             "max-width:48rem;margin:2rem auto;padding:0 1rem}}.m{{border-left:3px solid #ccd;padding-left:.75rem;"
             "margin:.75rem 0}}.meta{{color:#555;font-size:.9rem}}</style></head><body>",
             f"<h1>{e(actor.get('name') or actor.get('preferredUsername', ''))}</h1>",
             f"<p class='meta'>{e(actor['id'])} · exported {e(data['created'])}</p>"]
    for conv in data["conversations"]:
        parts.append(f"<h2>{e(conv.get('subject') or conv['id'])}</h2><p class='meta'>{e(conv['id'])} · "
                     f"{'owned' if conv['owned'] else 'taking part'} · {e(conv['state']['status'])}</p>")
        for m in conv.get("messages", []):
            parts.append(f"<div class='m'><p class='meta'>{e(m.get('roundtable:authorName') or '')} · "
                         f"{e(m.get('published') or '')} · via {e(m.get('roundtable:network') or '')}</p>"
                         f"{m.get('content') or ''}</div>")
        for n in conv["privateNotes"]:
            parts.append(f"<div class='m'><p class='meta'>private note · {e(n['published'])}</p>"
                         f"<p>{e(n['text'])}</p></div>")
    if data.get("identities"):
        parts.append("<h2>Addresses you claimed</h2><ul>" + "".join(
            f"<li>{e(i['remoteId'])} on {e(i['network'])}, since {e(i['claimed'])}</li>"
            for i in data["identities"]) + "</ul>")
    consent = data["consent"]
    if consent["profile"]:
        parts.append("<h2>Your data</h2><dl>" + "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>"
                                                         for k, v in consent["profile"].items()) + "</dl>")
    if consent["reads"]:
        parts.append("<h2>Every read</h2><ul>" + "".join(
            f"<li>{e(r['reader'])} read {e(', '.join(r['items']))} for {e(r['purpose'])} on {e(r['at'])}</li>"
            for r in consent["reads"]) + "</ul>")
    parts.append("</body></html>")
    return "".join(parts)


def _write(cfg, data: dict, out_path: Path) -> dict:
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_path.parent, prefix=".export-", suffix=".zip")
    os.close(fd)
    names = []
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
            def put(name: str, value) -> None:
                names.append(name)
                z.writestr(name, value if isinstance(value, (str, bytes)) else json.dumps(
                    value, indent=2, ensure_ascii=False, default=str))

            put("actor.json", data["actor"])
            put("outbox.json", data["outbox"])
            for conv in data["conversations"]:
                put(f"conversations/{conv['id'].rstrip('/').rsplit('/', 1)[-1]}.json", conv)
            put("following.json", _collection(data["following"]))
            put("followers.json", _collection(data["followers"]))
            put("consent.json", data["consent"])
            put("identities.json", {"items": data["identities"]})
            for sha, _filename in data["media"].items():
                path = media.path_of(cfg, sha)
                if path.exists():
                    names.append(f"media/{sha}")
                    z.write(path, f"media/{sha}")
            if data["mail"]:
                fd2, box_path = tempfile.mkstemp(dir=out_path.parent, prefix=".mbox-")
                os.close(fd2)
                os.unlink(box_path)
                box = mailbox.mbox(box_path)
                try:
                    for entry, rows in data["mail"]:
                        for msg in _mail_of(entry, rows):
                            box.add(msg)
                    box.flush()
                finally:
                    box.close()
                names.append("mail.mbox")
                z.write(box_path, "mail.mbox")
                os.unlink(box_path)
            put("index.html", _html(data))
            manifest = {"format": FORMAT, "software": f"Roundtable {__version__}", "created": data["created"],
                        "actor": data["actor"]["id"], "account": data["account"],
                        "privateKey": "privateKeyPem" in data["actor"], "files": sorted(names)}
            put("manifest.json", manifest)
        os.replace(tmp, out_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return manifest


async def export(hub: Hub, acting: Acting, out_path: str | Path, *, private_key: bool = True) -> dict:
    """Write the actor's archive to ``out_path``; returns its manifest."""
    data = await collect(hub, acting, private_key=private_key)
    data["created"] = utcnow().isoformat()
    manifest = await asyncio.to_thread(_write, hub.cfg, data, Path(out_path))
    async with hub.db.write() as conn:
        await audit(conn, acting, "account.export", private_key=private_key)
    return manifest



# --- in the background: ``export.build`` jobs, progress, an expiring download link ------------------

LINK_HOURS = 24
KIND = "export.build"


def _dir(cfg) -> Path:
    return cfg.data / "exports"


def file_of(cfg, export_id: str) -> Path:
    return _dir(cfg) / f"{export_id}.zip"


async def request_export(hub: Hub, acting: Acting, *, private_key: bool = True) -> dict:
    """Queue an archive of the actor; returns the export (with the download link's secret, shown once)."""
    import hashlib
    import secrets

    from hub.ids import new_id
    from hub.store.jobs import job_row, put_jobs
    from hub.store.schema import exports

    acting.require("owner")
    export_id, secret = new_id(), secrets.token_urlsafe(24)
    async with hub.db.write() as conn:
        await conn.execute(sa.insert(exports).values(
            id=export_id, actor_id=acting.actor.id, account_id=acting.account_id, private_key=private_key,
            state="queued", progress=0, token_hash=hashlib.sha256(secret.encode()).hexdigest(), created_at=utcnow()))
        await put_jobs(conn, [job_row(KIND, {"export_id": export_id})])
        await audit(conn, acting, "account.export.request", private_key=private_key)
    hub.wake()
    return {**await export_status(hub, acting, export_id), "download": download_url(hub, export_id, secret)}


def download_url(hub: Hub, export_id: str, secret: str) -> str:
    return f"{hub.cfg.base_url}/exports/{export_id}/{secret}/archive.zip"


async def export_status(hub: Hub, acting: Acting, export_id: str) -> dict:
    from hub.errors import NotFound
    from hub.store.schema import exports

    async with hub.db.read() as conn:
        row = (await conn.execute(sa.select(exports).where(exports.c.id == export_id,
                                                           exports.c.actor_id == acting.actor.id))).first()
    if row is None:
        raise NotFound("no such export")
    state = "expired" if row.expires_at is not None and row.expires_at <= utcnow() else row.state
    return {"id": row.id, "state": state, "progress": row.progress, "size": row.size, "error": row.error,
            "created": row.created_at.isoformat(), "expires": row.expires_at.isoformat() if row.expires_at else None}


async def list_exports(hub: Hub, acting: Acting) -> list[dict]:
    from hub.store.schema import exports

    async with hub.db.read() as conn:
        ids = list((await conn.execute(sa.select(exports.c.id).where(exports.c.actor_id == acting.actor.id)
                                       .order_by(exports.c.id.desc()).limit(20))).scalars())
    return [await export_status(hub, acting, i) for i in ids]


async def handle_build(hub: Hub, job) -> object:
    from hub.inbox import access
    from hub.jobs import Outcome
    from hub.store.schema import exports

    export_id = job.payload["export_id"]

    async def progress(state: str, percent: int, **extra) -> None:
        async with hub.db.write() as conn:
            await conn.execute(sa.update(exports).where(exports.c.id == export_id).values(
                state=state, progress=percent, **extra))

    async with hub.db.read() as conn:
        row = (await conn.execute(sa.select(exports).where(exports.c.id == export_id))).first()
        actor = await actor_store.get_actor_by_id(conn, row.actor_id) if row is not None else None
    if row is None or actor is None or actor.deleted_at is not None:
        return Outcome("done", error="the export or its actor is gone")
    if row.state == "done":
        return Outcome("done", error="built before")
    acting = await access.acting_as(hub, actor.username)
    await progress("building", 10)
    data = await collect(hub, acting, private_key=row.private_key)
    data["created"] = utcnow().isoformat()
    await progress("building", 60)
    path = file_of(hub.cfg, export_id)
    await asyncio.to_thread(_write, hub.cfg, data, path)
    now = utcnow()
    import datetime as _dt

    await progress("done", 100, size=path.stat().st_size, finished_at=now,
                   expires_at=now + _dt.timedelta(hours=LINK_HOURS))
    return Outcome("done")


async def expire_files(hub: Hub) -> int:
    """Archives whose link has expired are deleted from disk (periodic)."""
    from hub.store.schema import exports

    async with hub.db.write() as conn:
        rows = list((await conn.execute(sa.select(exports.c.id).where(
            exports.c.state == "done", exports.c.expires_at <= utcnow()))).scalars())
        if rows:
            await conn.execute(sa.update(exports).where(exports.c.id.in_(rows)).values(state="expired"))
    for export_id in rows:
        file_of(hub.cfg, export_id).unlink(missing_ok=True)
    return len(rows)


def register(hub: Hub) -> None:
    hub.registry.register(KIND, lambda job: handle_build(hub, job))
    hub.registry.every("export.expire", lambda: expire_files(hub))


def setup(app, hub: Hub) -> None:
    """``GET /exports/{id}/{secret}/archive.zip``: the archive, for whoever holds the link, until it expires."""
    import hashlib
    import hmac

    from aiohttp import web

    from hub.ids import is_id
    from hub.store.schema import exports

    async def download(request: web.Request) -> web.StreamResponse:
        export_id, secret = request.match_info["id"], request.match_info["secret"]
        row = None
        if is_id(export_id) and len(secret) < 100:
            async with hub.db.read() as conn:
                row = (await conn.execute(sa.select(exports).where(exports.c.id == export_id))).first()
        if row is None or not hmac.compare_digest(row.token_hash, hashlib.sha256(secret.encode()).hexdigest()):
            raise web.HTTPNotFound(text="no such export")
        if row.state in ("queued", "building"):
            return web.json_response({"state": row.state, "progress": row.progress}, status=202)
        if row.state != "done" or (row.expires_at is not None and row.expires_at <= utcnow()):
            raise web.HTTPGone(text="this download link has expired: ask for a new export")
        path = file_of(hub.cfg, export_id)
        if not path.exists():
            raise web.HTTPGone(text="the archive is no longer kept")
        return web.FileResponse(path, headers={
            "Content-Type": "application/zip", "Cache-Control": "private, no-store",
            "Content-Disposition": f'attachment; filename="roundtable-export-{export_id}.zip"'})

    app.router.add_get("/exports/{id}/{secret}/archive.zip", download)
