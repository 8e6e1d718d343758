"""``roundtable export``: everything that is an actor's, in one archive (see ``hub/export.py``)."""

from __future__ import annotations

from hub.cli import print_json
from hub.context import Hub
from hub.inbox import access


def add_export_commands(sub, common) -> None:
    from hub.cli import _Parser

    c = sub.add_parser("export", help="write everything that is an actor's to one ZIP archive",
                       description="write everything that is an actor's to one ZIP archive", parents=[common])
    c.add_argument("username", metavar="USERNAME")
    c.add_argument("--out", required=True, metavar="PATH")
    c.add_argument("--without-private-key", action="store_true", help="leave the actor's private key out")
    c.add_argument("--json", action="store_true", help="print the archive's manifest")

    c = sub.add_parser("import", help="restore an export archive into an account (created if missing; refused if "
                       "it has content)", description="restore an export archive into an account", parents=[common])
    c.add_argument("path", metavar="PATH")
    c.add_argument("--as", dest="as_username", required=True, metavar="USERNAME")
    c.add_argument("--password-stdin", action="store_true", help="the new account's password, from stdin")
    c.add_argument("--json", action="store_true")

    g = sub.add_parser("alias", help="other accounts that are you (alsoKnownAs), for a Move",
                       description="other accounts that are you (alsoKnownAs), for a Move", parents=[common])
    gs = g.add_subparsers(dest="alias_command", required=True, parser_class=_Parser)
    c = gs.add_parser("add", help="name OLD_HANDLE as another account of USERNAME", parents=[common])
    c.add_argument("username", metavar="USERNAME")
    c.add_argument("old", metavar="OLD_HANDLE")
    c = gs.add_parser("list", help="the aliases of USERNAME", parents=[common])
    c.add_argument("username", metavar="USERNAME")

    g = sub.add_parser("account", help="leaving for good", description="leaving for good", parents=[common])
    gs = g.add_subparsers(dest="account_command", required=True, parser_class=_Parser)
    c = gs.add_parser("delete", help="erase the actor's data, close its conversations, tell its peers (Delete)",
                      parents=[common])
    c.add_argument("username", metavar="USERNAME")
    c.add_argument("--json", action="store_true")

    c = sub.add_parser("move", help="move USERNAME to NEW_HANDLE: followers and conversations follow (Move)",
                       description="move USERNAME to NEW_HANDLE (which names USERNAME in alsoKnownAs)",
                       parents=[common])
    c.add_argument("username", metavar="USERNAME")
    c.add_argument("new", metavar="NEW_HANDLE")
    c.add_argument("--from-archive", metavar="PATH",
                   help="pull mode (FEP-7628), on the new hub when the old one is gone: USERNAME is the new account "
                        "here, NEW_HANDLE its handle; the Move is signed with the old key from the export archive")
    c.add_argument("--json", action="store_true")


async def cmd_export(hub: Hub, args) -> int:
    from hub import export

    acting = await access.acting_as(hub, args.username)
    manifest = await export.export(hub, acting, args.out, private_key=not args.without_private_key)
    if args.json:
        print_json(manifest)
    else:
        print(f"wrote {args.out}: {len(manifest['files'])} files for {manifest['actor']}")
    return 0


async def cmd_import(hub: Hub, args) -> int:
    import sys

    from hub import importer

    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else None
    summary = await importer.import_archive(hub, args.path, args.as_username, password=password)
    if args.json:
        print_json(summary)
    else:
        print(f"imported {summary['from']} into {summary['actor']}: {summary['conversations']} conversations "
              f"restored, {summary['not_restored']} left to their owners, {summary['profile_items']} data items")
        said = {"code_sent": "a code was sent to it: `roundtable identity confirm` with it claims it here",
                "claimed": "already claimed here", "taken": "claimed here by another account",
                "no_bridge": "this hub does not bridge that network (the old hub's bridge goes on carrying it)"}
        for i in summary["identities"]:
            print(f"  {i['remote_id']} on {i['network']}: {said.get(i['state'], i.get('error', i['state']))}")
    return 0


async def cmd_alias(hub: Hub, args) -> int:
    from hub import moving

    acting = await access.acting_as(hub, args.username)
    if args.alias_command == "add":
        old = await moving.old_account(hub, args.old)
        aliases = await moving.add_alias(hub, acting, old)
    else:
        aliases = list(acting.actor.also_known_as or [])
    for uri in aliases:
        print(uri)
    return 0


async def cmd_move(hub: Hub, args) -> int:
    from hub import moving

    acting = await access.acting_as(hub, args.username)
    target = await hub.resolve_handle(args.new)
    if args.from_archive:
        from hub.errors import UsageError

        if target.id != acting.actor.id:
            raise UsageError(f"with --from-archive, NEW_HANDLE is @{args.username} itself (the account moved to)")
        summary = await moving.pull_move(hub, acting, args.from_archive)
        summary.setdefault("followers", summary["inboxes"])
        summary.setdefault("conversations", 0)
    else:
        summary = await moving.move(hub, acting, target)
    if args.json:
        print_json(summary)
    else:
        print(f"{summary['actor']} moved to {summary['moved_to']}: {summary['followers']} followers and "
              f"{summary['conversations']} conversations are told")
    return 0


async def cmd_account(hub: Hub, args) -> int:
    from hub import leaving

    acting = await access.acting_as(hub, args.username)
    summary = await leaving.delete_account(hub, acting)
    if args.json:
        print_json(summary)
    else:
        print(f"deleted {summary['actor']}: {summary['messages_erased']} messages erased, "
              f"{summary['conversations_closed']} conversations closed, {summary['grants_revoked']} grants revoked, "
              f"{summary.get('identities_erased', 0)} claimed addresses forgotten, "
              f"{summary.get('bridged_told', 0)} bridged people told")
    return 0


COMMANDS = {"export": cmd_export, "import": cmd_import, "alias": cmd_alias, "move": cmd_move,
            "account": cmd_account}
