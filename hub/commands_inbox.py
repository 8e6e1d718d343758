"""``roundtable member|inbox|conversation|token|webhook|canned``: the inbox from the command line.

JSON outputs (``--json``) are the same objects the API returns (see
``hub/inbox/state.py`` and the README).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from hub.cli import print_json
from hub.context import Hub
from hub.errors import NotFound, UsageError
from hub.federation import discovery
from hub.inbox import access, conversations, state, webhooks
from hub.store import actors as actor_store
from hub.store import org as org_store


async def _acting(hub: Hub, args, username_attr: str = "as_username") -> access.Acting:
    return await access.acting_as(hub, getattr(args, username_attr), getattr(args, "member", None))


async def _conversation(hub: Hub, ref: str):
    return await conversations.get_conversation(hub, ref)


def _time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"invalid time {value!r}: use ISO 8601, e.g. 2026-12-01T09:00:00Z") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


async def cmd_member(hub: Hub, args) -> int:
    acting = await _acting(hub, args, "actor")
    if args.member_command == "add":
        row = await access.add_member(hub, acting, args.username, role=args.role)
        print(f"{args.username} is {row.role} of @{acting.actor.username}")
    elif args.member_command == "remove":
        await access.remove_member(hub, acting, args.username)
        print(f"{args.username} is no longer a member of @{acting.actor.username}")
    elif args.member_command == "apps":
        await access.set_app_access(hub, acting, args.username, allow=args.allow)
        print(f"{args.username} {'may' if args.allow else 'may not'} speak as @{acting.actor.username} from apps")
    elif args.member_command == "list":
        members = await access.list_members(hub, acting)
        if args.json:
            print_json(members)
        else:
            for m in members:
                print(f"{m['role']:6} {m['username']}{'  (apps)' if m['apps'] else ''}")
    else:  # audit
        acting.require("admin")
        async with hub.db.read() as conn:
            rows = await org_store.list_audit(conn, acting.actor.id, limit=max(1, min(args.limit, 1000)))
        entries = [{"at": state.iso(r.created_at), "member": r.username, "action": r.action,
                    "conversation": r.conversation_id, "detail": r.detail} for r in rows]
        if args.json:
            print_json(entries)
        else:
            for e in entries:
                print(f"{e['at']}  {e['member'] or '-':12} {e['action']:28} {e['conversation'] or ''}")
    return 0


async def cmd_inbox(hub: Hub, args) -> int:
    acting = await _acting(hub, args)
    if args.inbox_command == "list":
        participant = await discovery.resolve_handle(hub.federation, args.participant) if args.participant else None
        items, cursor = await state.list_conversations(
            hub, acting, status=args.status, assignee=args.assignee, label=args.label, participant=participant,
            network=args.network, query=args.search, cursor=args.cursor, limit=args.limit,
        )
        if args.json:
            print_json(items)
        else:
            for c in items:
                last = (c["last_message"] or {}).get("text", "").replace("\n", " ")[:60]
                print(f"{c['status']:9} {c['last_activity']}  {c['uri']}\n          {last}")
            if cursor:
                print(f"more: --cursor {cursor}")
        return 0
    conversation = await _conversation(hub, args.conversation)
    if args.inbox_command == "show":
        view = await state.show(hub, acting, conversation)
        if args.json:
            print_json(view)
        else:
            c = view["conversation"]
            print(f"{c['uri']}  [{c['status']}]  owner {c['owner']}")
            for m in view["messages"]:
                print(f"\n{m['published']}  {m['author_name']} ({m['author']})\n{m['text']}")
            for n in view["notes"]:
                print(f"\n[note by {n['author']}, {n['created']}] {n['text']}")
        return 0
    item = await state.update(
        hub, acting, conversation, status=args.status, snooze_until=_time(args.until), assign=args.assign,
        team=args.team, priority=args.priority, add_labels=args.label, remove_labels=args.unlabel, note=args.note,
    )
    if args.json:
        print_json(item)
    else:
        print(f"{item['uri']}: {item['status']}" + (f", assigned to {item['assignee']}" if item["assignee"] else "")
              + (f", labels {' '.join(item['labels'])}" if item["labels"] else ""))
    return 0


async def cmd_conversation(hub: Hub, args) -> int:
    acting = await _acting(hub, args)
    if args.conversation_command == "start":
        targets = [await hub.resolve_handle(h) for h in [args.handle, *args.to]]
        conversation, message = await conversations.start(hub, acting, targets, args.text, subject=args.subject)
        if args.json:
            print_json({"conversation": conversation.uri, "id": conversation.id, "message": message.uri})
        else:
            print(conversation.uri)
        return 0
    conversation = await _conversation(hub, args.conversation)
    if args.conversation_command == "reply":
        text = args.text
        if args.canned:
            text = await state.render_canned(hub, acting, args.canned, conversation)
        message = await conversations.reply(hub, acting, conversation, text, in_reply_to_uri=args.reply_to)
        print(message.uri)
    elif args.conversation_command == "add":
        target = await hub.resolve_handle(args.handle)
        await conversations.add_participant(hub, acting, conversation, target)
        print(f"added {target.uri} to {conversation.uri}")
    elif args.conversation_command in ("allow", "deny"):
        from hub.commands_bridge import cmd_conversation_networks

        return await cmd_conversation_networks(hub, args, conversation)
    elif args.conversation_command == "remove":
        await conversations.remove_message(hub, acting, conversation, args.message)
        print(f"removed {args.message} from {conversation.uri}")
    elif args.conversation_command == "publish":
        await conversations.set_public(hub, acting, conversation, public=not args.private)
        print(f"{'private' if args.private else 'public'}: {conversation.uri}")
    else:  # close
        await conversations.close(hub, acting, conversation, closed=not args.reopen)
        print(f"{'reopened' if args.reopen else 'closed'} {conversation.uri}")
    return 0


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def cmd_token(hub: Hub, args) -> int:
    async with hub.db.write() as conn:
        account = await actor_store.get_account_by_username(conn, args.username)
        if account is None:
            raise NotFound(f"no login named {args.username!r}")
        if args.token_command == "create":
            token = "rt_" + secrets.token_urlsafe(32)
            await org_store.put_token(conn, account_id=account.id, token_hash=hash_token(token), name=args.name)
            print(token)
        else:
            removed = await org_store.delete_tokens_of(conn, account.id, args.name)
            print(f"revoked {removed} token(s) of {args.username}")
    return 0


async def cmd_webhook(hub: Hub, args) -> int:
    acting = await _acting(hub, args)
    if args.webhook_command == "add":
        print_json(await webhooks.create(hub, acting, args.url, args.event or None))
    elif args.webhook_command == "list":
        hooks = await webhooks.list_(hub, acting)
        if args.json:
            print_json(hooks)
        else:
            for h in hooks:
                print(f"{h['id']}  {h['url']}  {','.join(h['events'])}")
    else:
        await webhooks.remove(hub, acting, args.id)
        print(f"removed webhook {args.id}")
    return 0


async def cmd_canned(hub: Hub, args) -> int:
    acting = await _acting(hub, args)
    if args.canned_command == "add":
        await state.save_canned(hub, acting, args.name, args.text)
        print(f"saved {args.name!r}")
    else:
        items = await state.list_canned(hub, acting)
        if args.json:
            print_json(items)
        else:
            for item in items:
                print(f"{item['name']}: {item['text']}")
    return 0


COMMANDS = {
    "member": cmd_member,
    "inbox": cmd_inbox,
    "conversation": cmd_conversation,
    "token": cmd_token,
    "webhook": cmd_webhook,
    "canned": cmd_canned,
}
