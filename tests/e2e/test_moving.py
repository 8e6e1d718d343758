"""Export from one hub, import on another: the conversations the customer owned
come back owned by the new account, with every message and file, the private
state and notes, and the old collection URI as an alias; the new account names
the old one in alsoKnownAs."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import get_json, unique

pytestmark = pytest.mark.e2e


def test_export_on_one_hub_import_on_another(hubs, tmp_path):
    a, b = hubs
    customer, org, newname = unique("mvc"), unique("mvo"), unique("mvn")
    for name, kind in ((customer, "person"), (org, "organization")):
        a.cli("actor", "add", name, "--kind", kind, "--password-stdin", stdin="password123\n")
    started = a.cli_json("conversation", "start", customer, f"@{org}@{a.domain}", "Where is parcel 9?",
                         "--subject", "Parcel 9")
    conv = started["conversation"]
    a.cli("conversation", "reply", org, conv, "It is at the depot.")
    a.cli("inbox", "set", customer, conv, "--note", "call them on Monday", "--label", "parcels")
    a.cli("profile", "set", customer, "phone", "+44 20 7946 0000")
    archive = tmp_path / "me.zip"
    a.cli("export", customer, "--out", str(archive))

    summary = json.loads(b.cli("import", str(archive), "--as", newname, "--password-stdin", "--json",
                               stdin="a new password\n"))
    assert summary["created"] is True and summary["conversations"] == 1 and summary["profile_items"] == 1
    assert summary["from"] == a.actor_uri(customer)
    # refused a second time: the account has content now
    rc, _out, err = b.cli("import", str(archive), "--as", newname, check=False)
    assert rc != 0 and "already has content" in err
    rc, _out, err = b.cli("import", str(tmp_path / "missing.zip"), "--as", unique("x"), check=False)
    assert rc != 0 and "not a Roundtable export" in err

    item = b.cli_json("inbox", "list", newname)[0]
    shown = b.cli_json("inbox", "show", newname, item["id"])
    texts = [m["text"] for m in shown["messages"]]
    assert texts == ["Where is parcel 9?", "It is at the depot."]
    assert shown["conversation"]["owner"] == b.actor_uri(newname)
    assert [n["text"] for n in shown["notes"]] == ["call them on Monday"]
    assert "parcels" in shown["conversation"]["labels"]
    assert json.loads(b.cli("profile", "show", newname, "--json")) == {"phone": "+44 20 7946 0000"}
    # the new collection names the old one: a message addressed to the old context finds it
    import sqlite3

    con = sqlite3.connect(b.data / "roundtable.db")
    try:
        (alias,) = con.execute("SELECT uri FROM conversation_aliases WHERE uri = ?", (conv,)).fetchone()
    finally:
        con.close()
    assert alias == conv

    b.cli("alias", "add", newname, f"{customer}@{a.domain}")
    status, doc = get_json(b.actor_uri(newname))
    assert status == 200 and doc["alsoKnownAs"] == [a.actor_uri(customer)]


def test_a_customer_moves_to_a_third_hub_and_the_conversation_goes_on_there(hubs, tmp_path):
    from tests.e2e.conftest import HubProcess, wait_until

    a, b = hubs
    c = HubProcess("c", tmp_path)
    c.start()
    try:
        customer, org, fan, newname = unique("mv3c"), unique("mv3o"), unique("mv3f"), unique("mv3n")
        a.cli("actor", "add", customer, "--kind", "person", "--password-stdin", stdin="password123\n")
        b.cli("actor", "add", org, "--kind", "organization", "--password-stdin", stdin="password123\n")
        b.cli("actor", "add", fan, "--kind", "person", "--password-stdin", stdin="password123\n")
        b.cli("follow", fan, f"{customer}@{a.domain}")
        conv = a.cli_json("conversation", "start", customer, f"@{org}@{b.domain}", "Where is my parcel?",
                          "--subject", "Parcel")["conversation"]
        item = wait_until(lambda: (b.cli_json("inbox", "list", org) or [None])[0], timeout=20,
                          message="the conversation on hub B")
        b.cli("conversation", "reply", org, item["id"], "Checking with the courier.")
        wait_until(lambda: len(a.cli_json("inbox", "show", customer, conv)["messages"]) == 2, timeout=20,
                   message="the answer on hub A")
        wait_until(lambda: b.sql(f"SELECT f.state FROM follows f JOIN actors a ON a.id = f.followee_id "
                                 f"WHERE a.uri = '{a.actor_uri(customer)}'") == [("accepted",)], timeout=20,
                   message="the follow accepted")

        # the customer takes everything to hub C, names the old account there, and moves
        archive = tmp_path / "kim.zip"
        a.cli("export", customer, "--out", str(archive))
        c.cli("import", str(archive), "--as", newname)
        c.cli("alias", "add", newname, f"{customer}@{a.domain}")
        rc, _out, err = a.cli("move", customer, f"{fan}@{b.domain}", check=False)
        assert rc != 0 and "alsoKnownAs" in err  # not an account that names this one
        a.cli("move", customer, f"{newname}@{c.domain}")
        status, old_doc = __import__("tests.e2e.conftest", fromlist=["get_json"]).get_json(a.actor_uri(customer))
        assert old_doc["movedTo"] == c.actor_uri(newname)

        # the follower now follows the new actor
        wait_until(lambda: b.sql(f"SELECT f.state FROM follows f JOIN actors a ON a.id = f.followee_id "
                                 f"WHERE a.uri = '{c.actor_uri(newname)}'") == [("accepted",)], timeout=30,
                   message="the follower moved to hub C")
        # the organization's next reply reaches the customer on C, in the same conversation, history intact
        wait_until(lambda: b.sql(f"SELECT a.uri FROM conversation_participants p JOIN actors a ON a.id = p.actor_id "
                                 f"WHERE a.uri = '{c.actor_uri(newname)}'") != [], timeout=30,
                   message="hub B repointing the conversation")
        b.cli("conversation", "reply", org, item["id"], "It will arrive tomorrow.")
        listed = wait_until(lambda: c.cli_json("inbox", "list", newname), timeout=10, message="C's inbox")

        def texts():
            return [m["text"] for m in c.cli_json("inbox", "show", newname, listed[0]["id"])["messages"]]

        wait_until(lambda: any("It will arrive tomorrow." in t for t in texts()), timeout=30,
                   message="the reply on hub C")
        history = texts()
        assert history[0] == "Where is my parcel?" and history[1].endswith("Checking with the courier.")
        assert len(c.cli_json("inbox", "list", newname)) == 1  # the same conversation, not a new one

        # and the customer's answer from C reaches the organization in the conversation it already has
        c.cli("conversation", "reply", newname, listed[0]["id"], "Thank you, I will be home.")
        wait_until(lambda: any("I will be home" in m["text"]
                               for m in b.cli_json("inbox", "show", org, item["id"])["messages"]),
                   timeout=30, message="the customer's answer from C on hub B")
        (only,) = b.cli_json("inbox", "list", org)
        assert only["id"] == item["id"] and only["uri"] == listed[0]["uri"]  # the new home is its URI now
        assert len(b.cli_json("inbox", "show", org, item["id"])["messages"]) == 4
    finally:
        c.stop()


def test_leaving_for_good_erases_closes_and_tells_the_peers(hubs):
    from tests.e2e.conftest import get_json, wait_until

    a, b = hubs
    customer, org, fan = unique("lvc"), unique("lvo"), unique("lvf")
    a.cli("actor", "add", customer, "--kind", "person", "--password-stdin", stdin="password123\n")
    b.cli("actor", "add", org, "--kind", "organization", "--password-stdin", stdin="password123\n")
    b.cli("actor", "add", fan, "--kind", "person", "--password-stdin", stdin="password123\n")
    b.cli("follow", fan, f"{customer}@{a.domain}")
    conv = a.cli_json("conversation", "start", customer, f"@{org}@{b.domain}", "Cancel my contract please",
                      "--subject", "Leaving")["conversation"]
    a.cli("profile", "set", customer, "email", "bye@example.org")
    a.cli("consent", "grant", customer, f"{org}@{b.domain}", "--items", "email", "--purpose", "support")
    wait_until(lambda: b.cli_json("consent", "read", org, f"{customer}@{a.domain}", "--purpose", "support") != {},
               timeout=20, message="the grant accepted")
    item = wait_until(lambda: (b.cli_json("inbox", "list", org) or [None])[0], timeout=20, message="B's inbox")
    wait_until(lambda: b.sql(f"SELECT f.state FROM follows f JOIN actors a ON a.id = f.followee_id "
                             f"WHERE a.uri = '{a.actor_uri(customer)}'") == [("accepted",)], timeout=20,
               message="the follow")

    summary = json.loads(a.cli("account", "delete", customer, "--json"))
    assert summary["messages_erased"] == 1 and summary["conversations_closed"] == 1 and summary["grants_revoked"] == 1
    status, doc = get_json(a.actor_uri(customer))
    assert status == 410 and doc["type"] == "Tombstone"
    assert a.sql(f"SELECT content_text FROM messages m JOIN actors a ON a.id = m.actor_id "
                 f"WHERE a.uri = '{a.actor_uri(customer)}'") == [("",)]
    assert a.sql(f"SELECT count(*) FROM accounts WHERE username = '{customer}'") == [(0,)]
    # nothing of what it wrote or kept is left: not in the activities kept for delivery, not its inbox
    # state, not the log of reads of its data
    assert a.sql("SELECT count(*) FROM activities WHERE raw LIKE '%Cancel my contract%'") == [(0,)]
    for table in ("conversation_states", "consent_reads"):
        column = "customer_id" if table == "consent_reads" else "actor_id"
        assert a.sql(f"SELECT count(*) FROM {table} t JOIN actors a ON a.id = t.{column} "
                     f"WHERE a.uri = '{a.actor_uri(customer)}'") == [(0,)], table
    assert b.cli_json("consent", "read", org, f"{customer}@{a.domain}", "--purpose", "support") == {}
    # hub B hears it: the follow ends, the conversation is closed there
    wait_until(lambda: b.sql(f"SELECT count(*) FROM follows f JOIN actors a ON a.id = f.followee_id "
                             f"WHERE a.uri = '{a.actor_uri(customer)}'") == [(0,)], timeout=30,
               message="the follow gone on hub B")
    wait_until(lambda: b.sql(f"SELECT closed_at IS NOT NULL FROM conversations WHERE uri = '{conv}'") == [(1,)],
               timeout=30, message="the conversation closed on hub B")
    rc, _out, err = b.cli("conversation", "reply", org, item["id"], "Are you still there?", check=False)
    assert rc != 0 and "closed" in err
    rc, _out, err = a.cli("export", customer, "--out", "/tmp/never.zip", check=False)
    assert rc != 0  # nothing left to act for


def test_pull_mode_move_from_the_archive_when_the_old_hub_is_gone(hubs, tmp_path):
    """FEP-7628's pull mode: the new hub sends the Move, signed with the old key from the archive."""
    from tests.e2e.conftest import HubProcess, wait_until

    _a, b = hubs
    old, c = HubProcess("old", tmp_path), HubProcess("new", tmp_path)
    old.start()
    c.start()
    try:
        customer, fan, newname = unique("pmc"), unique("pmf"), unique("pmn")
        old.cli("actor", "add", customer, "--kind", "person", "--password-stdin", stdin="password123\n")
        b.cli("actor", "add", fan, "--kind", "person", "--password-stdin", stdin="password123\n")
        b.cli("follow", fan, f"{customer}@{old.domain}")
        wait_until(lambda: b.sql(f"SELECT f.state FROM follows f JOIN actors a ON a.id = f.followee_id "
                                 f"WHERE a.uri = '{old.actor_uri(customer)}'") == [("accepted",)], timeout=20,
                   message="the follow")
        archive = tmp_path / "old.zip"
        old.cli("export", customer, "--out", str(archive))
        old.stop()  # the old hub is gone for good

        c.cli("import", str(archive), "--as", newname)
        c.cli("alias", "add", newname, old.actor_uri(customer))
        rc, _out, err = c.cli("move", newname, f"{newname}@{c.domain}", "--from-archive",
                              str(tmp_path / "missing.zip"), check=False)
        assert rc != 0 and "not a Roundtable export" in err
        summary = json.loads(c.cli("move", newname, f"{newname}@{c.domain}", "--from-archive", str(archive),
                                   "--json"))
        assert summary["mode"] == "pull" and summary["inboxes"] == 1
        wait_until(lambda: b.sql(f"SELECT f.state FROM follows f JOIN actors a ON a.id = f.followee_id "
                                 f"WHERE a.uri = '{c.actor_uri(newname)}'") == [("accepted",)], timeout=30,
                   message="the follower moved to the new hub")
        assert b.sql(f"SELECT count(*) FROM follows f JOIN actors a ON a.id = f.followee_id "
                     f"WHERE a.uri = '{old.actor_uri(customer)}'") == [(0,)]
    finally:
        c.stop()
        old.stop()
