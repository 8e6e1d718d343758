"""Two real hubs federating over loopback: follow, posts, direct threads,
edits and deletes, blocks, downtime of the receiver, a crash of the sender,
and refused requests. Every exchange is real HTTP between real processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter

import pytest

from tests.e2e.conftest import ROOT, get_json, unique, wait_until
from tests.helpers import KeyPair, ThreadedRemote

pytestmark = pytest.mark.e2e


def follow_accepted(follower_hub, follower, followee_hub, followee):
    out = follower_hub.cli("follow", follower, followee_hub.handle(followee))
    assert out.startswith("requested") or out.startswith("following")
    wait_until(
        lambda: follower_hub.sql(
            "SELECT f.state FROM follows f JOIN actors a ON a.id=f.follower_id JOIN actors b ON b.id=f.followee_id "
            f"WHERE a.username='{follower}' AND b.uri='{followee_hub.actor_uri(followee)}'"
        ) == [("accepted",)],
        message=f"{follower} to be accepted by {followee}",
    )


def in_timeline(hub, username, uri):
    return [e for e in hub.timeline(username) if e["uri"] == uri]


def test_customer_follows_organization_and_gets_its_public_posts(hubs):
    a, b = hubs
    alice, acme = unique("alice"), unique("acme")
    a.cli("actor", "add", alice, "--kind", "person", "--name", "Alice")
    b.cli("actor", "add", acme, "--kind", "organization", "--name", "Acme")
    follow_accepted(a, alice, b, acme)
    status, followers = get_json(b.actor_uri(acme) + "/followers")
    assert status == 200 and followers["totalItems"] == 1
    uri = b.cli("post", acme, "New product launch today").strip()
    assert uri.startswith(b.base_url + "/m/")
    (entry,) = wait_until(lambda: in_timeline(a, alice, uri), message="the post on hub A")
    assert entry["author"] == b.actor_uri(acme)
    assert entry["text"] == "New product launch today"
    assert entry["visibility"] == "public"
    assert entry["context"].startswith(b.base_url + "/c/")
    assert entry["in_reply_to"] is None and entry["published"].endswith("Z")
    deliveries = b.cli_json("deliveries", uri)
    assert [(d["type"], d["state"], d["inbox"]) for d in deliveries] == [("Create", "delivered", a.base_url + "/inbox")]


def test_direct_messages_form_one_thread_across_hubs(hubs):
    a, b = hubs
    alice, acme = unique("alice"), unique("acme")
    a.cli("actor", "add", alice, "--kind", "person")
    b.cli("actor", "add", acme, "--kind", "organization")
    first = a.cli("post", alice, "My order 42 has not arrived", "--to", b.handle(acme), "--visibility", "direct").strip()
    (got,) = wait_until(lambda: in_timeline(b, acme, first), message="the DM on hub B")
    assert got["visibility"] == "direct"
    assert got["text"].startswith(f"@{acme}@{b.domain}")  # Mastodon notifies only for a visible mention
    context = got["context"]
    assert context.startswith(a.base_url + "/c/")
    reply = b.cli("post", acme, "Sorry! It ships today.", "--reply-to", first, "--visibility", "direct").strip()
    (answer,) = wait_until(lambda: in_timeline(a, alice, reply), message="the answer on hub A")
    assert answer["in_reply_to"] == first and answer["context"] == context and answer["visibility"] == "direct"
    thanks = a.cli("post", alice, "Thanks!", "--reply-to", reply, "--visibility", "direct").strip()
    (last,) = wait_until(lambda: in_timeline(b, acme, thanks))
    assert last["context"] == context and last["in_reply_to"] == reply
    # nobody else can read it
    assert get_json(first)[0] == 404
    assert get_json(reply)[0] == 404


def test_edits_and_deletes_propagate(hubs):
    a, b = hubs
    alice, acme = unique("alice"), unique("acme")
    a.cli("actor", "add", alice, "--kind", "person")
    b.cli("actor", "add", acme, "--kind", "organization")
    follow_accepted(a, alice, b, acme)
    uri = b.cli("post", acme, "Price: 10 EUR").strip()
    wait_until(lambda: in_timeline(a, alice, uri))
    b.cli("edit", acme, uri, "Price: 12 EUR")
    (edited,) = wait_until(lambda: [e for e in in_timeline(a, alice, uri) if e["text"] == "Price: 12 EUR"], message="the edit")
    assert edited["edited"] is not None
    b.cli("delete", acme, uri)
    wait_until(lambda: not in_timeline(a, alice, uri), message="the delete")
    status, doc = get_json(uri)
    assert status == 410 and doc["type"] == "Tombstone"
    rc, _out, err = b.cli("edit", acme, uri, "again", check=False)
    assert rc == 1 and "no note" in err


def test_block_stops_delivery_both_ways(hubs):
    a, b = hubs
    alice, acme = unique("alice"), unique("acme")
    a.cli("actor", "add", alice, "--kind", "person")
    b.cli("actor", "add", acme, "--kind", "organization")
    follow_accepted(a, alice, b, acme)
    follow_accepted(b, acme, a, alice)
    a.cli("block", alice, b.handle(acme))
    # hub B learns of the block: the follows between them end there too
    wait_until(
        lambda: b.sql(
            "SELECT count(*) FROM blocks bl JOIN actors x ON x.id=bl.blocker_id "
            f"WHERE x.uri='{a.actor_uri(alice)}'"
        ) == [(1,)],
        message="the Block on hub B",
    )
    assert b.sql(f"SELECT count(*) FROM follows f JOIN actors x ON x.id=f.follower_id WHERE x.username='{acme}'") == [(0,)]
    assert b.sql(f"SELECT count(*) FROM follows f JOIN actors x ON x.id=f.followee_id WHERE x.username='{acme}'") == [(0,)]
    # B's organization cannot reach her any more, publicly or directly
    public = b.cli("post", acme, "after the block").strip()
    rc, _out, err = b.cli("post", acme, "hello?", "--to", a.handle(alice), "--visibility", "direct", check=False)
    assert rc == 1 and "block" in err
    # and she cannot reach it
    rc, _out, err = a.cli("post", alice, "hi", "--to", b.handle(acme), "--visibility", "direct", check=False)
    assert rc == 1 and "block" in err
    time.sleep(1.0)
    assert not in_timeline(a, alice, public)
    assert all(d["inbox"] != a.base_url + "/inbox" for d in b.cli_json("deliveries", public))


def test_fanout_reaches_a_hub_that_was_down(hubs):
    a, b = hubs
    org = unique("org")
    a.cli("actor", "add", org, "--kind", "organization")
    fans = [unique("fan") for _ in range(3)]
    for fan in fans:
        b.cli("actor", "add", fan, "--kind", "person")
        follow_accepted(b, fan, a, org)
    b.stop()
    try:
        uri = a.cli("post", org, "While you were away").strip()
        failed = wait_until(
            lambda: [d for d in a.cli_json("deliveries", uri) if d["state"] == "queued" and d["last_error"]],
            message="a failed first attempt",
        )
        assert failed[0]["attempts"] >= 1 and failed[0]["inbox"] == b.base_url + "/inbox"
    finally:
        b.start()
    for fan in fans:
        wait_until(lambda fan=fan: in_timeline(b, fan, uri), timeout=30, message=f"{fan} to get the post")
    (delivery,) = a.cli_json("deliveries", uri)  # one shared inbox for the three of them
    assert delivery["state"] == "delivered" and delivery["attempts"] >= 2


@pytest.fixture
def peer():
    remote = ThreadedRemote()
    yield remote
    remote.close()


def test_crash_during_fanout_loses_nothing_and_repeats_no_recorded_success(hubs, peer, tmp_path):
    a, _b = hubs
    remote = peer.remote
    org = unique("org")
    a.cli("actor", "add", org, "--kind", "organization")
    org_uri = a.actor_uri(org)
    # 40 followers on a server without shared inboxes (GoToSocial style): 40 deliveries.
    followers = [remote.add_actor(f"g{i}", "gotosocial") for i in range(40)]
    for i, f in enumerate(followers):
        status, text = peer.post(a.base_url + f"/users/{org}/inbox",
                                 {"id": f"{remote.base}/follows/{i}", "type": "Follow", "actor": f.uri, "object": org_uri},
                                 f, shape="gotosocial-post")
        assert status == 202, text
    wait_until(lambda: len([r for r in remote.received if r["json"]["type"] == "Accept"]) == 40, timeout=30)
    remote.received.clear()
    remote.inbox_delay_s = 0.15  # slow receiver: the fan-out takes a while
    uri = a.cli("post", org, "Crash test").strip()
    wait_until(lambda: len(remote.received) >= 8, message="part of the fan-out")
    a.stop(kill=True)  # SIGKILL in the middle of the fan-out
    recorded = {row[0] for row in a.sql(
        "SELECT json_extract(j.payload, '$.inbox') FROM jobs j JOIN activities act "
        "ON act.id = json_extract(j.payload, '$.activity_id') "
        f"WHERE j.kind='ap.deliver' AND j.state='done' AND act.type='Create' AND act.object_uri='{uri}'"
    )}
    assert 0 < len(recorded) < 40, "the kill should land in the middle of the fan-out"
    remote.inbox_delay_s = 0.0
    a.start()
    wait_until(lambda: {r["path"] for r in remote.received if r["json"]["object"]["id"] == uri} >= {
        f"/users/g{i}/inbox" for i in range(40)}, timeout=60, message="every follower to get the post")
    time.sleep(1.0)
    per_inbox = Counter(r["path"] for r in remote.received if r["json"]["object"]["id"] == uri)
    assert set(per_inbox) == {f"/users/g{i}/inbox" for i in range(40)}
    for path in (p for p in per_inbox if f"http://{remote.host}{p}" in recorded):
        assert per_inbox[path] == 1, f"{path} got a recorded delivery twice"
    # only deliveries in flight at the kill (at most the per-host limit) may repeat
    assert sum(n - 1 for n in per_inbox.values()) <= 4
    assert all(d["state"] == "delivered" for d in a.cli_json("deliveries", uri))


def test_bad_requests_to_a_running_hub_are_refused_and_change_nothing(hubs, peer):
    a, _b = hubs
    remote = peer.remote
    target = unique("acme")
    a.cli("actor", "add", target, "--kind", "organization")
    zoe = remote.add_actor(unique("zoe"))
    inbox = a.base_url + "/inbox"

    def note(text):
        nid = f"{zoe.uri}/statuses/{time.monotonic_ns()}"
        return {"id": nid + "/activity", "type": "Create", "actor": zoe.uri, "to": [a.actor_uri(target)],
                "object": {"id": nid, "type": "Note", "attributedTo": zoe.uri, "content": text, "to": [a.actor_uri(target)]}}

    assert peer.post(inbox, note("warm-up"), zoe)[0] == 202  # the setup itself works
    wait_until(lambda: len(a.timeline(target)) == 1)

    def counts():
        return a.sql("SELECT (SELECT count(*) FROM activities), (SELECT count(*) FROM jobs), (SELECT count(*) FROM messages)")

    before = counts()
    stale = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() - 13 * 3600))
    cases = {
        "forged": peer.post(inbox, note("forged"), zoe, key=KeyPair()),
        "stale": peer.post(inbox, note("stale"), zoe, date=stale),
        "wrong digest": peer.post(inbox, note("digest"), zoe, headers={"Digest": "SHA-256=" + "A" * 43 + "="}),
        "oversized": peer.post(inbox, None, zoe, body=json.dumps(note("x" * 1_100_000)).encode()),
    }
    assert {k: v[0] for k, v in cases.items()} == {"forged": 401, "stale": 401, "wrong digest": 401, "oversized": 413}
    for _name, (_status, text) in cases.items():
        assert json.loads(text)["error"]
    time.sleep(0.5)
    assert counts() == before
    assert len(a.timeline(target)) == 1


def test_cli_rejects_bad_input_with_one_line(hubs):
    a, _b = hubs
    env_cfg = ["--config", str(a.config)]
    for args, needle in (
        (["actor", "add", "Bad Name", "--kind", "person"], "invalid username"),
        (["post", "nobody_here", "hi"], "no local actor"),
        (["follow", "nobody_here", "not a handle"], "no local actor"),
        (["post", "x", "hi", "--visibility", "secret"], "invalid choice"),
        (["timeline"], "required"),
    ):
        proc = subprocess.run([sys.executable, "-m", "hub", *env_cfg, *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert proc.returncode != 0, args
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], proc.stderr


def test_separate_worker_processes_do_the_work_when_serve_does_not(hubs, tmp_path):
    """`workers = false` in serve, and a `roundtable worker` process beside it."""
    from tests.e2e.conftest import HubProcess

    _a, b = hubs
    c = HubProcess("c", tmp_path, workers=False)
    c.start()
    worker = None
    try:
        org, fan = unique("org"), unique("fan")
        c.cli("actor", "add", org, "--kind", "organization")
        b.cli("actor", "add", fan, "--kind", "person")
        b.cli("follow", fan, c.handle(org))
        time.sleep(1.5)  # serve alone stores the Follow but does not act on it
        assert c.sql("SELECT state FROM jobs WHERE kind='ap.inbound'") == [("queued",)]
        worker = subprocess.Popen([sys.executable, "-m", "hub", "--config", str(c.config), "worker"], cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        follow_accepted_wait = lambda: b.sql(  # noqa: E731
            "SELECT f.state FROM follows f JOIN actors t ON t.id=f.followee_id "
            f"WHERE t.uri='{c.actor_uri(org)}'") == [("accepted",)]
        wait_until(follow_accepted_wait, message="the worker to accept the follow")
        uri = c.cli("post", org, "from the worker").strip()
        wait_until(lambda: in_timeline(b, fan, uri), message="the worker to deliver")
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=15)
        c.stop()
