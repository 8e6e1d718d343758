"""The command line as other tools use it: outputs, exit codes, JSON shapes."""

from __future__ import annotations

import contextlib
import io
import json
import sqlite3
import sys

import pytest
from argon2 import PasswordHasher

from hub.cli import main
from tests.helpers import free_port


@pytest.fixture
def config(tmp_path):
    port = free_port()
    path = tmp_path / "rt.toml"
    path.write_text(f'domain = "localhost:{port}"\nlisten = "127.0.0.1:{port}"\ndata = "{tmp_path / "data"}"\ndev = true\n')
    return path


def run(config, *args, stdin: str | None = None):
    out, err = io.StringIO(), io.StringIO()
    old = sys.stdin
    if stdin is not None:
        sys.stdin = io.StringIO(stdin)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main(["--config", str(config), *args])
            except SystemExit as exc:  # argparse errors
                rc = exc.code
    finally:
        sys.stdin = old
    return rc, out.getvalue(), err.getvalue()


def db(config):
    return sqlite3.connect(config.parent / "data" / "roundtable.db")


def test_migrate_twice(config):
    from hub.db import MIGRATIONS_DIR

    numbered = sorted(p.name[:4] for p in (MIGRATIONS_DIR / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))
    assert run(config, "migrate")[:2] == (0, f"applied {', '.join(numbered)}\n")
    assert run(config, "migrate")[:2] == (0, "database is up to date\n")


def test_actor_add_with_password_from_stdin_and_list_json(config):
    rc, out, _ = run(config, "actor", "add", "dana", "--kind", "person", "--name", "Dana", "--email", "dana@example.org",
                     "--password-stdin", stdin="correct horse battery\n")
    assert rc == 0 and out.strip().endswith("/users/dana")
    (hashed,) = db(config).execute("SELECT password_hash FROM accounts WHERE username='dana'").fetchone()
    assert hashed.startswith("$argon2") and PasswordHasher().verify(hashed, "correct horse battery")
    run(config, "actor", "add", "acme", "--kind", "organization")
    rc, out, _ = run(config, "actor", "list", "--json")
    listed = json.loads(out)
    assert [(a["username"], a["kind"], a["type"]) for a in listed] == [
        ("acme", "organization", "Organization"), ("dana", "person", "Person")]
    assert all(a["uri"].endswith("/users/" + a["username"]) and a["handle"].startswith("@") for a in listed)


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["actor", "add", "dana", "--kind", "person", "--password-stdin"], "", "no password on stdin"),
        (["actor", "add", "dana", "--kind", "person", "--password-stdin"], "short\n", "at least 8"),
        (["actor", "add", "dana", "--kind", "person", "--email", "not-an-email"], None, "invalid email"),
        (["actor", "add", "admin", "--kind", "person"], None, "reserved"),
        (["post", "ghost", "hello"], None, "no local actor"),
        (["timeline", "ghost"], None, "no local actor"),
        (["deliveries", "https://elsewhere.example/x"], None, "no local note"),
        (["follow", "x", "@@@"], None, "no local actor"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(config, args, stdin, message):
    rc, out, err = run(config, *args, stdin=stdin)
    assert rc != 0 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err


def test_duplicate_username_and_email_are_refused(config):
    assert run(config, "actor", "add", "dana", "--kind", "person", "--email", "d@example.org")[0] == 0
    rc, _, err = run(config, "actor", "add", "dana", "--kind", "organization")
    assert rc == 1 and "already taken" in err
    rc, _, err = run(config, "actor", "add", "other", "--kind", "person", "--email", "d@example.org")
    assert rc == 1 and "already in use" in err


def test_demo_creates_accounts_once_and_reprints_them(config):
    rc, first, _ = run(config, "demo")
    assert rc == 0 and "@acme@" in first and "@alice@" in first and "password:" in first
    rc, second, _ = run(config, "demo")
    assert rc == 0 and "not created" in second and first.strip().splitlines()[-1] in second
    kinds = dict(db(config).execute("SELECT username, type FROM actors WHERE local = 1").fetchall())
    assert kinds == {"acme": "Organization", "alice": "Person", "instance.actor": "Application"}


def test_post_prints_the_uri_and_local_followers_see_it(config):
    run(config, "actor", "add", "acme", "--kind", "organization")
    run(config, "actor", "add", "dana", "--kind", "person")
    rc, out, _ = run(config, "follow", "dana", "@acme@" + config.read_text().split('"')[1])
    assert rc == 0 and out.startswith("following")
    rc, out, _ = run(config, "post", "acme", "Hello, customers")
    uri = out.strip()
    rc, out, _ = run(config, "timeline", "dana", "--json")
    (entry,) = json.loads(out)
    assert entry["uri"] == uri and entry["text"] == "Hello, customers" and entry["visibility"] == "public"
    assert set(entry) >= {"uri", "author", "text", "in_reply_to", "context", "visibility", "published"}
    rc, out, _ = run(config, "post", "acme", "members", "--visibility", "followers")
    rc, out, _ = run(config, "post", "dana", "a reply", "--reply-to", uri)
    rc, out, _ = run(config, "timeline", "acme", "--json")
    (reply,) = json.loads(out)
    assert reply["in_reply_to"] == uri and reply["context"] == entry["context"]


def test_invite_prints_a_code_that_is_stored_only_hashed(config):
    rc, out, err = run(config, "invite", "--days", "3")
    assert rc == 0 and "/signup?invitation=" in err
    code = out.strip()
    assert len(code) >= 16
    import hashlib

    db = sqlite3.connect(config.parent / "data" / "roundtable.db")
    try:
        rows = db.execute("SELECT code_hash, expires_at FROM invitations").fetchall()
    finally:
        db.close()
    assert rows == [(hashlib.sha256(code.encode()).hexdigest(), rows[0][1])] and rows[0][1] is not None


def test_conversation_publish_is_the_owners_and_can_be_taken_back(config):
    domain = config.read_text().split('"')[1]
    run(config, "actor", "add", "acme", "--kind", "organization")
    run(config, "actor", "add", "carol", "--kind", "person")
    rc, out, _ = run(config, "conversation", "start", "carol", "@acme@" + domain, "Where is the manual?", "--json")
    conv = json.loads(out)["conversation"]
    rc, _out, err = run(config, "conversation", "publish", "acme", conv)
    assert rc != 0 and "owner" in err
    rc, out, _ = run(config, "conversation", "publish", "carol", conv)
    assert rc == 0 and out.startswith("public: ")
    assert db(config).execute("SELECT visibility FROM conversations").fetchone() == ("public",)
    rc, out, _ = run(config, "conversation", "publish", "carol", conv, "--private")
    assert rc == 0 and out.startswith("private: ")
    assert db(config).execute("SELECT visibility FROM conversations").fetchone() == ("direct",)


def test_admins_domain_blocks_and_reports_from_the_command_line(config):
    run(config, "actor", "add", "olga", "--kind", "person")
    assert run(config, "admin", "grant", "olga")[0] == 0
    rc, out, _ = run(config, "admin", "list", "--json")
    assert rc == 0 and [a["username"] for a in json.loads(out)] == ["olga"]
    rc, _out, err = run(config, "admin", "grant", "nobody")
    assert rc == 1 and "no login" in err
    rc, out, _ = run(config, "domain", "block", "https://Spam.Example/@x", "--reason", "spam")
    assert rc == 0 and out.strip() == "blocked spam.example"
    rc, _out, err = run(config, "domain", "block", "spam.example")
    assert rc == 1 and "blocked already" in err
    rc, out, _ = run(config, "domain", "list", "--json")
    (block,) = json.loads(out)
    assert block["domain"] == "spam.example" and block["reason"] == "spam" and block["created_by"] is None
    assert run(config, "domain", "unblock", "spam.example")[:2] == (0, "unblocked spam.example\n")
    assert json.loads(run(config, "domain", "list", "--json")[1]) == []
    rc, out, _ = run(config, "report", "list", "--json")
    assert rc == 0 and json.loads(out) == []
    assert run(config, "report", "resolve", "0" * 26)[0] == 1
    assert run(config, "admin", "revoke", "olga")[0] == 0
    assert json.loads(run(config, "admin", "list", "--json")[1]) == []
