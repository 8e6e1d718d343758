"""``roundtable export``: everything that is an actor's, in one archive (see ``hub/export.py``)."""

from __future__ import annotations

from hub.cli import print_json
from hub.context import Hub
from hub.inbox import access


def add_export_commands(sub, common) -> None:
    c = sub.add_parser("export", help="write everything that is an actor's to one ZIP archive",
                       description="write everything that is an actor's to one ZIP archive", parents=[common])
    c.add_argument("username", metavar="USERNAME")
    c.add_argument("--out", required=True, metavar="PATH")
    c.add_argument("--without-private-key", action="store_true", help="leave the actor's private key out")
    c.add_argument("--json", action="store_true", help="print the archive's manifest")


async def cmd_export(hub: Hub, args) -> int:
    from hub import export

    acting = await access.acting_as(hub, args.username)
    manifest = await export.export(hub, acting, args.out, private_key=not args.without_private_key)
    if args.json:
        print_json(manifest)
    else:
        print(f"wrote {args.out}: {len(manifest['files'])} files for {manifest['actor']}")
    return 0


COMMANDS = {"export": cmd_export}
