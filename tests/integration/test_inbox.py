"""The inbox over real HTTP: what is accepted, what is refused and why, and
what accepted activities do once their jobs run. Peers are FakeRemote
servers speaking in the shapes of Mastodon, GoToSocial, Misskey, Akkoma and
Fedify (see tests/helpers.py)."""

from __future__ import annotations

import asyncio
import email.utils
import json
import time

import pytest
import sqlalchemy as sa

from hub import actors, outbox
from hub.federation import discovery
from hub.store import messages as msg_store
from hub.store import social
from tests.helpers import PUBLIC, KeyPair, load_fixture, post_signed

STYLES = [
    ("mastodon", "mastodon-4.4-post"),
    ("mastodon", "mastodon-rfc9421-post"),
    ("gotosocial", "gotosocial-post"),
    ("misskey", "misskey-post"),
    ("akkoma", "akkoma-post"),
    ("pleroma_pkcs1", "pleroma-no-algorithm"),
    ("fedify", "fedify-cavage-post"),
    ("fedify", "fedify-rfc9421-post"),
]


async def counts(hub) -> dict:
    async with hub.db.read() as conn:
        out = {}
        for table in ("activities", "jobs", "messages", "follows", "timeline", "actors"):
            out[table] = (await conn.execute(sa.text(f"SELECT count(*) FROM {table}"))).scalar_one()
        return out


@pytest.fixture
async def acme(served_hub):
    return await actors.create_local_actor(served_hub, "acme", kind="organization", name="Acme")


def inbox_url(hub, username: str | None = None) -> str:
    return hub.uris.inbox(username) if username else hub.uris.shared_inbox()


def note_activity(actor, *, to, cc=(), text="hello", note_id=None, in_reply_to=None, context=None):
    note_id = note_id or f"{actor.uri}/statuses/{time.monotonic_ns()}"
    note = {"id": note_id, "type": "Note", "attributedTo": actor.uri, "content": f"<p>{text}</p>",
            "to": list(to), "cc": list(cc), "published": "2026-11-20T10:00:00Z", "inReplyTo": in_reply_to}
    if context:
        note["context"] = context
    return {"@context": "https://www.w3.org/ns/activitystreams", "id": note_id + "/activity", "type": "Create",
            "actor": actor.uri, "to": list(to), "cc": list(cc), "object": note}


async def test_follow_is_accepted_and_answered_with_an_embedded_follow(served_hub, remote, session, acme):
    zoe = remote.add_actor("zoe")
    follow = {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{remote.base}/f/1", "type": "Follow",
              "actor": zoe.uri, "object": acme.uri}
    status, _ = await post_signed(session, inbox_url(served_hub, "acme"), follow, zoe)
    assert status == 202
    await served_hub.runner.drain()
    async with served_hub.db.read() as conn:
        assert await social.count_follows(conn, acme.id, followers=True) == 1
    accept = [r for r in remote.received if r["json"]["type"] == "Accept"]
    assert len(accept) == 1
    body = accept[0]["json"]
    assert body["actor"] == acme.uri and body["id"].startswith(served_hub.cfg.base_url)
    assert body["object"] == {"id": f"{remote.base}/f/1", "type": "Follow", "actor": zoe.uri, "object": acme.uri}


@pytest.mark.parametrize(("style", "shape"), STYLES)
async def test_each_servers_create_is_accepted_and_lands_in_the_timeline(served_hub, remote, session, acme, style, shape):
    zoe = remote.add_actor("zoe", style)
    activity = note_activity(zoe, to=[acme.uri], text=f"hi from {style}")
    status, text = await post_signed(session, inbox_url(served_hub), activity, zoe, shape=shape)
    assert status == 202, text
    await served_hub.runner.drain()
    async with served_hub.db.read() as conn:
        entries = await msg_store.list_timeline(conn, acme.id, limit=10)
    assert [e.content_text for e in entries] == [f"hi from {style}"]
    assert entries[0].visibility == "direct"
    # JSON-LD is plain JSON here: no @context document was ever fetched.
    assert not [p for m, p in remote.requests if "schemas" in p or "litepub" in p]


@pytest.mark.parametrize("fixture", ["mastodon_public", "gotosocial_followers", "akkoma_reply", "fedify_note"])
async def test_fixture_notes_from_followed_actors_arrive(served_hub, remote, session, acme, fixture):
    style = {"mastodon_public": "mastodon", "gotosocial_followers": "gotosocial", "akkoma_reply": "akkoma",
             "fedify_note": "fedify"}[fixture]
    zoe = remote.add_actor("zoe", style)
    zoe_row = await discovery.ensure_actor(served_hub.federation, zoe.uri)
    async with served_hub.db.write() as conn:
        await social.put_follow(conn, follower_id=acme.id, followee_id=zoe_row.id, state="accepted", uri=None)
    activity = load_fixture(f"notes/{fixture}.json", base=remote.base, username="zoe", host=remote.host,
                            target=acme.uri, object=f"{served_hub.cfg.base_url}/m/01aaaaaaaaaaaaaaaaaaaaaaaa")
    status, text = await post_signed(session, inbox_url(served_hub), activity, zoe)
    assert status == 202, text
    await served_hub.runner.drain()
    async with served_hub.db.read() as conn:
        entries = await msg_store.list_timeline(conn, acme.id, limit=10)
    assert [e.uri for e in entries] == [activity["object"]["id"]]


async def test_replay_is_accepted_and_changes_nothing(served_hub, remote, session, acme):
    zoe = remote.add_actor("zoe")
    activity = note_activity(zoe, to=[acme.uri])
    assert (await post_signed(session, inbox_url(served_hub), activity, zoe))[0] == 202
    await served_hub.runner.drain()
    before = await counts(served_hub)
    for _ in range(3):
        assert (await post_signed(session, inbox_url(served_hub), activity, zoe))[0] == 202
    await served_hub.runner.drain()
    assert await counts(served_hub) == before


def _stale_date() -> str:
    return email.utils.formatdate(time.time() - 13 * 3600, usegmt=True)


@pytest.mark.parametrize(
    ("case", "status", "reason"),
    [
        ("unsigned", 401, "not signed"),
        ("forged", 401, "does not verify"),
        ("stale", 401, "too old"),
        ("wrong_digest", 401, "Digest does not match"),
        ("not_json", 400, "not valid JSON"),
        ("not_activity", 400, "not an activity"),
        ("other_actor", 401, "signer is not"),
        ("foreign_id", 400, "not on its actor's origin"),
        ("nul_id", 400, "not a usable URI"),
        ("deep_json", 400, "not valid JSON"),
        ("bad_created", 401, "malformed created"),
        ("huge_created", 401, "malformed Signature-Input"),
        ("bad_algorithm", 401, "unsupported signature algorithm"),
        ("other_host", 401, "signed for"),
        ("unchecked_digest", 401, "does not cover a digest"),
        ("oversized", 413, "larger than"),
        ("oversized_unsigned", 413, "larger than"),
    ],
)
async def test_bad_requests_are_refused_and_store_nothing(served_hub, remote, remote2, session, acme, case, status, reason):
    zoe = remote.add_actor("zoe")
    other = remote2.add_actor("mallory", "gotosocial")  # another origin
    await discovery.ensure_actor(served_hub.federation, zoe.uri)  # a known actor, so key checks are real
    activity = note_activity(zoe, to=[acme.uri])
    body = json.dumps(activity).encode()
    url = inbox_url(served_hub)
    before = await counts(served_hub)
    kwargs: dict = {}
    if case == "unsigned":
        async with session.post(url, data=body, headers={"Content-Type": "application/activity+json"}) as resp:
            got, text = resp.status, await resp.text()
    elif case == "forged":
        # zoe's key id, signed with a key that is not the one zoe publishes
        got, text = await post_signed(session, url, activity, zoe, key=KeyPair())
    elif case == "stale":
        got, text = await post_signed(session, url, activity, zoe, date=_stale_date())
    elif case == "wrong_digest":
        hdrs = zoe.sign(url, body)
        hdrs.pop("Host")
        hdrs.pop("Content-Length")
        async with session.post(url, data=body.replace(b"hello", b"HELLO"), headers=hdrs) as resp:
            got, text = resp.status, await resp.text()
    elif case == "not_json":
        got, text = await post_signed(session, url, None, zoe, body=b"{not json")
    elif case == "not_activity":
        got, text = await post_signed(session, url, None, zoe, body=b'["a list"]')
    elif case == "nul_id":
        got, text = await post_signed(session, url, dict(activity, id=activity["id"] + "\u0000x"), zoe)
    elif case == "deep_json":
        got, text = await post_signed(session, url, None, zoe, body=b"[" * 200_000 + b"]" * 200_000)
    elif case in ("bad_created", "bad_algorithm"):
        hdrs = zoe.sign(url, body)
        hdrs.pop("Host")
        hdrs.pop("Content-Length")
        if case == "bad_created":
            hdrs["Signature"] += ',created="1e400"'
        else:
            hdrs["Signature"] = hdrs["Signature"].replace('algorithm="rsa-sha256"', 'algorithm="hmac-sha256"')
        async with session.post(url, data=body, headers=hdrs) as resp:
            got, text = resp.status, await resp.text()
    elif case == "other_host":
        # a request zoe signed for another server, replayed to us
        other_url = url.replace(served_hub.cfg.domain, "elsewhere.example")
        hdrs = zoe.sign(other_url, body)
        hdrs.pop("Content-Length")
        async with session.post(url, data=body, headers=hdrs) as resp:  # Host: elsewhere.example
            got, text = resp.status, await resp.text()
    elif case == "unchecked_digest":
        # the signature covers a SHA-1 Digest we do not check; the SHA-256
        # Content-Digest that matches is not signed
        import base64
        import email.utils as eu
        import hashlib

        date = eu.formatdate(usegmt=True)
        digest = "SHA=" + base64.b64encode(hashlib.sha1(b"something else").digest()).decode()
        path = url.split(served_hub.cfg.domain, 1)[1]
        signing = f"(request-target): post {path}\nhost: {served_hub.cfg.domain}\ndate: {date}\ndigest: {digest}"
        sig = base64.b64encode(zoe.key.sign(signing.encode())).decode()
        hdrs = {
            "Date": date, "Digest": digest,
            "Content-Digest": "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":",
            "Signature": f'keyId="{zoe.key_id}",algorithm="rsa-sha256",headers="(request-target) host date digest",'
                         f'signature="{sig}"',
            "Content-Type": "application/activity+json",
        }
        async with session.post(url, data=body, headers=hdrs) as resp:
            got, text = resp.status, await resp.text()
    elif case == "huge_created":
        got, text = await post_signed(session, url, activity, zoe, shape="mastodon-rfc9421-post", created=10**20)
    elif case == "foreign_id":
        spoofed = dict(activity, id=f"{remote2.base}/activities/1")  # pre-empting another server's id
        got, text = await post_signed(session, url, spoofed, zoe)
    elif case == "other_actor":
        forged = note_activity(other, to=[acme.uri])
        got, text = await post_signed(session, url, forged, zoe)  # zoe signs an activity of mallory's, on another server
    else:
        big = json.dumps(dict(activity, padding="x" * (served_hub.cfg.max_inbox_body + 10))).encode()
        if case == "oversized":
            got, text = await post_signed(session, url, None, zoe, body=big)
        else:
            async with session.post(url, data=big) as resp:
                got, text = resp.status, await resp.text()
    assert got == status, text
    assert reason in json.loads(text)["error"]
    await served_hub.runner.drain()
    assert await counts(served_hub) == before, kwargs


async def test_delete_from_unknown_actor_is_dropped_without_fetching_its_key(served_hub, remote, session, acme):
    ghost = remote.add_actor("ghost")
    remote.gone.add(ghost.uri)
    delete = {"@context": "https://www.w3.org/ns/activitystreams", "id": ghost.uri + "#delete", "type": "Delete",
              "actor": ghost.uri, "object": ghost.uri, "to": [PUBLIC]}
    before = await counts(served_hub)
    status, _ = await post_signed(session, inbox_url(served_hub), delete, ghost)
    assert status == 202
    assert remote.requests == []  # no key fetch, no actor fetch
    assert await counts(served_hub) == before


async def test_key_rotation_refetches_the_key_once(served_hub, remote, session, acme):
    zoe = remote.add_actor("zoe")
    await discovery.ensure_actor(served_hub.federation, zoe.uri)
    remote.requests.clear()
    zoe.key = KeyPair()  # rotated at the origin; our cache holds the old key
    status, text = await post_signed(session, inbox_url(served_hub), note_activity(zoe, to=[acme.uri]), zoe)
    assert status == 202, text
    assert remote.requests == [("GET", "/users/zoe")]
    # Bad signatures right after are refused without fetching the key again
    # (at most one refetch per key every 30 s: no amplification).
    for _ in range(3):
        status, text = await post_signed(session, inbox_url(served_hub), note_activity(zoe, to=[acme.uri]), zoe,
                                         key=KeyPair())
        assert status == 401 and "does not verify" in text
    assert remote.requests == [("GET", "/users/zoe")]


async def test_a_squatted_key_id_cannot_lock_its_owner_out(served_hub, remote, remote2, session, acme):
    zoe = remote.add_actor("zoe")
    mallory = remote2.add_actor("mallory")
    await discovery.ensure_actor(served_hub.federation, zoe.uri)
    original = remote2.actors["mallory"].doc

    class Squatter(type(mallory)):
        @property
        def doc(self):
            doc = dict(original)
            doc["publicKey"] = dict(original["publicKey"], id=zoe.key_id)  # claims zoe's key id
            return doc

    mallory.__class__ = Squatter
    await discovery.ensure_actor(served_hub.federation, mallory.uri, refresh=True)
    status, text = await post_signed(session, inbox_url(served_hub), note_activity(zoe, to=[acme.uri]), zoe)
    assert status == 202, text


async def test_gotosocial_key_stub_leads_to_the_full_actor(served_hub, remote, session, acme):
    gts = remote.add_actor("gina", "gotosocial")
    status, text = await post_signed(session, inbox_url(served_hub), note_activity(gts, to=[acme.uri]), gts, shape="gotosocial-post")
    assert status == 202, text
    assert ("GET", "/users/gina/main-key") in remote.requests and ("GET", "/users/gina") in remote.requests


async def test_personal_inbox_of_unknown_actor_is_404(served_hub, remote, session):
    zoe = remote.add_actor("zoe")
    status, text = await post_signed(session, served_hub.uris.inbox("nobody"), note_activity(zoe, to=[]), zoe)
    assert status == 404


async def test_shared_inbox_reaches_only_addressed_actors_and_followers(served_hub, remote, session, acme):
    alice = await actors.create_local_actor(served_hub, "alice", kind="person")
    carol = await actors.create_local_actor(served_hub, "carol", kind="person")
    zoe = remote.add_actor("zoe")
    zoe_row = await discovery.ensure_actor(served_hub.federation, zoe.uri)
    async with served_hub.db.write() as conn:
        await social.put_follow(conn, follower_id=alice.id, followee_id=zoe_row.id, state="accepted", uri=None)
    followers_only = note_activity(zoe, to=[zoe.doc["followers"]], text="for followers")
    direct = note_activity(zoe, to=[acme.uri], text="for acme")
    public_unaddressed = note_activity(zoe, to=[PUBLIC], text="to the world")
    for activity in (followers_only, direct, public_unaddressed):
        assert (await post_signed(session, inbox_url(served_hub), activity, zoe))[0] == 202
    await served_hub.runner.drain()

    async def texts(actor):
        async with served_hub.db.read() as conn:
            return sorted(e.content_text for e in await msg_store.list_timeline(conn, actor.id, limit=10))

    assert await texts(alice) == ["for followers"]
    assert await texts(acme) == ["for acme"]
    assert await texts(carol) == []


async def test_update_and_delete_of_a_note_apply_only_from_its_author(served_hub, remote, session, acme):
    zoe = remote.add_actor("zoe")
    mallory = remote.add_actor("mallory")
    create = note_activity(zoe, to=[acme.uri], text="first")
    note = create["object"]
    assert (await post_signed(session, inbox_url(served_hub), create, zoe))[0] == 202
    await served_hub.runner.drain()
    hijack = {"id": mallory.uri + "#u1", "type": "Update", "actor": mallory.uri,
              "object": dict(note, content="<p>hijacked</p>", updated="2026-11-21T00:00:00Z")}
    assert (await post_signed(session, inbox_url(served_hub), hijack, mallory))[0] == 202
    update = {"id": zoe.uri + "#u1", "type": "Update", "actor": zoe.uri,
              "object": dict(note, content="<p>second</p>", updated="2026-11-21T00:00:00Z")}
    assert (await post_signed(session, inbox_url(served_hub), update, zoe))[0] == 202
    await served_hub.runner.drain(raise_errors=False)
    async with served_hub.db.read() as conn:
        msg = await msg_store.get_message_by_uri(conn, note["id"])
    assert msg.content_text == "second" and msg.edited_at is not None
    stale = {"id": zoe.uri + "#u0", "type": "Update", "actor": zoe.uri,
             "object": dict(note, content="<p>older</p>", updated="2026-11-20T12:00:00Z")}
    assert (await post_signed(session, inbox_url(served_hub), stale, zoe))[0] == 202
    delete = {"id": zoe.uri + "#d", "type": "Delete", "actor": zoe.uri, "object": {"id": note["id"], "type": "Tombstone"}}
    assert (await post_signed(session, inbox_url(served_hub), delete, zoe))[0] == 202
    await served_hub.runner.drain()
    async with served_hub.db.read() as conn:
        msg = await msg_store.get_message_by_uri(conn, note["id"])
        assert msg.deleted_at is not None and msg.content_text == ""
        assert await msg_store.list_timeline(conn, acme.id, limit=10) == []


async def test_update_of_actor_refreshes_the_cached_profile_and_key(served_hub, remote, session, acme):
    zoe = remote.add_actor("zoe")
    await discovery.ensure_actor(served_hub.federation, zoe.uri)
    new_doc = zoe.doc
    new_key = KeyPair()
    new_doc["name"] = "Zoe Renamed"
    new_doc["publicKey"]["publicKeyPem"] = new_key.public_pem
    update = {"id": zoe.uri + "#updates/1", "type": "Update", "actor": zoe.uri, "to": [PUBLIC], "object": new_doc}
    assert (await post_signed(session, inbox_url(served_hub), update, zoe))[0] == 202
    await served_hub.runner.drain()
    remote.requests.clear()
    zoe.key = new_key
    assert (await post_signed(session, inbox_url(served_hub), note_activity(zoe, to=[acme.uri]), zoe))[0] == 202
    assert remote.requests == []  # the new key was already known
    row = await discovery.ensure_actor(served_hub.federation, zoe.uri)
    assert row.name == "Zoe Renamed"


async def test_delete_of_known_actor_removes_its_follows_and_notes(served_hub, remote, session, acme):
    zoe = remote.add_actor("zoe")
    follow = {"id": f"{remote.base}/f/9", "type": "Follow", "actor": zoe.uri, "object": acme.uri}
    assert (await post_signed(session, inbox_url(served_hub, "acme"), follow, zoe))[0] == 202
    assert (await post_signed(session, inbox_url(served_hub), note_activity(zoe, to=[acme.uri]), zoe))[0] == 202
    await served_hub.runner.drain()
    delete = {"id": zoe.uri + "#delete", "type": "Delete", "actor": zoe.uri, "object": zoe.uri, "to": [PUBLIC]}
    assert (await post_signed(session, inbox_url(served_hub), delete, zoe))[0] == 202
    remote.gone.add(zoe.uri)  # the origin now answers 410 for the account
    await served_hub.runner.drain()
    async with served_hub.db.read() as conn:
        assert await social.count_follows(conn, acme.id, followers=True) == 0
        assert await msg_store.list_timeline(conn, acme.id, limit=10) == []
    # and its later requests are refused: the key is gone with it
    status, _ = await post_signed(session, inbox_url(served_hub), note_activity(zoe, to=[acme.uri]), zoe)
    assert status == 401


async def test_likes_boosts_and_their_undo_are_recorded(served_hub, remote, session, acme):
    zoe = remote.add_actor("zoe", "misskey")
    note = await outbox.post_note(served_hub, acme, "a public note")
    like = {"id": f"{remote.base}/likes/1", "type": "Like", "actor": zoe.uri, "object": note.uri,
            "content": "👍", "_misskey_reaction": "👍"}
    boost = {"id": f"{remote.base}/notes/b1/activity", "type": "Announce", "actor": zoe.uri, "object": note.uri,
             "to": [PUBLIC], "cc": [acme.uri]}
    for act in (like, boost):
        assert (await post_signed(session, inbox_url(served_hub), act, zoe, shape="misskey-post"))[0] == 202
    await served_hub.runner.drain()
    async with served_hub.db.read() as conn:
        assert await social.count_reactions(conn, note.uri, "like") == 1
        assert await social.count_reactions(conn, note.uri, "announce") == 1
    undo = {"id": f"{remote.base}/likes/1/undo", "type": "Undo", "actor": zoe.uri, "object": like}
    undo_boost = {"id": f"{remote.base}/b1/undo", "type": "Undo", "actor": zoe.uri, "object": boost["id"]}
    for act in (undo, undo_boost):
        assert (await post_signed(session, inbox_url(served_hub), act, zoe, shape="misskey-post"))[0] == 202
    await served_hub.runner.drain()
    async with served_hub.db.read() as conn:
        assert await social.count_reactions(conn, note.uri, "like") == 0
        assert await social.count_reactions(conn, note.uri, "announce") == 0


async def test_remote_block_ends_follows_and_stops_our_deliveries(served_hub, remote, session, acme):
    zoe = remote.add_actor("zoe")
    follow = {"id": f"{remote.base}/f/2", "type": "Follow", "actor": zoe.uri, "object": acme.uri}
    assert (await post_signed(session, inbox_url(served_hub, "acme"), follow, zoe))[0] == 202
    await served_hub.runner.drain()
    block = {"id": f"{remote.base}/blocks/1", "type": "Block", "actor": zoe.uri, "object": acme.uri}
    assert (await post_signed(session, inbox_url(served_hub, "acme"), block, zoe))[0] == 202
    await served_hub.runner.drain()
    remote.received.clear()
    await outbox.post_note(served_hub, acme, "after the block")
    await served_hub.runner.drain()
    assert remote.received == []
    # a follow from a blocker is rejected, not recorded
    follow2 = {"id": f"{remote.base}/f/3", "type": "Follow", "actor": zoe.uri, "object": acme.uri}
    assert (await post_signed(session, inbox_url(served_hub, "acme"), follow2, zoe))[0] == 202
    await served_hub.runner.drain()
    assert [r["json"]["type"] for r in remote.received] == ["Reject"]
    async with served_hub.db.read() as conn:
        assert await social.count_follows(conn, acme.id, followers=True) == 0


async def _send_in_pieces(session, url, body: bytes, headers: dict, piece: int):
    async def pieces():
        for i in range(0, len(body), piece):
            yield body[i : i + piece]
            await asyncio.sleep(0.01)

    async with session.post(url, data=pieces(), headers=headers) as resp:  # chunked transfer, no Content-Length
        return resp.status, await resp.text()


async def test_a_body_arriving_in_pieces_is_read_whole(served_hub, remote, session, acme):
    zoe = remote.add_actor("zoe")
    activity = note_activity(zoe, to=[acme.uri], text="long " + "words " * 25_000)  # about 150 KB
    body = json.dumps(activity).encode()
    url = inbox_url(served_hub)
    headers = zoe.sign(url, body)
    for name in ("Host", "Content-Length"):
        headers.pop(name)
    status, text = await _send_in_pieces(session, url, body, headers, 40_000)
    assert status == 202, text


async def test_a_chunked_body_over_the_limit_gets_413(served_hub, remote, session, acme):
    zoe = remote.add_actor("zoe")
    body = json.dumps(dict(note_activity(zoe, to=[acme.uri]), padding="x" * 1_500_000)).encode()
    url = inbox_url(served_hub)
    headers = zoe.sign(url, body)
    for name in ("Host", "Content-Length"):
        headers.pop(name)
    before = await counts(served_hub)
    status, text = await _send_in_pieces(session, url, body, headers, 50_000)
    assert status == 413 and "larger than" in text
    assert await counts(served_hub) == before


async def test_hostile_strings_neither_fail_the_inbox_nor_the_store(served_hub, remote, session, acme):
    """NUL characters and over-long URLs (which PostgreSQL refuses where SQLite
    shrugs) are dropped where remote documents are read."""
    zoe = remote.add_actor("zoe")
    original = zoe.doc

    class Odd(type(zoe)):
        @property
        def doc(self):
            return dict(original, icon={"type": "Image", "url": "https://x.example/" + "a" * 3000},
                        name="Zoe\u0000", url="https://x.example/\u0000")

    zoe.__class__ = Odd
    weird = note_activity(zoe, to=[acme.uri], text="nul\u0000 inside")
    weird["object"]["inReplyTo"] = "https://x.example/\u0000"
    weird["object"]["context"] = "https://x.example/" + "c" * 3000
    activity = dict(weird, object=dict(weird["object"]))
    status, text = await post_signed(session, inbox_url(served_hub), activity, zoe)
    assert status == 202, text
    await served_hub.runner.drain()
    async with served_hub.db.read() as conn:
        (entry,) = await msg_store.list_timeline(conn, acme.id, limit=10)
    assert entry.content_text == "nul inside" and entry.in_reply_to_uri is None
    row = await discovery.ensure_actor(served_hub.federation, zoe.uri)
    assert row.name == "Zoe" and row.icon_url is None and row.url == zoe.uri


async def test_a_remote_note_cannot_join_our_conversation_by_naming_it(served_hub, remote, session, acme):
    zoe = remote.add_actor("zoe")
    ours = await outbox.post_note(served_hub, acme, "our thread")
    async with served_hub.db.read() as conn:
        conv = await msg_store.get_conversation_by_id(conn, ours.conversation_id)
    intruder = note_activity(zoe, to=[acme.uri], text="I claim your thread", context=conv.uri)
    made_up = note_activity(zoe, to=[acme.uri], text="and invent one",
                            context=served_hub.uris.conversation("01aaaaaaaaaaaaaaaaaaaaaaaa"))
    reply = note_activity(zoe, to=[acme.uri], text="a real reply", context=conv.uri, in_reply_to=ours.uri)
    for activity in (intruder, made_up, reply):
        assert (await post_signed(session, inbox_url(served_hub), activity, zoe))[0] == 202
    await served_hub.runner.drain()
    async with served_hub.db.read() as conn:
        members = await msg_store.list_conversation_messages(conn, conv.id, visibilities=("public", "direct"), limit=10)
        assert [m.uri for m in members] == [ours.uri, reply["object"]["id"]]
        assert await msg_store.get_conversation_by_uri(conn, served_hub.uris.conversation("01aaaaaaaaaaaaaaaaaaaaaaaa")) is None


@pytest.mark.parametrize(("origin_status", "status"), [(503, 503), (500, 503), (404, 401), (410, 401)])
async def test_a_key_that_cannot_be_fetched_is_503_if_its_server_may_recover(
    served_hub, remote, session, acme, origin_status, status
):
    zoe = remote.add_actor("zoe")
    remote.get_status = origin_status
    got, text = await post_signed(session, inbox_url(served_hub), note_activity(zoe, to=[acme.uri]), zoe)
    assert got == status and "cannot fetch the signing key" in text


async def test_only_the_right_actor_may_answer_or_undo(served_hub, remote, session, acme):
    zoe, eve = remote.add_actor("zoe"), remote.add_actor("eve")
    zoe_row = await discovery.ensure_actor(served_hub.federation, zoe.uri)
    await outbox.follow(served_hub, acme, zoe_row)  # acme asks to follow zoe
    await served_hub.runner.drain()
    follow_id = remote.received[-1]["json"]["id"]
    embedded = {"id": follow_id, "type": "Follow", "actor": acme.uri, "object": zoe.uri}
    # eve cannot accept a request made to zoe
    accept = {"id": f"{remote.base}/eve/accept", "type": "Accept", "actor": eve.uri, "object": embedded}
    assert (await post_signed(session, inbox_url(served_hub, "acme"), accept, eve))[0] == 202
    await served_hub.runner.drain()
    async with served_hub.db.read() as conn:
        assert (await social.get_follow(conn, follower_id=acme.id, followee_id=zoe_row.id)).state == "pending"
    accept = {"id": f"{remote.base}/zoe/accept", "type": "Accept", "actor": zoe.uri, "object": follow_id}
    assert (await post_signed(session, inbox_url(served_hub, "acme"), accept, zoe))[0] == 202
    await served_hub.runner.drain()
    async with served_hub.db.read() as conn:
        assert (await social.get_follow(conn, follower_id=acme.id, followee_id=zoe_row.id)).state == "accepted"
    # zoe follows acme; eve cannot undo zoe's follow or zoe's like
    follow = {"id": f"{remote.base}/f/77", "type": "Follow", "actor": zoe.uri, "object": acme.uri}
    note = await outbox.post_note(served_hub, acme, "like me")
    like = {"id": f"{remote.base}/likes/77", "type": "Like", "actor": zoe.uri, "object": note.uri}
    for act in (follow, like):
        assert (await post_signed(session, inbox_url(served_hub), act, zoe))[0] == 202
    await served_hub.runner.drain()
    for obj in (follow, like, follow["id"], like["id"]):
        undo = {"id": f"{remote.base}/eve/undo/{hash(str(obj))}", "type": "Undo", "actor": eve.uri, "object": obj}
        assert (await post_signed(session, inbox_url(served_hub), undo, eve))[0] == 202
    await served_hub.runner.drain()
    async with served_hub.db.read() as conn:
        assert await social.is_following(conn, follower_id=zoe_row.id, followee_id=acme.id)
        assert await social.count_reactions(conn, note.uri, "like") == 1


async def test_following_again_sends_a_new_follow(served_hub, remote, acme):
    zoe = remote.add_actor("zoe")
    zoe_row = await discovery.ensure_actor(served_hub.federation, zoe.uri)
    await outbox.follow(served_hub, acme, zoe_row)
    await outbox.follow(served_hub, acme, zoe_row)  # the first one may have been lost
    await served_hub.runner.drain()
    follows = [r["json"] for r in remote.received if r["json"]["type"] == "Follow"]
    assert len(follows) == 2 and follows[0]["id"] != follows[1]["id"]


async def test_edits_without_updated_do_not_make_later_edits_stale(served_hub, remote, session, acme):
    zoe = remote.add_actor("zoe")
    create = note_activity(zoe, to=[acme.uri], text="v1")
    note = create["object"]
    assert (await post_signed(session, inbox_url(served_hub), create, zoe))[0] == 202
    for n, extra in ((2, {}), (3, {"updated": "2026-11-20T10:05:00Z"}), (4, {"updated": "2026-11-20T10:06:00Z"}),
                     (5, {"updated": "2026-11-20T10:05:30Z"})):
        update = {"id": f"{zoe.uri}#u{n}", "type": "Update", "actor": zoe.uri,
                  "object": dict(note, content=f"<p>v{n}</p>", **extra)}
        assert (await post_signed(session, inbox_url(served_hub), update, zoe))[0] == 202
        await served_hub.runner.drain()
    async with served_hub.db.read() as conn:
        msg = await msg_store.get_message_by_uri(conn, note["id"])
    assert msg.content_text == "v4"  # v5 is older than v4 by the sender's clock


async def test_timeline_says_why_a_note_arrived(served_hub, remote, session, acme):
    alice = await actors.create_local_actor(served_hub, "alice", kind="person")
    zoe = remote.add_actor("zoe")
    zoe_row = await discovery.ensure_actor(served_hub.federation, zoe.uri)
    async with served_hub.db.write() as conn:
        await social.put_follow(conn, follower_id=alice.id, followee_id=zoe_row.id, state="accepted", uri=None)
    activity = note_activity(zoe, to=[PUBLIC], cc=[zoe.doc["followers"], acme.uri])
    assert (await post_signed(session, inbox_url(served_hub), activity, zoe))[0] == 202
    await served_hub.runner.drain()
    async with served_hub.db.read() as conn:
        (for_alice,) = await msg_store.list_timeline(conn, alice.id, limit=5)
        (for_acme,) = await msg_store.list_timeline(conn, acme.id, limit=5)
    assert (for_alice.reason, for_acme.reason) == ("follow", "addressed")
