"""``roundtable bridge|identity`` and ``conversation allow|deny``: bridges from the command line.

JSON outputs (``--json``) are documented in the README ("Bridges").
"""

from __future__ import annotations

from hub.bridges import claims
from hub.bridges import core as bridge_core
from hub.cli import print_json
from hub.context import Hub
from hub.errors import NotFound, UsageError
from hub.inbox import access, conversations
from hub.store import bridges as bridge_store


def bridge_json(row) -> dict:
    settings = row.settings or {}
    return {
        "name": row.name, "kind": row.kind, "state": row.state, "state_detail": row.state_detail,
        "state_at": row.state_at.isoformat() if row.state_at else None, "url": row.url,
        "capabilities": settings.get("capabilities") or {}, "external": bool(row.token_hash),
    }


def item_json(row) -> dict:
    return {
        "id": row.id, "bridge": row.bridge, "status": row.status, "flags": list(row.flags or []), "reason": row.reason,
        "sender": row.sender, "recipients": list(row.recipients or []), "size": row.size,
        "message_id": row.message_id, "received_at": row.created_at.isoformat(),
    }


async def cmd_bridge(hub: Hub, args) -> int:
    sub = args.bridge_command
    if sub == "list":
        async with hub.db.read() as conn:
            rows = await bridge_store.list_bridges(conn)
        out = [bridge_json(r) for r in rows]
        if args.json:
            print_json(out)
        else:
            for b in out:
                print(f"{b['name']:12} {b['kind']:8} {b['state']:16} {b['state_detail'] or ''}")
    elif sub == "items":
        async with hub.db.read() as conn:
            rows = await bridge_store.list_items(conn, bridge=args.name, status=args.status,
                                                 limit=max(1, min(args.limit, 1000)))
        out = [item_json(r) for r in rows]
        if args.json:
            print_json(out)
        else:
            for i in out:
                print(f"{i['received_at']}  {i['bridge']:8} {i['status']:8} {','.join(i['flags']):30} {i['sender'] or ''}"
                      + (f"  ({i['reason']})" if i["reason"] else ""))
    elif sub == "add":
        from hub.bridges import api as bridge_api

        created = await bridge_api.create_bridge(hub, args.name, kind=args.kind, url=args.url, owner=args.owner,
                                                 capabilities=args.capability)
        print_json(created)
    elif sub == "remove":
        async with hub.db.write() as conn:
            if not await bridge_store.delete_bridge(conn, args.name):
                raise NotFound(f"no bridge named {args.name!r}")
        print(f"removed bridge {args.name}")
    elif sub == "imap":
        return await cmd_bridge_imap(hub, args)
    return 0


def _imap_line(box: dict) -> str:
    return (f"{box['id']:14} @{box['owner']:12} {box['user']}@{box['host']}:{box['port']} ({box['tls']}) "
            f"{box['folder']}  last uid {box.get('last_uid') or 0}"
            + (f", {box['skipped']} skipped (too large)" if box.get("skipped") else ""))


async def cmd_bridge_imap(hub: Hub, args) -> int:
    """``roundtable bridge imap add|list|remove``; the password is read from
    stdin only, and never printed (see :func:`hub.bridges.email.imap.public`)."""
    import sys

    from hub.bridges.email import imap

    if args.imap_command == "add":
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise UsageError("no password on stdin")
        port = args.port or (993 if args.tls == "tls" else 143)
        box = await imap.add_mailbox(hub, args.owner, host=args.host, port=port, user=args.user, password=password,
                                     tls=args.tls, folder=args.folder, skip_existing=args.skip_existing)
        if args.json:
            print_json(box)
        else:
            print(f"added {_imap_line(box)}")
    elif args.imap_command == "list":
        boxes = [imap.public(b) for b in await imap.list_mailboxes(hub.db)]
        if args.json:
            print_json(boxes)
        else:
            for box in boxes:
                print(_imap_line(box))
    else:
        box = await imap.remove_mailbox(hub, args.id)
        print(f"removed IMAP mailbox {box['id']} ({box['user']}@{box['host']}); its mail stays where it is")
    return 0


async def cmd_identity(hub: Hub, args) -> int:
    acting = await access.acting_as(hub, args.as_username, getattr(args, "member", None))
    if args.identity_command == "claim":
        out = await claims.start(hub, acting, args.network, args.remote_id)
        if args.json:
            print_json(out)
        else:
            print(f"a code was sent to {out['remote_id']} ({out['network']}); it expires at {out['expires_at']}")
    elif args.identity_command == "confirm":
        out = await claims.confirm(hub, acting, args.network, args.remote_id, args.code)
        if args.json:
            print_json(out)
        else:
            print(f"{out['remote_id']} ({out['network']}) is now @{acting.actor.username}'s; "
                  f"{len(out['conversations'])} conversation(s) moved")
    else:
        out = await claims.list_claimed(hub, acting)
        if args.json:
            print_json(out)
        else:
            for i in out:
                print(f"{i['network']:8} {i['remote_id']}  since {i['claimed_at']}")
    return 0


async def cmd_conversation_networks(hub: Hub, args, conversation) -> int:
    acting = await access.acting_as(hub, args.as_username, getattr(args, "member", None))
    if args.network == "activitypub":
        raise UsageError("ActivityPub is how the conversation lives; it cannot be denied")
    networks = await bridge_core.set_network_allowed(hub, acting, conversation, args.network,
                                                     args.conversation_command == "allow")
    print_json([{"network": k, "origin": v} for k, v in networks.items()]) if args.json else print(
        f"{conversation.uri} is mirrored to: {', '.join(networks) or 'no bridged network'}")
    return 0


async def _conversation(hub: Hub, ref: str):
    return await conversations.get_conversation(hub, ref)


COMMANDS = {"bridge": cmd_bridge, "identity": cmd_identity}
