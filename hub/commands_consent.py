"""``roundtable profile`` and ``roundtable consent``: a customer's data items,
grants to organizations, revocation, the access log; and for an
organization, pending offers, decisions and reads (the same service the
JSON API's ``/actors/{actor}/consent/...`` endpoints call)."""

from __future__ import annotations

from hub import consent
from hub.cli import _Parser, print_json
from hub.context import Hub
from hub.inbox import access


def add_consent_commands(sub, common) -> None:
    def group(name: str, help: str):
        parser = sub.add_parser(name, help=help, description=help, parents=[common])
        return parser.add_subparsers(dest=f"{name}_command", required=True, parser_class=_Parser)

    def member_opt(c):
        c.add_argument("--member", metavar="USERNAME", help="the member acting (default: the actor's own login)")

    g = group("profile", "your data items (email, phone, address...): private unless you grant them")
    c = g.add_parser("set", help="set an item ('' removes it)", parents=[common])
    c.add_argument("username", metavar="USERNAME")
    c.add_argument("item", metavar="ITEM")
    c.add_argument("value", metavar="VALUE")
    member_opt(c)
    c = g.add_parser("show", help="your items", parents=[common])
    c.add_argument("username", metavar="USERNAME")
    c.add_argument("--json", action="store_true")
    member_opt(c)

    g = group("consent", "grant organizations access to your data items, revoke it, see every read")
    c = g.add_parser("grant", help="offer ORG access to items for a purpose", parents=[common])
    c.add_argument("username", metavar="USERNAME")
    c.add_argument("org", metavar="ORG_HANDLE")
    c.add_argument("--items", required=True, metavar="ITEM[,ITEM]")
    c.add_argument("--purpose", required=True, metavar="PURPOSE", help=", ".join(consent.PURPOSES)
                   + " (several: comma-separated)")
    c.add_argument("--conversation", metavar="URI", help="only for this conversation")
    c.add_argument("--expires", metavar="DATE", help="e.g. 2027-01-31 or 2027-01-31T12:00Z")
    c.add_argument("--json", action="store_true")
    member_opt(c)
    c = g.add_parser("revoke", help="end every grant to ORG, at once", parents=[common])
    c.add_argument("username", metavar="USERNAME")
    c.add_argument("org", metavar="ORG_HANDLE")
    member_opt(c)
    c = g.add_parser("log", help="every read of your data by an organization", parents=[common])
    c.add_argument("username", metavar="USERNAME")
    c.add_argument("--json", action="store_true")
    member_opt(c)
    c = g.add_parser("list", help="grants made or received, with their receipts", parents=[common])
    c.add_argument("username", metavar="USERNAME")
    c.add_argument("--json", action="store_true")
    member_opt(c)
    c = g.add_parser("pending", help="offers to the organization waiting for a member's decision", parents=[common])
    c.add_argument("username", metavar="ORG_USERNAME")
    c.add_argument("--json", action="store_true")
    member_opt(c)
    for name in ("accept", "reject"):
        c = g.add_parser(name, help=f"{name} an offer (admins)", parents=[common])
        c.add_argument("username", metavar="ORG_USERNAME")
        c.add_argument("offer", metavar="OFFER_URI")
        member_opt(c)
    c = g.add_parser("read", help="what the organization may read of a customer for a purpose, now",
                     parents=[common])
    c.add_argument("username", metavar="ORG_USERNAME")
    c.add_argument("customer", metavar="CUSTOMER_HANDLE")
    c.add_argument("--purpose", required=True, metavar="PURPOSE")
    c.add_argument("--conversation", metavar="URI", help="a read about this conversation (grants made for it count)")
    c.add_argument("--json", action="store_true")
    member_opt(c)


async def _acting(hub: Hub, args) -> access.Acting:
    return await access.acting_as(hub, args.username, getattr(args, "member", None))


async def cmd_profile(hub: Hub, args) -> int:
    acting = await _acting(hub, args)
    if args.profile_command == "set":
        await consent.set_item(hub, acting, args.item, args.value if args.value != "" else None)
        print(f"{args.item} {'set' if args.value else 'removed'} for @{acting.actor.username}")
        return 0
    items = await consent.profile(hub, acting)
    if args.json:
        print_json(items)
    else:
        for name, value in items.items():
            print(f"{name:16} {value}")
    return 0


async def cmd_consent(hub: Hub, args) -> int:
    acting = await _acting(hub, args)
    command = args.consent_command
    if command == "grant":
        org = await hub.resolve_handle(args.org)
        grant = await consent.grant(hub, acting, org, items=args.items.split(","), purposes=args.purpose.split(","),
                                    conversation_uri=args.conversation, expires=args.expires)
        if args.json:
            print_json(grant)
        else:
            print(f"offered {', '.join(grant['items'])} for {', '.join(grant['purposes'])} to "
                  f"{grant['organization_handle']}: {grant['uri']} ({grant['state']})")
    elif command == "revoke":
        org = await hub.resolve_handle(args.org)
        ended = await consent.revoke(hub, acting, org)
        print(f"revoked {len(ended)} grant{'s' if len(ended) != 1 else ''} to {ended[0]['organization_handle']}")
    elif command == "log":
        entries = await consent.access_log(hub, acting)
        if args.json:
            print_json(entries)
        else:
            for e in entries:
                print(e["text"])
    elif command == "list":
        grants = await consent.grants(hub, acting)
        if args.json:
            print_json(grants)
        else:
            for g in grants:
                other = g["organization_handle"] if g["side"] == "customer" else g["customer_handle"]
                print(f"{g['state']:9} {g['side']:12} {other:30} {','.join(g['items'])} for "
                      f"{','.join(g['purposes'])}  {g['uri']}")
    elif command == "pending":
        offers = await consent.pending(hub, acting)
        if args.json:
            print_json(offers)
        else:
            for g in offers:
                print(f"{g['offer']}  from {g['customer_handle']}: {','.join(g['items'])} for "
                      f"{','.join(g['purposes'])}")
    elif command in ("accept", "reject"):
        grant = await consent.decide(hub, acting, args.offer, accept=command == "accept")
        print(f"{grant['state']}: {grant['uri']}")
    else:  # read
        customer = await consent.customer_for(hub, args.customer)
        data = await consent.read(hub, acting, customer, args.purpose, conversation_uri=args.conversation)
        if args.json:
            print_json(data)
        else:
            for name, value in data.items():
                print(f"{name:16} {value}")
    return 0


COMMANDS = {"profile": cmd_profile, "consent": cmd_consent}
