"""The ``roundtable`` command.

Every command reads the same configuration as ``serve`` (``--config`` and
``ROUNDTABLE_*``), so it can run beside a running server: it writes to the
same database and queues jobs that the server's workers deliver. Bad input
exits non-zero with one line on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from hub import __version__
from hub.errors import HubError

PROG = "roundtable"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not argparse's usage dump
        self.exit(2, f"{PROG}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS, help="TOML configuration file")
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")

    p = _Parser(prog=PROG, description="Roundtable conversation hub", parents=[common])
    p.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def cmd(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help, parents=[common])

    cmd("serve", "run the web server (and the job workers unless ROUNDTABLE_WORKERS=0)")
    cmd("worker", "run job workers only")
    cmd("migrate", "apply database migrations")
    cmd("demo", "create the demo organization 'acme' and customer 'alice' if there are no actors yet")

    actor = cmd("actor", "manage local actors")
    asub = actor.add_subparsers(dest="actor_command", required=True, parser_class=_Parser)
    add = asub.add_parser("add", help="create a local actor", parents=[common])
    add.add_argument("username")
    add.add_argument("--kind", choices=["person", "organization"], required=True)
    add.add_argument("--name")
    add.add_argument("--email")
    add.add_argument("--password-stdin", action="store_true", help="read the login password from stdin")
    lst = asub.add_parser("list", help="list local actors", parents=[common])
    lst.add_argument("--json", action="store_true")
    st = asub.add_parser("set", help="change an actor's profile", parents=[common])
    st.add_argument("username")
    st.add_argument("--name")
    st.add_argument("--summary")
    st.add_argument("--manually-approves-followers", choices=["yes", "no"])
    st.add_argument("--discoverable", choices=["yes", "no"])
    st.add_argument("--field", action="append", metavar="NAME=VALUE", help="profile field (repeatable; replaces all)")
    st.add_argument("--signature", metavar="TEMPLATE",
                    help="how members sign replies, e.g. '— {member_name}, {actor_name} support' ('' for none)")
    st.add_argument("--consent-purposes", metavar="PURPOSE[,PURPOSE]",
                    help="purposes of data grants the actor accepts by itself (default: support); others wait for "
                         "an admin's decision")

    for name, help in (
        ("follow", "follow an actor"),
        ("unfollow", "stop following an actor"),
        ("block", "block an actor (ends follows both ways, stops delivery both ways)"),
        ("unblock", "lift a block"),
    ):
        c = cmd(name, help)
        c.add_argument("as_username", metavar="AS_USERNAME")
        c.add_argument("target", metavar="HANDLE_OR_URI")

    fr = cmd("follow-requests", "list, accept or reject pending follow requests")
    fr.add_argument("as_username", metavar="AS_USERNAME")
    fr.add_argument("action", nargs="?", choices=["list", "accept", "reject"], default="list")
    fr.add_argument("target", nargs="?", metavar="HANDLE_OR_URI")

    post = cmd("post", "publish a note; prints its URI")
    post.add_argument("as_username", metavar="AS_USERNAME")
    post.add_argument("text", metavar="TEXT")
    post.add_argument("--to", action="append", default=[], metavar="HANDLE", help="address/mention (repeatable)")
    post.add_argument("--reply-to", metavar="URI")
    post.add_argument("--visibility", choices=["public", "unlisted", "followers", "direct"], default="public")
    post.add_argument("--summary", help="content warning")

    edit = cmd("edit", "change the text of one of your notes")
    edit.add_argument("as_username", metavar="AS_USERNAME")
    edit.add_argument("uri", metavar="URI")
    edit.add_argument("text", metavar="TEXT")

    delete = cmd("delete", "delete one of your notes")
    delete.add_argument("as_username", metavar="AS_USERNAME")
    delete.add_argument("uri", metavar="URI")

    for name, help in (("like", "like a note"), ("boost", "boost (announce) a note")):
        c = cmd(name, help)
        c.add_argument("as_username", metavar="AS_USERNAME")
        c.add_argument("uri", metavar="URI")
        c.add_argument("--undo", action="store_true", help="take it back")

    tl = cmd("timeline", "what an actor has received, newest first")
    tl.add_argument("as_username", metavar="AS_USERNAME")
    tl.add_argument("--json", action="store_true")
    tl.add_argument("--limit", type=int, default=40)

    dl = cmd("deliveries", "delivery state of one of your notes or activities, per inbox")
    dl.add_argument("uri", metavar="URI")
    dl.add_argument("--json", action="store_true")

    inv = cmd("invite", "create an invitation code for signing up while open sign-up is off; prints it once")
    inv.add_argument("--days", type=int, default=14, help="valid this many days (0: no end)")

    jobs = cmd("jobs", "job queue status")
    jobs.add_argument("--json", action="store_true")
    add_inbox_commands(sub, common)
    from hub.commands_admin import add_admin_commands

    add_admin_commands(sub, common)
    from hub.commands_consent import add_consent_commands

    add_consent_commands(sub, common)
    from hub.commands_export import add_export_commands

    add_export_commands(sub, common)
    return p


def add_inbox_commands(sub, common) -> None:
    """Members, the inbox, conversations, tokens, webhooks, canned responses."""

    def group(name: str, help: str):
        parser = sub.add_parser(name, help=help, description=help, parents=[common])
        return parser.add_subparsers(dest=f"{name}_command", required=True, parser_class=_Parser)

    def member_opt(c):
        c.add_argument("--member", metavar="USERNAME", help="the member acting (default: the actor's own login)")

    g = group("member", "an actor's members (logins that speak for it) and their roles")
    c = g.add_parser("add", help="make a person's login a member", parents=[common])
    c.add_argument("actor", metavar="ORG")
    c.add_argument("username", metavar="USERNAME")
    c.add_argument("--role", choices=["owner", "admin", "agent"], required=True)
    member_opt(c)
    c = g.add_parser("remove", help="end a membership", parents=[common])
    c.add_argument("actor", metavar="ORG")
    c.add_argument("username", metavar="USERNAME")
    member_opt(c)
    c = g.add_parser("list", help="list members", parents=[common])
    c.add_argument("actor", metavar="ORG")
    c.add_argument("--json", action="store_true")
    member_opt(c)
    c = g.add_parser("apps", help="let a member speak as ORG from fediverse apps (its own OAuth token), or stop it",
                     parents=[common])
    c.add_argument("actor", metavar="ORG")
    c.add_argument("username", metavar="USERNAME")
    allow = c.add_mutually_exclusive_group(required=True)
    allow.add_argument("--allow", dest="allow", action="store_true")
    allow.add_argument("--deny", dest="allow", action="store_false", help="also revokes the member's tokens for ORG")
    member_opt(c)
    c = g.add_parser("audit", help="the audit log of members' reads and actions", parents=[common])
    c.add_argument("actor", metavar="ORG")
    c.add_argument("--limit", type=int, default=50)
    c.add_argument("--json", action="store_true")
    member_opt(c)

    g = group("inbox", "an actor's conversations and its private work on them")
    c = g.add_parser("list", help="conversations, most recent activity first", parents=[common])
    c.add_argument("as_username", metavar="AS_USERNAME")
    c.add_argument("--status", choices=["open", "pending", "snoozed", "resolved"])
    c.add_argument("--assignee", metavar="MEMBER", help="a member's username, or 'none'")
    c.add_argument("--label")
    c.add_argument("--participant", metavar="HANDLE")
    c.add_argument("--network")
    c.add_argument("--search", metavar="TEXT")
    c.add_argument("--limit", type=int, default=20)
    c.add_argument("--cursor")
    c.add_argument("--json", action="store_true")
    member_opt(c)
    c = g.add_parser("show", help="one conversation: messages and private notes", parents=[common])
    c.add_argument("as_username", metavar="AS_USERNAME")
    c.add_argument("conversation", metavar="CONVERSATION", help="its URI or id")
    c.add_argument("--json", action="store_true")
    member_opt(c)
    c = g.add_parser("set", help="change the actor's own state of a conversation", parents=[common])
    c.add_argument("as_username", metavar="AS_USERNAME")
    c.add_argument("conversation", metavar="CONVERSATION")
    c.add_argument("--status", choices=["open", "pending", "snoozed", "resolved"])
    c.add_argument("--until", metavar="ISO_TIME", help="with --status snoozed: when it opens again")
    c.add_argument("--assign", metavar="MEMBER", help="a member's username; '' to unassign")
    c.add_argument("--label", action="append", default=[], help="add a label (repeatable)")
    c.add_argument("--unlabel", action="append", default=[], help="remove a label (repeatable)")
    c.add_argument("--priority", type=int)
    c.add_argument("--team")
    c.add_argument("--note", metavar="TEXT", help="add a private note")
    c.add_argument("--json", action="store_true")
    member_opt(c)

    g = group("conversation", "start, write in and moderate conversations")
    c = g.add_parser("start", help="start a conversation; prints its URI", parents=[common])
    c.add_argument("as_username", metavar="AS_USERNAME")
    c.add_argument("handle", metavar="HANDLE")
    c.add_argument("text", metavar="TEXT")
    c.add_argument("--to", action="append", default=[], metavar="HANDLE", help="more participants")
    c.add_argument("--subject")
    c.add_argument("--json", action="store_true")
    member_opt(c)
    c = g.add_parser("reply", help="write in a conversation; prints the message URI", parents=[common])
    c.add_argument("as_username", metavar="AS_USERNAME")
    c.add_argument("conversation", metavar="CONVERSATION")
    c.add_argument("text", metavar="TEXT", nargs="?", default="")
    c.add_argument("--canned", metavar="NAME", help="use a canned response (placeholders filled in)")
    c.add_argument("--reply-to", metavar="URI")
    member_opt(c)
    c = g.add_parser("add", help="the owner adds a participant", parents=[common])
    c.add_argument("as_username", metavar="AS_USERNAME")
    c.add_argument("conversation", metavar="CONVERSATION")
    c.add_argument("handle", metavar="HANDLE")
    member_opt(c)
    c = g.add_parser("remove", help="the owner takes a message out of the conversation", parents=[common])
    c.add_argument("as_username", metavar="AS_USERNAME")
    c.add_argument("conversation", metavar="CONVERSATION")
    c.add_argument("message", metavar="MESSAGE_URI")
    member_opt(c)
    c = g.add_parser("close", help="the owner closes the conversation to new messages", parents=[common])
    c.add_argument("as_username", metavar="AS_USERNAME")
    c.add_argument("conversation", metavar="CONVERSATION")
    c.add_argument("--reopen", action="store_true")
    member_opt(c)
    c = g.add_parser("publish", help="the owner makes the conversation readable by anyone, at its URI", parents=[common])
    c.add_argument("as_username", metavar="AS_USERNAME")
    c.add_argument("conversation", metavar="CONVERSATION")
    c.add_argument("--private", action="store_true", help="make it private again")
    member_opt(c)

    for name, help in (("allow", "the owner lets the conversation be mirrored to a bridged network"),
                       ("deny", "the owner stops mirroring the conversation to a bridged network")):
        c = g.add_parser(name, help=help, parents=[common])
        c.add_argument("as_username", metavar="AS_USERNAME")
        c.add_argument("conversation", metavar="CONVERSATION")
        c.add_argument("network", metavar="NETWORK", help="a bridge's name, e.g. email")
        c.add_argument("--json", action="store_true")
        member_opt(c)

    g = group("bridge", "bridges to other networks: their state, raw items, and bridges run by operators")
    c = g.add_parser("list", help="bridges and their connection state", parents=[common])
    c.add_argument("--json", action="store_true")
    c = g.add_parser("items", help="raw inbound items (kept even when flagged: bounces, auto-replies, loops)",
                     parents=[common])
    c.add_argument("name", metavar="NAME", nargs="?")
    c.add_argument("--status", choices=["queued", "placed", "flagged", "dropped"])
    c.add_argument("--limit", type=int, default=50)
    c.add_argument("--json", action="store_true")
    c = g.add_parser("add", help="register a bridge run outside the hub, or a webhook channel; prints its token and "
                     "secret once", parents=[common])
    c.add_argument("name", metavar="NAME", help="its network namespace, e.g. sms (lower case letters and digits)")
    c.add_argument("--kind", choices=["external", "webhook"], required=True)
    c.add_argument("--url", help="where the hub sends outbound messages (webhook: the provider's URL; "
                   "external: the bridge's base URL, optional when it polls)")
    c.add_argument("--owner", metavar="USERNAME", help="the local actor whose channel it is (webhook)")
    c.add_argument("--capability", action="append", default=[], metavar="FLAG",
                   help="what the network can carry (edits, deletes, reactions, attachments, threading, "
                   "direct_messages, read_receipts); repeatable")
    c = g.add_parser("remove", help="remove a bridge registration", parents=[common])
    c.add_argument("name", metavar="NAME")
    c = g.add_parser("run", help="run a bridge out of process, talking to a hub over the bridge API", parents=[common])
    c.add_argument("name", metavar="NAME", help="the bridge's name as registered on the hub")
    c.add_argument("--hub", required=True, metavar="URL", help="the hub's base URL")
    c.add_argument("--token", metavar="TOKEN", help="the bridge's token (or ROUNDTABLE_BRIDGE_TOKEN)")
    c.add_argument("--kind", choices=["email"], default="email", help="the connector to run")
    c.add_argument("--listen", metavar="HOST:PORT", help="where this process takes the hub's sends")
    c = g.add_parser("imap", help="support mailboxes the email bridge polls over IMAP (read by `roundtable serve`)",
                     description="support mailboxes the email bridge polls over IMAP (read by `roundtable serve`)",
                     parents=[common])
    imap = c.add_subparsers(dest="imap_command", required=True, parser_class=_Parser)
    c = imap.add_parser("add", help="poll a mailbox for a local actor; its login is checked first", parents=[common])
    c.add_argument("owner", metavar="OWNER", help="the local actor (organization or customer) the mail is for")
    c.add_argument("--host", required=True)
    c.add_argument("--port", type=int, help="default: 993 with --tls tls, else 143")
    c.add_argument("--user", required=True, help="the IMAP login")
    c.add_argument("--password-stdin", action="store_true", required=True,
                   help="read the IMAP password from stdin (never give it as an argument)")
    c.add_argument("--tls", choices=["tls", "starttls", "none"], default="tls",
                   help="implicit TLS (default), STARTTLS, or none (development mode only)")
    c.add_argument("--folder", default="INBOX")
    c.add_argument("--skip-existing", action="store_true",
                   help="leave the mail already in the folder: take only what arrives from now on")
    c.add_argument("--json", action="store_true")
    c = imap.add_parser("list", help="the mailboxes polled and how far each was read (never their passwords)",
                        parents=[common])
    c.add_argument("--json", action="store_true")
    c = imap.add_parser("remove", help="stop polling a mailbox (its mail stays where it is)", parents=[common])
    c.add_argument("id", metavar="ID")

    g = group("identity", "bridged identities (an email address, a phone number) an actor has claimed")
    c = g.add_parser("claim", help="send a confirmation code to the identity", parents=[common])
    c.add_argument("as_username", metavar="AS_USERNAME")
    c.add_argument("network", metavar="NETWORK")
    c.add_argument("remote_id", metavar="REMOTE_ID")
    c.add_argument("--json", action="store_true")
    member_opt(c)
    c = g.add_parser("confirm", help="prove control with the code; the identity's conversations become yours",
                     parents=[common])
    c.add_argument("as_username", metavar="AS_USERNAME")
    c.add_argument("network", metavar="NETWORK")
    c.add_argument("remote_id", metavar="REMOTE_ID")
    c.add_argument("code", metavar="CODE")
    c.add_argument("--json", action="store_true")
    member_opt(c)
    c = g.add_parser("list", help="identities claimed", parents=[common])
    c.add_argument("as_username", metavar="AS_USERNAME")
    c.add_argument("--json", action="store_true")
    member_opt(c)

    g = group("token", "API tokens of a login")
    c = g.add_parser("create", help="create a bearer token; prints it once", parents=[common])
    c.add_argument("username", metavar="USERNAME")
    c.add_argument("--name")
    c = g.add_parser("revoke", help="revoke a login's tokens (all, or those of one name)", parents=[common])
    c.add_argument("username", metavar="USERNAME")
    c.add_argument("--name")

    g = group("webhook", "an actor's webhooks")
    c = g.add_parser("add", help="register an HTTPS endpoint; prints its secret once", parents=[common])
    c.add_argument("as_username", metavar="AS_USERNAME")
    c.add_argument("url", metavar="URL")
    c.add_argument("--event", action="append", default=[], help="event to send (repeatable; default: all)")
    member_opt(c)
    c = g.add_parser("list", help="list webhooks", parents=[common])
    c.add_argument("as_username", metavar="AS_USERNAME")
    c.add_argument("--json", action="store_true")
    member_opt(c)
    c = g.add_parser("remove", help="remove a webhook", parents=[common])
    c.add_argument("as_username", metavar="AS_USERNAME")
    c.add_argument("id", metavar="ID")
    member_opt(c)

    g = group("canned", "an actor's canned responses")
    c = g.add_parser("add", help="save a canned response ({customer_name}, {actor_name}, {member_name})", parents=[common])
    c.add_argument("as_username", metavar="AS_USERNAME")
    c.add_argument("name", metavar="NAME")
    c.add_argument("text", metavar="TEXT")
    member_opt(c)
    c = g.add_parser("list", help="list canned responses", parents=[common])
    c.add_argument("as_username", metavar="AS_USERNAME")
    c.add_argument("--json", action="store_true")
    member_opt(c)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False)
    try:
        from hub.config import load_config

        cfg = load_config(getattr(args, "config", None))
        if args.command in ("serve", "worker"):
            from hub.app import serve, setup_logging, work

            setup_logging(cfg)
            asyncio.run(serve(cfg) if args.command == "serve" else work(cfg))
            return 0
        if args.command == "bridge" and args.bridge_command == "run":
            from hub.app import setup_logging
            from hub.bridges.api import run_external

            setup_logging(cfg)
            return asyncio.run(run_external(cfg, args))  # talks to its hub over HTTP: no database here
        from hub import commands

        return asyncio.run(commands.run(cfg, args))
    except HubError as exc:
        if debug:
            raise
        print(f"{PROG}: error: {exc.safe}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: still one line unless --debug
        if debug:
            raise
        print(f"{PROG}: error: {type(exc).__name__}: {exc} (run with --debug for details)", file=sys.stderr)
        return 1


def print_json(value) -> None:
    json.dump(value, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")
