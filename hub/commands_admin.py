"""Commands of the instance's operators: admins, domain blocks, reports.

Whoever runs these has the server's configuration and database, so they are
not checked against an account; the web pages (``/admin``) are, and take
``accounts.is_admin``."""

from __future__ import annotations

import argparse

from hub import moderation
from hub.cli import _Parser, print_json
from hub.context import Hub


def add_admin_commands(sub, common) -> None:
    def group(name: str, help: str):
        parser = sub.add_parser(name, help=help, description=help, parents=[common])
        return parser.add_subparsers(dest=f"{name}_command", required=True, parser_class=_Parser)

    g = group("admin", "the instance's administrators (the /admin pages)")
    for name, help in (("grant", "make a login an administrator"), ("revoke", "end a login's administration")):
        c = g.add_parser(name, help=help, parents=[common])
        c.add_argument("username", metavar="USERNAME")
    c = g.add_parser("list", help="list administrators", parents=[common])
    c.add_argument("--json", action="store_true")

    g = group("domain", "remote domains this instance refuses")
    c = g.add_parser("block", help="refuse a domain (and its subdomains): no activity in, nothing out", parents=[common])
    c.add_argument("domain", metavar="DOMAIN")
    c.add_argument("--reason")
    c = g.add_parser("unblock", help="lift a domain block", parents=[common])
    c.add_argument("domain", metavar="DOMAIN")
    c = g.add_parser("list", help="list domain blocks", parents=[common])
    c.add_argument("--json", action="store_true")

    g = group("report", "reports (Flag) other servers sent about actors or messages here")
    c = g.add_parser("list", help="open reports (or resolved ones)", parents=[common])
    c.add_argument("--resolved", action="store_true")
    c.add_argument("--json", action="store_true")
    c = g.add_parser("resolve", help="mark a report resolved", parents=[common])
    c.add_argument("id", metavar="ID")
    c.add_argument("--reopen", action="store_true")


async def cmd_admin(hub: Hub, args: argparse.Namespace) -> int:
    if args.admin_command in ("grant", "revoke"):
        await moderation.set_admin(hub, args.username, args.admin_command == "grant")
        print(f"{args.username} {'administers' if args.admin_command == 'grant' else 'no longer administers'} "
              f"{hub.cfg.domain}")
        return 0
    admins = await moderation.list_admins(hub)
    if args.json:
        print_json(admins)
    else:
        for a in admins:
            print(a["username"] + (f"  <{a['email']}>" if a["email"] else ""))
    return 0


async def cmd_domain(hub: Hub, args: argparse.Namespace) -> int:
    if args.domain_command == "block":
        print(f"blocked {await moderation.block_domain(hub, args.domain, reason=args.reason)}")
    elif args.domain_command == "unblock":
        print(f"unblocked {await moderation.unblock_domain(hub, args.domain)}")
    else:
        blocks = await moderation.list_domain_blocks(hub)
        if args.json:
            print_json(blocks)
        else:
            for b in blocks:
                print(b["domain"] + (f"  {b['reason']}" if b["reason"] else ""))
    return 0


async def cmd_report(hub: Hub, args: argparse.Namespace) -> int:
    if args.report_command == "resolve":
        await moderation.resolve_report(hub, args.id, by_account_id=None, resolved=not args.reopen)
        print(f"{'reopened' if args.reopen else 'resolved'} {args.id}")
        return 0
    reports = await moderation.list_reports(hub, resolved=args.resolved)
    if args.json:
        print_json(reports)
    else:
        for r in reports:
            print(f"{r['id']}  {r['created_at'][:16]}  from {r['reporter']}  about {', '.join(r['targets'])}"
                  + (f"\n    {r['content']}" if r["content"] else ""))
    return 0


COMMANDS = {"admin": cmd_admin, "domain": cmd_domain, "report": cmd_report}
