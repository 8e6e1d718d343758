"""Customers and organizations on equal footing: every actor-level capability,
run once for a Person and once for an Organization, over two real hubs.
The same assertions hold for both kinds; nothing branches on the kind."""

from __future__ import annotations

import urllib.parse

import pytest

from tests.e2e.conftest import get_json, unique, wait_until
from tests.e2e.test_federation import follow_accepted, in_timeline

pytestmark = pytest.mark.e2e
KINDS = ["person", "organization"]
TYPES = {"person": "Person", "organization": "Organization"}


def make(hub, kind, prefix="x"):
    name = unique(prefix)
    hub.cli("actor", "add", name, "--kind", kind, "--name", f"{kind} {name}")
    return name


def test_both_kinds_publish_the_same_actor_shape(hubs):
    a, _b = hubs
    docs = {kind: get_json(a.actor_uri(make(a, kind)))[1] for kind in KINDS}
    person, org = docs["person"], docs["organization"]
    assert person["type"] == "Person" and org["type"] == "Organization"
    assert set(person) == set(org)
    assert set(person["endpoints"]) == set(org["endpoints"])
    assert set(person["publicKey"]) == set(org["publicKey"])


@pytest.mark.parametrize("kind", KINDS)
def test_actor_document_endpoints_and_discovery(hubs, kind):
    a, _b = hubs
    x = make(a, kind)
    uri = a.actor_uri(x)
    status, doc = get_json(uri)
    assert status == 200 and doc["type"] == TYPES[kind]
    for field in ("inbox", "outbox", "followers", "following", "featured"):
        assert doc[field].startswith(uri)
    assert doc["endpoints"]["sharedInbox"] == a.base_url + "/inbox"
    key = doc["publicKey"]
    assert key["id"] == uri + "#main-key" and key["owner"] == uri
    assert key["publicKeyPem"].startswith("-----BEGIN PUBLIC KEY-----")
    for field in ("preferredUsername", "name", "summary", "url", "icon", "published", "manuallyApprovesFollowers",
                  "discoverable", "attachment"):
        assert field in doc, field
    for collection in ("outbox", "followers", "following", "featured"):
        status, col = get_json(doc[collection])
        assert status == 200 and col["type"] == "OrderedCollection" and col["totalItems"] == 0
    status, jrd = get_json(f"{a.base_url}/.well-known/webfinger?resource=" + urllib.parse.quote(f"acct:{x}@{a.domain}"),
                           accept="application/jrd+json")
    assert status == 200 and jrd["links"][0]["href"] == uri
    status, _ = get_json(uri, accept="text/html")
    assert status == 200


@pytest.mark.parametrize("kind", KINDS)
def test_followed_automatically_or_after_approval(hubs, kind):
    a, b = hubs
    x = make(a, kind)
    f1, f2, f3 = (make(b, "person", "f") for _ in range(3))
    follow_accepted(b, f1, a, x)
    a.cli("actor", "set", x, "--manually-approves-followers", "yes")
    assert get_json(a.actor_uri(x))[1]["manuallyApprovesFollowers"] is True
    for f in (f2, f3):
        assert b.cli("follow", f, a.handle(x)).startswith("requested")
    wait_until(lambda: len(a.cli("follow-requests", x).splitlines()) == 2, message="two pending requests")
    a.cli("follow-requests", x, "accept", b.handle(f2))
    a.cli("follow-requests", x, "reject", b.handle(f3))
    wait_until(lambda: b.sql(
        f"SELECT a.username, f.state FROM follows f JOIN actors a ON a.id=f.follower_id JOIN actors t ON t.id=f.followee_id "
        f"WHERE t.uri='{a.actor_uri(x)}' ORDER BY a.username") == sorted([(f1, "accepted"), (f2, "accepted")]),
        message="accept and reject to arrive on hub B")
    assert get_json(a.actor_uri(x) + "/followers")[1]["totalItems"] == 2


@pytest.mark.parametrize("kind", KINDS)
def test_posts_reach_exactly_their_audience(hubs, kind):
    a, b = hubs
    x = make(a, kind)
    follower, stranger = make(b, "person", "fol"), make(b, "organization", "str")
    follow_accepted(b, follower, a, x)
    public = a.cli("post", x, "public words").strip()
    members = a.cli("post", x, "followers only", "--visibility", "followers").strip()
    private = a.cli("post", x, "just for you", "--visibility", "direct", "--to", b.handle(stranger)).strip()
    wait_until(lambda: {e["uri"] for e in b.timeline(follower)} == {public, members}, message="follower's timeline")
    wait_until(lambda: {e["uri"] for e in b.timeline(stranger)} == {private}, message="addressee's timeline")
    assert get_json(public)[0] == 200 and get_json(members)[0] == 404 and get_json(private)[0] == 404
    assert get_json(a.actor_uri(x) + "/outbox")[1]["totalItems"] == 1  # what an anonymous reader may see


@pytest.mark.parametrize("kind", KINDS)
def test_receives_messages_replies_and_reactions(hubs, kind):
    a, b = hubs
    x = make(a, kind)
    other = make(b, "person", "o")
    follow_accepted(b, other, a, x)
    note = a.cli("post", x, "what do you think?").strip()
    wait_until(lambda: in_timeline(b, other, note))
    reply = b.cli("post", other, "I like it", "--reply-to", note).strip()
    b.cli("like", other, note)
    b.cli("boost", other, note)
    (got,) = wait_until(lambda: in_timeline(a, x, reply), message="the reply")
    assert got["in_reply_to"] == note
    wait_until(lambda: a.sql(f"SELECT kind FROM reactions WHERE object_uri='{note}' ORDER BY kind") == [("announce",), ("like",)],
               message="like and boost")
    b.cli("like", other, note, "--undo")
    wait_until(lambda: a.sql(f"SELECT kind FROM reactions WHERE object_uri='{note}'") == [("announce",)])
    status, replies = get_json(get_json(note)[1]["replies"]["first"])
    assert replies["orderedItems"] == [reply]


@pytest.mark.parametrize("kind", KINDS)
def test_follows_others_blocks_and_updates_its_profile(hubs, kind):
    a, b = hubs
    x = make(a, kind)
    followee = make(b, "organization", "fe")
    follow_accepted(a, x, b, followee)
    assert get_json(a.actor_uri(x) + "/following")[1]["totalItems"] == 1
    note = b.cli("post", followee, "news").strip()
    wait_until(lambda: in_timeline(a, x, note))
    # the profile change reaches the servers of its followers
    fan = make(b, "person", "fan")
    follow_accepted(b, fan, a, x)
    a.cli("actor", "set", x, "--name", "Renamed", "--field", "Website=https://example.org")
    wait_until(lambda: b.sql(f"SELECT name FROM actors WHERE uri='{a.actor_uri(x)}'") == [("Renamed",)],
               message="the Update on hub B")
    assert get_json(a.actor_uri(x))[1]["attachment"][0]["name"] == "Website"
    # and blocking works the same
    a.cli("block", x, b.handle(followee))
    wait_until(lambda: b.sql(
        f"SELECT count(*) FROM blocks bl JOIN actors s ON s.id = bl.blocker_id WHERE s.uri='{a.actor_uri(x)}'") == [(1,)])
    assert get_json(a.actor_uri(x) + "/following")[1]["totalItems"] == 0
    a.cli("unblock", x, b.handle(followee))
    wait_until(lambda: b.sql(
        f"SELECT count(*) FROM blocks bl JOIN actors s ON s.id = bl.blocker_id WHERE s.uri='{a.actor_uri(x)}'") == [(0,)])
