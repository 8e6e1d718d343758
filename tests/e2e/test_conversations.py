"""Conversations the customer owns, across two real hubs: the organization's
agents work them in a shared inbox, the customer keeps their own state, the
owner brings a second organization in, and private notes stay home."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tests.e2e.conftest import get_json, unique, wait_until

pytestmark = pytest.mark.e2e


def show(hub, actor, conversation, member=None):
    args = ["inbox", "show", actor, conversation, "--json"]
    if member:
        args += ["--member", member]
    return json.loads(hub.cli(*args))


def listing(hub, actor, member=None, **filters):
    args = ["inbox", "list", actor, "--json"]
    if member:
        args += ["--member", member]
    for k, v in filters.items():
        args += [f"--{k}", v]
    return json.loads(hub.cli(*args))


def texts(view):
    return [m["text"] for m in view["messages"]]


def test_a_customer_owned_conversation_worked_by_an_organizations_agents(hubs):
    a, b = hubs
    alice, acme, dana, eve = unique("alice"), unique("acme"), unique("dana"), unique("eve")
    a.cli("actor", "add", alice, "--kind", "person", "--name", "Alice")
    b.cli("actor", "add", acme, "--kind", "organization", "--name", "Acme")
    for agent in (dana, eve):
        b.cli("actor", "add", agent, "--kind", "person", "--name", agent.capitalize())
        b.cli("member", "add", acme, agent, "--role", "agent")
    b.cli("actor", "set", acme, "--signature", "— {member_name}, {actor_name} support")

    conv = a.cli("conversation", "start", alice, b.handle(acme), "My order 1234 has not arrived").strip()
    assert conv.startswith(a.base_url + "/c/")  # the container lives with the customer

    # both agents see it in the organization's inbox, owned by the customer, open
    for agent in (dana, eve):
        items = wait_until(lambda agent=agent: [c for c in listing(b, acme, agent) if c["uri"] == conv],
                           message=f"{agent} to see the conversation")
        assert items[0]["owner"] == a.actor_uri(alice) and items[0]["status"] == "open"
        assert not items[0]["hosted_here"]

    b.cli("inbox", "set", acme, conv, "--assign", dana, "--label", "shipping", "--member", dana)
    marker = unique("VIP-customer-note-")
    b.cli("inbox", "set", acme, conv, "--note", marker, "--member", dana)
    reply = b.cli("conversation", "reply", acme, conv, "It ships today, sorry for the wait.", "--member", dana).strip()

    view = wait_until(lambda: (v := show(a, alice, conv)) and reply in [m["uri"] for m in v["messages"]] and v,
                      message="the reply on the customer's hub")
    answer = next(m for m in view["messages"] if m["uri"] == reply)
    assert answer["author"] == b.actor_uri(acme)  # published as the organization...
    assert answer["text"].rstrip().endswith(f"— {dana.capitalize()}, Acme support")  # ...signed by the agent
    assert view["notes"] == []  # the organization's note is not the customer's

    org_view = show(b, acme, conv, member=eve)
    assert org_view["conversation"]["assignee"] == dana and org_view["conversation"]["labels"] == ["shipping"]
    assert [n["text"] for n in org_view["notes"]] == [marker]
    mine = next(m for m in org_view["messages"] if m["uri"] == reply)
    assert mine["member"] == dana
    assert [d["state"] for d in mine["delivery"]] == ["delivered"]
    wait_until(lambda: all(d["state"] == "delivered" for m in show(b, acme, conv, member=eve)["messages"]
                           if m["delivery"] for d in m["delivery"]))

    # each side keeps its own status
    a.cli("inbox", "set", alice, conv, "--status", "resolved")
    assert show(b, acme, conv, member=dana)["conversation"]["status"] == "open"
    b.cli("inbox", "set", acme, conv, "--status", "resolved", "--member", dana)
    follow_up = a.cli("conversation", "reply", alice, conv, "Thanks! Also, can I change the address?").strip()
    wait_until(lambda: show(b, acme, conv, member=dana)["conversation"]["status"] == "open",
               message="the customer's new message to reopen it for the organization")
    assert show(a, alice, conv)["conversation"]["status"] == "resolved"  # her own message reopens nothing for her

    # the customer brings a second organization (on her hub) into the thread
    maker = unique("maker")
    a.cli("actor", "add", maker, "--kind", "organization", "--name", "Maker")
    a.cli("conversation", "add", alice, conv, a.handle(maker))
    from_maker = a.cli("conversation", "reply", maker, conv, "Manufacturer here: the part is in stock.").strip()
    from_acme = b.cli("conversation", "reply", acme, conv, "Address changed.", "--member", eve).strip()
    expected = {follow_up, reply, from_maker, from_acme}
    views = {
        "alice": lambda: show(a, alice, conv),
        "maker": lambda: show(a, maker, conv),
        "acme": lambda: show(b, acme, conv, member=dana),
    }
    for who, fetch in views.items():
        view = wait_until(lambda fetch=fetch: (v := fetch()) and expected <= {m["uri"] for m in v["messages"]} and v,
                          timeout=30, message=f"{who} to see every message")
        counts = Counter(m["uri"] for m in view["messages"])
        assert all(n == 1 for n in counts.values()), f"{who} sees a message twice: {counts}"
        assert len(view["messages"]) == 5  # the first message, and the four above

    # the organization's private note never reached the customer's hub, in any form
    for table, column in (("activities", "raw"), ("messages", "content_text"), ("messages", "raw"), ("jobs", "payload")):
        assert a.sql(f"SELECT count(*) FROM {table} WHERE {column} LIKE '%{marker}%'") == [(0,)], table
    assert b.sql(f"SELECT count(*) FROM activities WHERE raw LIKE '%{marker}%'") == [(0,)]

    # the container can be read by the participants' servers only
    status, _ = get_json(conv)
    assert status == 404

    # the audit log saw the agents read and act
    audit = json.loads(b.cli("member", "audit", acme, "--json"))
    actions = {(e["member"], e["action"]) for e in audit}
    assert {(dana, "conversation.update"), (dana, "message.create"), (eve, "conversation.read")} <= actions


def test_an_organization_writing_first_leaves_the_conversation_to_the_customer(hubs):
    a, b = hubs
    bob, shop = unique("bob"), unique("shop")
    a.cli("actor", "add", bob, "--kind", "person")
    b.cli("actor", "add", shop, "--kind", "organization")
    provisional = b.cli("conversation", "start", shop, a.handle(bob), "Your parcel is ready for pickup.").strip()
    assert provisional.startswith(b.base_url + "/c/")
    # the customer's hub adopts the thread; the organization's hub moves to its container
    adopted = wait_until(lambda: [c for c in listing(a, bob) if c["uri"].startswith(a.base_url)],
                         message="the customer's hub to adopt the conversation")
    conv = adopted[0]["uri"]
    assert adopted[0]["owner"] == a.actor_uri(bob) and adopted[0]["hosted_here"]
    wait_until(lambda: [c["uri"] for c in listing(b, shop)] == [conv], message="the organization's hub to follow")
    answer = a.cli("conversation", "reply", bob, conv, "Thanks, I will come on Monday.").strip()
    wait_until(lambda: answer in [m["uri"] for m in show(b, shop, conv)["messages"]])
    assert len(show(b, shop, conv)["messages"]) == 2 and len(show(a, bob, conv)["messages"]) == 2


def test_agents_of_one_organization_cannot_touch_anothers(hubs):
    a, _b = hubs
    org1, org2, agent1, cust1, cust2 = (unique(x) for x in ("orgone", "orgtwo", "agentone", "custone", "custtwo"))
    for name, kind in ((org1, "organization"), (org2, "organization"), (agent1, "person"), (cust1, "person"),
                       (cust2, "person")):
        a.cli("actor", "add", name, "--kind", kind)
    a.cli("member", "add", org1, agent1, "--role", "agent")
    conv = a.cli("conversation", "start", cust1, a.handle(org2), "private to org2").strip()
    for args in (
        ["inbox", "list", org2, "--member", agent1],
        ["inbox", "show", org2, conv, "--member", agent1],
        ["inbox", "set", org2, conv, "--status", "resolved", "--member", agent1],
        ["conversation", "reply", org2, conv, "hi", "--member", agent1],
        ["inbox", "show", org1, conv, "--member", agent1],  # org1 is not in it: nothing to see
        ["inbox", "show", cust2, conv],  # another customer: nothing
        ["conversation", "reply", cust2, conv, "let me in"],
        ["conversation", "add", org2, conv, a.handle(org1)],  # only the owner adds
    ):
        rc, out, err = a.cli(*args, check=False)
        assert rc != 0 and out == "" and ("not a member" in err or "no such conversation" in err or "owner" in err), (args, err)
