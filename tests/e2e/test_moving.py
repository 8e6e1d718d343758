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

    listed = b.cli_json("inbox", "list", newname)
    item = listed["items"][0] if isinstance(listed, dict) else listed[0]
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
