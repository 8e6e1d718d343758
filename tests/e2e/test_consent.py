"""Consent-based data sharing across two real hub processes: the data stays on
the customer's hub A; the organization on hub B reads exactly what an active
grant covers, through its hub, signed as the organization; every read is in the
customer's log; revocation is immediate; receipts are signed by hub A and kept
on both sides."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.e2e.conftest import unique, wait_until

pytestmark = pytest.mark.e2e


def add(hub, username: str, kind: str) -> None:
    hub.cli("actor", "add", username, "--kind", kind, "--password-stdin", stdin="password123\n")


def test_no_grant_nothing_grant_exactly_the_items_revoke_nothing_again(hubs):
    a, b = hubs
    customer, org, agent = unique("cons"), unique("conso"), unique("consa")
    add(a, customer, "person")
    add(b, org, "organization")
    add(b, agent, "person")
    b.cli("member", "add", org, agent, "--role", "agent")
    for item, value in (("email", "kim@example.org"), ("address", "1 Quay Street, Dublin"), ("phone", "+353 1 555")):
        a.cli("profile", "set", customer, item, value)
    assert json.loads(a.cli("profile", "show", customer, "--json"))["phone"] == "+353 1 555"
    handle = f"{customer}@{a.domain}"

    # no grant: nothing
    assert b.cli_json("consent", "read", org, handle, "--purpose", "delivery") == {}

    # a grant for delivery waits for a member's decision (the organization accepts only support by itself)
    grant = a.cli_json("consent", "grant", customer, f"{org}@{b.domain}", "--items", "email,address",
                       "--purpose", "delivery")
    assert grant["state"] == "offered" and grant["items"] == ["email", "address"]
    offers = wait_until(lambda: b.cli_json("consent", "pending", org), timeout=20, message="the offer on hub B")
    assert offers[0]["customer_handle"] == handle and offers[0]["purposes"] == ["delivery"]
    assert b.cli_json("consent", "read", org, handle, "--purpose", "delivery") == {}  # not accepted yet
    rc, _out, err = b.cli("consent", "accept", org, offers[0]["offer"], "--member", agent, check=False)
    assert rc != 0 and "admin" in err  # an agent does not decide
    b.cli("consent", "accept", org, offers[0]["offer"])
    wait_until(lambda: a.cli_json("consent", "list", customer)[0]["state"] == "accepted", timeout=20,
               message="the acceptance on hub A")

    # exactly the granted items, for the granted purpose only
    assert b.cli_json("consent", "read", org, handle, "--purpose", "delivery") == {
        "email": "kim@example.org", "address": "1 Quay Street, Dublin"}
    assert b.cli_json("consent", "read", org, handle, "--purpose", "marketing") == {}
    rc, _out, err = b.cli("consent", "read", org, handle, "--purpose", "delivery", "--member", agent, "--json",
                          check=False)
    assert rc != 0 and "admin" in err  # an agent without the right role cannot read

    # every read is in the customer's log, on the customer's hub
    log = a.cli_json("consent", "log", customer)
    assert len(log) == 1 and log[0]["purpose"] == "delivery" and log[0]["items"] == ["address", "email"]
    assert "read your address, email for delivery" in log[0]["text"]

    # a value changed on hub A is what hub B reads next: nothing is copied
    a.cli("profile", "set", customer, "address", "2 Quay Street, Dublin")
    assert b.cli_json("consent", "read", org, handle, "--purpose", "delivery")["address"] == "2 Quay Street, Dublin"

    # revoked: nothing again, at once (hub A refuses before hub B has even heard of it)
    a.cli("consent", "revoke", customer, f"{org}@{b.domain}")
    assert b.cli_json("consent", "read", org, handle, "--purpose", "delivery") == {}
    assert len(a.cli_json("consent", "log", customer)) == 2  # the refused read is not a read

    # receipts: signed by hub A, kept on both sides
    mine = a.cli_json("consent", "list", customer)[0]
    assert [r["event"] for r in mine["receipts"]] == ["granted", "accepted", "revoked"]
    theirs = wait_until(lambda: [g for g in b.cli_json("consent", "list", org)
                                 if len(g["receipts"]) == 3 and g["state"] == "revoked"], timeout=20,
                        message="the receipts on hub B")[0]
    assert [r["receipt"]["consentReceiptID"] for r in theirs["receipts"]] == [
        r["receipt"]["consentReceiptID"] for r in mine["receipts"]]
    receipt = theirs["receipts"][-1]["receipt"]
    assert receipt["piiPrincipalId"] == a.actor_uri(customer) and receipt["event"] == "revoked"
    assert receipt["services"][0]["purposes"][0]["purpose"] == "delivery"
    with urllib.request.urlopen(urllib.request.Request(receipt["signature"]["creator"].split("#")[0], headers={
            "Accept": "application/activity+json"}), timeout=10) as resp:
        instance = json.loads(resp.read())
    from hub.consent import verify_receipt

    assert verify_receipt(receipt, instance["publicKey"]["publicKeyPem"])
    receipt["items"] = ["everything"]
    assert not verify_receipt(receipt, instance["publicKey"]["publicKeyPem"])


def test_a_purpose_the_organization_declared_is_accepted_at_once(hubs):
    a, b = hubs
    customer, org = unique("conc"), unique("conco")
    add(a, customer, "person")
    add(b, org, "organization")
    a.cli("profile", "set", customer, "customer_number", "C-1042")
    a.cli("consent", "grant", customer, f"{org}@{b.domain}", "--items", "customer_number", "--purpose", "support",
          "--expires", "2099-01-01")
    wait_until(lambda: a.cli_json("consent", "list", customer)[0]["state"] == "accepted", timeout=20,
               message="the automatic acceptance")
    assert b.cli_json("consent", "pending", org) == []
    assert b.cli_json("consent", "read", org, f"{customer}@{a.domain}", "--purpose", "support") == {
        "customer_number": "C-1042"}
    # an organization that declares delivery too takes such grants by itself
    b.cli("actor", "set", org, "--consent-purposes", "support,delivery")
    a.cli("consent", "grant", customer, f"{org}@{b.domain}", "--items", "customer_number", "--purpose", "delivery")
    wait_until(lambda: all(g["state"] == "accepted" for g in a.cli_json("consent", "list", customer)), timeout=20,
               message="the second automatic acceptance")
    # bad input: clear errors, nothing stored
    for args, needle in ((("--items", "email", "--purpose", "spying"), "purpose"),
                         (("--items", "Bad Item", "--purpose", "support"), "item"),
                         (("--items", "email", "--purpose", "support", "--expires", "2001-01-01"), "past")):
        rc, _out, err = a.cli("consent", "grant", customer, f"{org}@{b.domain}", *args, check=False)
        assert rc != 0 and needle in err, (args, err)
    assert len(a.cli_json("consent", "list", customer)) == 2


def test_the_export_takes_the_consent_record_with_it(hubs, tmp_path):
    import zipfile

    a, b = hubs
    customer, org = unique("conx"), unique("conxo")
    add(a, customer, "person")
    add(b, org, "organization")
    a.cli("profile", "set", customer, "email", "x@example.org")
    a.cli("consent", "grant", customer, f"{org}@{b.domain}", "--items", "email", "--purpose", "support")
    wait_until(lambda: a.cli_json("consent", "list", customer)[0]["state"] == "accepted", timeout=20,
               message="the acceptance")
    assert b.cli_json("consent", "read", org, f"{customer}@{a.domain}", "--purpose", "support") == {
        "email": "x@example.org"}
    out = tmp_path / "export.zip"
    manifest = json.loads(a.cli("export", customer, "--out", str(out), "--without-private-key", "--json"))
    assert manifest["actor"] == a.actor_uri(customer) and manifest["privateKey"] is False
    with zipfile.ZipFile(out) as z:
        record = json.loads(z.read("consent.json"))
    assert [r["event"] for r in record["receipts"]] == ["granted", "accepted"]
    assert [(r["purpose"], r["items"]) for r in record["reads"]] == [("support", ["email"])]
