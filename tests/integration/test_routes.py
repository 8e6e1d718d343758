"""Discovery and object endpoints over real HTTP: WebFinger, host-meta,
NodeInfo, content negotiation, collections and visibility of objects."""

from __future__ import annotations

import json

import pytest

from hub import actors, outbox
from hub.federation import discovery
from hub.store import social
from tests.helpers import KeyPair

AP = "application/activity+json"


@pytest.fixture
async def acme(served_hub):
    return await actors.create_local_actor(served_hub, "acme", kind="organization", name="Acme")


async def get(session, url, accept=AP, headers=None):
    async with session.get(url, headers={"Accept": accept, **(headers or {})}) as resp:
        body = await resp.read()
        return resp, body


async def test_webfinger_by_handle_and_by_actor_url(served_hub, session, acme):
    base = served_hub.cfg.base_url
    for resource in (f"acct:acme@{served_hub.cfg.domain}", acme.uri, f"acme@{served_hub.cfg.domain}"):
        async with session.get(f"{base}/.well-known/webfinger", params={"resource": resource}) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("application/jrd+json")
            assert resp.headers["Access-Control-Allow-Origin"] == "*"
            jrd = await resp.json(content_type=None)
        assert jrd["subject"] == f"acct:acme@{served_hub.cfg.domain}"
        assert acme.uri in jrd["aliases"]
        assert {"rel": "self", "type": AP, "href": acme.uri} in jrd["links"]
        assert any(link["rel"] == "http://webfinger.net/rel/profile-page" for link in jrd["links"])
    for resource, status in (("acct:nobody@" + served_hub.cfg.domain, 404), ("acct:acme@elsewhere.example", 404), ("", 400)):
        async with session.get(f"{base}/.well-known/webfinger", params={"resource": resource}) as resp:
            assert resp.status == status


async def test_instance_actor_is_discoverable_and_an_application(served_hub, session):
    base = served_hub.cfg.base_url
    async with session.get(f"{base}/.well-known/webfinger", params={"resource": f"{base}/actor"}) as resp:
        jrd = await resp.json(content_type=None)
    assert jrd["links"][0]["href"] == f"{base}/actor"
    resp, body = await get(session, f"{base}/actor")
    doc = json.loads(body)
    assert doc["type"] == "Application" and doc["publicKey"]["id"] == f"{base}/actor#main-key"
    assert doc["publicKey"]["publicKeyPem"].startswith("-----BEGIN PUBLIC KEY-----")


async def test_host_meta_and_nodeinfo_with_real_counts(served_hub, session, acme):
    base = served_hub.cfg.base_url
    await actors.create_local_actor(served_hub, "alice", kind="person")
    await outbox.post_note(served_hub, acme, "one")
    await outbox.post_note(served_hub, acme, "two", visibility="followers")
    async with session.get(f"{base}/.well-known/host-meta") as resp:
        xml = await resp.text()
    assert f'template="{base}/.well-known/webfinger?resource={{uri}}"' in xml
    async with session.get(f"{base}/.well-known/nodeinfo") as resp:
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
        links = (await resp.json())["links"]
    href = next(link["href"] for link in links if link["rel"].endswith("/2.1"))
    async with session.get(href) as resp:
        info = await resp.json()
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
        assert resp.headers["Content-Type"] == 'application/json; profile="http://nodeinfo.diaspora.software/ns/schema/2.1#"'
    assert info["version"] == "2.1" and info["software"]["name"] == "roundtable"
    assert info["protocols"] == ["activitypub"]
    assert info["usage"]["users"] == {"total": 2, "activeMonth": 1, "activeHalfyear": 1}
    assert info["usage"]["localPosts"] == 2


@pytest.mark.parametrize(
    ("accept", "json_expected"),
    [
        (AP, True),
        ('application/ld+json; profile="https://www.w3.org/ns/activitystreams"', True),
        ("application/activity+json, application/ld+json", True),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", False),
        ("text/html;q=0.5, application/activity+json", True),
        ("", False),
    ],
)
async def test_actor_url_negotiates_json_or_html(served_hub, session, acme, accept, json_expected):
    resp, body = await get(session, acme.uri, accept=accept)
    assert resp.status == 200
    assert "Accept" in resp.headers["Vary"].split(", ")  # and Cookie: a signed-in page differs
    if json_expected:
        assert resp.headers["Content-Type"].startswith(AP)
        doc = json.loads(body)
        assert doc["id"] == acme.uri and doc["type"] == "Organization"
    else:
        assert resp.headers["Content-Type"].startswith("text/html")
        assert b'class="profile h-card"' in body and b"@acme@" in body


async def test_collections_show_totals_to_anyone_and_page(served_hub, session, remote, acme):
    rows = []
    for n in range(3):
        actor = remote.add_actor(f"f{n}")
        rows.append(await discovery.ensure_actor(served_hub.federation, actor.uri))
    async with served_hub.db.write() as conn:
        for row in rows:
            await social.put_follow(conn, follower_id=row.id, followee_id=acme.id, state="accepted", uri=None)
    for n in range(25):
        await outbox.post_note(served_hub, acme, f"note {n}")
    doc = json.loads((await get(session, acme.followers_uri))[1])
    assert doc["type"] == "OrderedCollection" and doc["totalItems"] == 3
    page = json.loads((await get(session, doc["first"]))[1])
    assert sorted(page["orderedItems"]) == sorted(r.uri for r in rows)
    assert page["id"] == doc["first"] and page["partOf"] == acme.followers_uri
    following = json.loads((await get(session, acme.following_uri))[1])
    assert following["totalItems"] == 0
    outbox_doc = json.loads((await get(session, acme.outbox_uri))[1])
    assert outbox_doc["totalItems"] == 25
    first = json.loads((await get(session, outbox_doc["first"]))[1])
    assert len(first["orderedItems"]) == 20 and first["orderedItems"][0]["type"] == "Create"
    assert first["orderedItems"][0]["object"]["content"] == "<p>note 24</p>"
    second = json.loads((await get(session, first["next"]))[1])
    assert len(second["orderedItems"]) == 5 and "next" not in second
    featured = json.loads((await get(session, acme.featured_uri))[1])
    assert featured["type"] == "OrderedCollection" and featured["orderedItems"] == []


async def test_followers_only_notes_are_served_only_to_signed_followers(served_hub, session, remote, acme):
    fan = remote.add_actor("fan")
    stranger = remote.add_actor("stranger")
    fan_row = await discovery.ensure_actor(served_hub.federation, fan.uri)
    async with served_hub.db.write() as conn:
        await social.put_follow(conn, follower_id=fan_row.id, followee_id=acme.id, state="accepted", uri=None)
    note = await outbox.post_note(served_hub, acme, "members only", visibility="followers")

    async def fetch(actor, url, key=None):
        headers = actor.sign(url, None, shape="mastodon-4.4-get", key=key) if actor else {}
        headers.pop("Host", None)
        headers.setdefault("Accept", AP)  # signed GETs sign the Accept they send
        async with session.get(url, headers=headers) as resp:
            return resp.status

    assert await fetch(None, note.uri) == 404
    assert await fetch(stranger, note.uri) == 404
    assert await fetch(fan, note.uri) == 200
    assert await fetch(fan, note.uri, key=KeyPair()) == 401  # a bad signature is refused, not ignored
    # the outbox counts what the requester may see
    async def outbox_total(actor):
        headers = actor.sign(acme.outbox_uri, None, shape="mastodon-4.4-get") if actor else {"Accept": AP}
        headers.pop("Host", None)
        async with session.get(acme.outbox_uri, headers=headers) as resp:
            return (await resp.json(content_type=None))["totalItems"]

    assert await outbox_total(fan) == 1
    assert await outbox_total(stranger) == 0
    assert await outbox_total(None) == 0


async def test_deleted_note_answers_410_with_a_tombstone(served_hub, session, acme):
    note = await outbox.post_note(served_hub, acme, "soon gone")
    resp, _ = await get(session, note.uri)
    assert resp.status == 200
    await outbox.delete_note(served_hub, acme, (await outbox.get_own_message(served_hub, acme, note.uri)))
    resp, body = await get(session, note.uri)
    assert resp.status == 410
    assert json.loads(body)["type"] == "Tombstone"


async def test_note_has_context_and_replies_collection(served_hub, session, acme):
    alice = await actors.create_local_actor(served_hub, "alice", kind="person")
    root = await outbox.post_note(served_hub, acme, "root")
    reply = await outbox.post_note(served_hub, alice, "reply", in_reply_to=root)
    doc = json.loads((await get(session, root.uri))[1])
    reply_doc = json.loads((await get(session, reply.uri))[1])
    assert doc["context"] == reply_doc["context"] and reply_doc["inReplyTo"] == root.uri
    replies = json.loads((await get(session, doc["replies"]["id"]))[1])
    assert replies["totalItems"] == 1
    page = json.loads((await get(session, replies["first"]))[1])
    assert page["orderedItems"] == [reply.uri]
    conversation = json.loads((await get(session, doc["context"]))[1])
    assert conversation["type"] == "OrderedCollection" and conversation["totalItems"] == 2
    assert conversation["attributedTo"] == acme.uri
    items = json.loads((await get(session, conversation["first"]))[1])["orderedItems"]
    assert items == [root.uri, reply.uri]
    # the reply addressed the parent's author and mentions them
    assert reply_doc["tag"][0]["href"] == acme.uri and acme.uri in reply_doc["cc"]


async def test_a_signature_we_cannot_check_yet_gets_public_content_only(served_hub, session, remote, acme):
    ghost = remote.add_actor("ghost")
    remote.gone.add(ghost.uri)  # its key cannot be fetched
    public = await outbox.post_note(served_hub, acme, "for everyone")
    private = await outbox.post_note(served_hub, acme, "members", visibility="followers")
    for url, status in ((public.uri, 200), (private.uri, 404), (acme.uri, 200)):
        headers = ghost.sign(url, None, shape="mastodon-4.4-get")
        headers.pop("Host")
        async with session.get(url, headers=headers) as resp:
            assert resp.status == status, url


async def test_activities_are_served_to_whom_their_note_is(served_hub, session, remote, acme):
    bob = remote.add_actor("bob")
    stranger = remote.add_actor("stranger")
    bob_row = await discovery.ensure_actor(served_hub.federation, bob.uri)
    public = await outbox.post_note(served_hub, acme, "for all")
    direct = await outbox.post_note(served_hub, acme, "for bob", visibility="direct", recipients=[bob_row])
    await served_hub.runner.drain(raise_errors=False)
    async with served_hub.db.read() as conn:
        from hub.store import jobs as job_store

        public_act = (await job_store.list_activity_ids_for_object(conn, public.uri))[0]
        direct_act = (await job_store.list_activity_ids_for_object(conn, direct.uri))[0]

    async def status(url, actor=None):
        headers = actor.sign(url, None, shape="mastodon-4.4-get") if actor else {"Accept": AP}
        headers.pop("Host", None)
        async with session.get(url, headers=headers) as resp:
            body = await resp.read()
            return resp.status, body

    code, body = await status(served_hub.uris.activity(public_act))
    assert code == 200 and json.loads(body)["type"] == "Create" and json.loads(body)["object"]["id"] == public.uri
    assert (await status(served_hub.uris.activity(direct_act)))[0] == 404
    assert (await status(served_hub.uris.activity(direct_act), stranger))[0] == 404
    code, body = await status(served_hub.uris.activity(direct_act), bob)
    assert code == 200 and json.loads(body)["object"]["content"].endswith("for bob</p>")
    assert (await status(served_hub.uris.activity("01aaaaaaaaaaaaaaaaaaaaaaaa")))[0] == 404


async def test_instance_actor_outbox_exists(served_hub, session):
    resp, body = await get(session, served_hub.cfg.base_url + "/actor/outbox")
    assert resp.status == 200 and json.loads(body)["totalItems"] == 0
