"""The one-shot ``roundtable`` commands (everything but serve and worker)."""

from __future__ import annotations

import argparse
import os
import secrets
import sys

import sqlalchemy as sa

from hub import actors, outbox
from hub.app import open_hub
from hub.cli import print_json
from hub.config import Config
from hub.context import Hub
from hub.db import create_engine, migrate
from hub.errors import NotFound, UsageError
from hub.federation import discovery, render
from hub.store import actors as actor_store
from hub.store import jobs as job_store
from hub.store import messages as msg_store
from hub.store import social


async def run(cfg: Config, args: argparse.Namespace) -> int:
    if args.command == "migrate":
        engine = create_engine(cfg)
        try:
            applied = await migrate(engine)
        finally:
            await engine.dispose()
        print("applied " + ", ".join(applied) if applied else "database is up to date")
        return 0
    hub = await open_hub(cfg)
    try:
        from hub.commands_admin import COMMANDS as ADMIN_COMMANDS
        from hub.commands_bridge import COMMANDS as BRIDGE_COMMANDS
        from hub.commands_consent import COMMANDS as CONSENT_COMMANDS
        from hub.commands_export import COMMANDS as EXPORT_COMMANDS
        from hub.commands_inbox import COMMANDS as INBOX_COMMANDS

        handler = (COMMANDS.get(args.command) or INBOX_COMMANDS.get(args.command) or ADMIN_COMMANDS.get(args.command)
                   or CONSENT_COMMANDS.get(args.command) or EXPORT_COMMANDS.get(args.command)
                   or BRIDGE_COMMANDS[args.command])
        return await handler(hub, args) or 0
    finally:
        await hub.close()


async def _resolve(hub: Hub, target: str) -> sa.Row:
    return await discovery.resolve_handle(hub.federation, target)


def _handle(hub: Hub, actor: sa.Row) -> str:
    return "@" + outbox.handle_of(actor, hub)


# --- actors ------------------------------------------------------------------------------


async def cmd_demo(hub: Hub, args) -> int:
    creds_file = hub.cfg.data / "demo-credentials.txt"
    async with hub.db.read() as conn:
        existing = await actor_store.list_local_actors(conn)
    if existing:
        print(f"Demo data not created: {len(existing)} actor(s) exist already.")
        if creds_file.exists():
            print(creds_file.read_text().rstrip())
        return 0
    lines = [f"Demo accounts on {hub.cfg.base_url} (username and password of each login):"]
    for username, kind, name, email in (
        ("acme", "organization", "Acme Corporation", "support@acme.example"),
        ("alice", "person", "Alice", "alice@example.org"),
    ):
        password = secrets.token_urlsafe(12)
        await actors.create_local_actor(hub, username, kind=kind, name=name, email=email, password=password)
        line = f"  {kind:12} @{username}@{hub.cfg.domain}  password: {password}"
        if kind == "organization":  # the organization running the instance administers it (/admin)
            from hub import moderation

            await moderation.set_admin(hub, username, True)
            line += "  (administers this instance: /admin)"
        lines.append(line)
    text = "\n".join(lines)
    hub.cfg.data.mkdir(parents=True, exist_ok=True)
    fd = os.open(creds_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text + "\n")
    print(text)
    return 0


async def cmd_actor(hub: Hub, args) -> int:
    if args.actor_command == "add":
        password = None
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
            if not password:
                raise UsageError("no password on stdin")
        row = await actors.create_local_actor(
            hub, args.username, kind=args.kind, name=args.name, email=args.email, password=password
        )
        print(row.uri)
        return 0
    if args.actor_command == "list":
        async with hub.db.read() as conn:
            rows = await actor_store.list_local_actors(conn)
        if args.json:
            print_json([
                {"username": r.username, "kind": r.type.lower(), "type": r.type, "uri": r.uri, "name": r.name,
                 "handle": f"@{r.username}@{hub.cfg.domain}"}
                for r in rows
            ])
        else:
            for r in rows:
                print(f"{r.type.lower():13} @{r.username}@{hub.cfg.domain}  {r.name or ''}  {r.uri}")
        return 0
    if args.actor_command == "set":
        actor = await actors.get_local_actor(hub, args.username)
        changes: dict = {}
        if args.name is not None:
            changes["name"] = args.name
        if args.summary is not None:
            from hub.text import plain_to_html

            changes["summary"] = plain_to_html(args.summary)
        if args.manually_approves_followers is not None:
            changes["manually_approves_followers"] = args.manually_approves_followers == "yes"
        if args.discoverable is not None:
            changes["discoverable"] = args.discoverable == "yes"
        if getattr(args, "consent_purposes", None) is not None:
            from hub import consent

            purposes = consent.check_purposes(args.consent_purposes.split(",")) if args.consent_purposes else []
            await actors.update_settings(hub, actor, dict(actor.settings or {}, consent_purposes=purposes))
            actor = await actors.get_local_actor(hub, args.username)
            if not changes and args.field is None and args.signature is None:
                print(f"@{actor.username} accepts data grants for {', '.join(purposes) or 'no purpose'} by itself")
                return 0
        if args.signature is not None:
            settings = dict(actor.settings or {}, agent_signature=args.signature)
            await actors.update_settings(hub, actor, settings)
            if not changes and args.field is None:
                print(f"updated @{actor.username}@{hub.cfg.domain}")
                return 0
        if args.field is not None:
            fields = []
            for item in args.field:
                name, sep, value = item.partition("=")
                if not sep or not name:
                    raise UsageError(f"invalid field {item!r}: expected NAME=VALUE")
                from hub.text import plain_to_html

                fields.append({"name": name, "value": plain_to_html(value).removeprefix("<p>").removesuffix("</p>")})
            changes["fields"] = fields
        if not changes:
            raise UsageError("nothing to change")
        await actors.update_profile(hub, actor, **changes)
        print(f"updated @{actor.username}@{hub.cfg.domain}")
        return 0
    raise UsageError("unknown actor command")


# --- relationships -----------------------------------------------------------------------


async def cmd_follow(hub: Hub, args) -> int:
    me = await actors.get_local_actor(hub, args.as_username)
    target = await _resolve(hub, args.target)
    row = await outbox.follow(hub, me, target)
    state = "following" if row.state == "accepted" else "requested"
    print(f"{state} {_handle(hub, target)} {target.uri}")
    return 0


async def cmd_unfollow(hub: Hub, args) -> int:
    me = await actors.get_local_actor(hub, args.as_username)
    target = await _resolve(hub, args.target)
    await outbox.unfollow(hub, me, target)
    print(f"unfollowed {_handle(hub, target)}")
    return 0


async def cmd_block(hub: Hub, args) -> int:
    me = await actors.get_local_actor(hub, args.as_username)
    target = await _resolve(hub, args.target)
    if args.command == "block":
        await outbox.block(hub, me, target)
        print(f"blocked {_handle(hub, target)}")
    else:
        await outbox.unblock(hub, me, target)
        print(f"unblocked {_handle(hub, target)}")
    return 0


async def cmd_follow_requests(hub: Hub, args) -> int:
    me = await actors.get_local_actor(hub, args.as_username)
    if args.action == "list":
        async with hub.db.read() as conn:
            rows = await social.list_pending_follow_requests(conn, me.id)
        for r in rows:
            print(f"@{r.username}@{r.domain or hub.cfg.domain}  {r.follower_uri}")
        return 0
    if not args.target:
        raise UsageError("name the follower to accept or reject")
    follower = await _resolve(hub, args.target)
    await outbox.answer_follow_request(hub, me, follower, accept=args.action == "accept")
    print(f"{args.action}ed {_handle(hub, follower)}")
    return 0


# --- notes ------------------------------------------------------------------------------


async def _message_by_uri(hub: Hub, uri: str) -> sa.Row:
    from hub.federation.handlers import ensure_note

    row = await ensure_note(hub.federation, uri)
    if row is None:
        raise NotFound(f"no note {uri} (or it has been deleted)")
    return row


async def cmd_post(hub: Hub, args) -> int:
    me = await actors.get_local_actor(hub, args.as_username)
    recipients = [await _resolve(hub, h) for h in args.to]
    parent = await _message_by_uri(hub, args.reply_to) if args.reply_to else None
    if args.visibility == "direct" and not recipients and parent is None:
        raise UsageError("a direct note needs at least one --to")
    row = await outbox.post_note(
        hub, me, args.text, visibility=args.visibility, recipients=recipients, in_reply_to=parent, summary=args.summary
    )
    print(row.uri)
    return 0


async def cmd_edit(hub: Hub, args) -> int:
    me = await actors.get_local_actor(hub, args.as_username)
    message = await outbox.get_own_message(hub, me, args.uri)
    await outbox.edit_note(hub, me, message, args.text)
    print(message.uri)
    return 0


async def cmd_delete(hub: Hub, args) -> int:
    me = await actors.get_local_actor(hub, args.as_username)
    message = await outbox.get_own_message(hub, me, args.uri)
    await outbox.delete_note(hub, me, message)
    print(f"deleted {message.uri}")
    return 0


async def cmd_react(hub: Hub, args) -> int:
    me = await actors.get_local_actor(hub, args.as_username)
    message = await _message_by_uri(hub, args.uri)
    kind = "like" if args.command == "like" else "announce"
    await outbox.react(hub, me, message, kind, undo=args.undo)
    done = {"like": "liked", "boost": "boosted"}[args.command]
    print(f"{'un' if args.undo else ''}{done} {message.uri}")
    return 0


def timeline_entry(row: sa.Row) -> dict:
    return {
        "uri": row.uri,
        "author": row.author_uri,
        "text": row.content_text,
        "html": row.content_html,
        "summary": row.summary,
        "in_reply_to": row.in_reply_to_uri,
        "context": row.context_uri,
        "visibility": row.visibility,
        "published": render.iso(row.published_at),
        "edited": render.iso(row.edited_at),
        "reason": row.reason,
        "via": row.via_uri,
    }


async def cmd_timeline(hub: Hub, args) -> int:
    me = await actors.get_local_actor(hub, args.as_username)
    async with hub.db.read() as conn:
        rows = await msg_store.list_timeline(conn, me.id, limit=max(1, min(args.limit, 1000)))
    entries = [timeline_entry(r) for r in rows]
    if args.json:
        print_json(entries)
    else:
        for e in entries:
            print(f"{e['published']}  {e['author']}  [{e['visibility']}]\n  {e['text']}\n  {e['uri']}")
    return 0


async def cmd_deliveries(hub: Hub, args) -> int:
    async with hub.db.read() as conn:
        activity_ids = []
        message = await msg_store.get_message_by_uri(conn, args.uri)
        if message is not None:
            activity_ids = await job_store.list_activity_ids_for_object(conn, message.uri)
        else:
            ref = hub.uris.parse(args.uri)
            if ref is None or ref.kind != "activity":
                raise NotFound(f"no local note or activity {args.uri}")
            activity_ids = [ref.id]
        out = []
        for activity_id in activity_ids:
            activity = await job_store.get_activity_by_id(conn, activity_id)
            for job in await job_store.list_deliveries(conn, activity_id):
                out.append({
                    "activity": activity.uri if activity else activity_id,
                    "type": activity.type if activity else None,
                    "inbox": job.payload["inbox"],
                    "state": {"done": "delivered", "running": "queued"}.get(job.state, job.state),
                    "attempts": job.attempts,
                    "last_status": job.last_status,
                    "last_error": job.last_error,
                    "next_try_at": render.iso(job.next_try_at) if job.state == "queued" else None,
                })
    if args.json:
        print_json(out)
    else:
        for d in out:
            print(f"{d['type']:8} {d['state']:10} {d['inbox']}  attempts={d['attempts']} status={d['last_status']}"
                  + (f"  {d['last_error']}" if d["last_error"] else ""))
    return 0


async def cmd_jobs(hub: Hub, args) -> int:
    async with hub.db.read() as conn:
        counts = {s: await job_store.count_jobs(conn, states=(s,)) for s in ("queued", "running", "done", "failed", "gone")}
    if args.json:
        print_json(counts)
    else:
        print("  ".join(f"{k}={v}" for k, v in counts.items()))
    return 0


async def cmd_invite(hub: Hub, args) -> int:
    from hub import sessions

    code = await sessions.create_invitation(hub, created_by_id=None, days=args.days or None)
    print(code)
    print(f"sign up with it at {hub.cfg.base_url}/signup?invitation={code}", file=sys.stderr)
    return 0


COMMANDS = {
    "invite": cmd_invite,
    "demo": cmd_demo,
    "actor": cmd_actor,
    "follow": cmd_follow,
    "unfollow": cmd_unfollow,
    "block": cmd_block,
    "unblock": cmd_block,
    "follow-requests": cmd_follow_requests,
    "post": cmd_post,
    "edit": cmd_edit,
    "delete": cmd_delete,
    "like": cmd_react,
    "boost": cmd_react,
    "timeline": cmd_timeline,
    "deliveries": cmd_deliveries,
    "jobs": cmd_jobs,
}
