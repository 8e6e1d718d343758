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

    jobs = cmd("jobs", "job queue status")
    jobs.add_argument("--json", action="store_true")
    return p


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
